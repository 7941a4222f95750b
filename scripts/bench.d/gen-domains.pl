#!/usr/bin/perl
# Writes N made-up portal domains for the benchmark, deterministically:
#   gen-domains.pl N JSON HOSTS [SAMPLE [MAPCONF]]
# JSON     the portalctl import file ({"domains":[...]})
# HOSTS    "host<TAB>brand" of up to SAMPLE active domains (all of them if SAMPLE is 0),
#          the hosts wrk asks for (a suspended domain answers 403 and would skip the proxy)
# MAPCONF  the same data as nginx "map $host ... { hostnames; }" blocks, one per header
use strict;
use warnings;

my ($n, $json_path, $hosts_path, $sample, $map_path) = @ARGV;
die "usage: $0 N JSON HOSTS [SAMPLE [MAPCONF]]\n"
    unless defined $hosts_path && $n =~ /^[1-9][0-9]*$/ && $n <= 1_000_000;
$sample ||= 0;
srand(20240501 + $n);

my @prefixes = qw(portal my customers billing voip account selfcare panel);
my @words = qw(tenant north west blue star nova acme orbit delta prime vertex summit
               river metro global union pacific alpine cedar harbor lumen pixel swift);
my @tlds = qw(example com net io co.uk de fr nl);
my @brand_words = qw(Northwind Telecom Voice Blue Star Networks Global Carrier Metro
                     Connect Prime Unified Cloud Dial Harbor Signal Orbit Lumen Summit
                     Alpine Cedar Vertex Pacific Wave Link Systems Direct Fibre);
my @sections = qw(carrier_portal cdr rate_card balance invoices payments);

open my $json, '>', $json_path or die "$json_path: $!\n";
open my $hosts, '>', $hosts_path or die "$hosts_path: $!\n";
my @maps = ([brand => []], [customer_signup => []], [carrier_signup => []],
            [customer_limit => []], [access => []], [status => []]);

print $json qq({"domains":[\n);
my ($active, @reservoir) = (0);
for my $i (0 .. $n - 1) {
    # A permutation of 0..999999 (7919 is prime to 10^6): unique six-digit tenant numbers.
    my $num = sprintf '%06d', ($i * 7919 + 12345) % 1_000_000;
    my $host = join '.', $prefixes[rand @prefixes], $words[rand @words] . $num,
        $tlds[rand @tlds];

    my $brand = join ' ', map { $brand_words[rand @brand_words] } 1 .. 2;
    $brand .= ' ' . $brand_words[rand @brand_words] while length $brand < 12;
    $brand = substr($brand, 0, 20) =~ s/ +$//r;

    my $cs = rand() < 0.5 ? 'true' : 'false';
    my $ks = rand() < 0.3 ? 'true' : 'false';
    my $limit = sprintf '%d.%02d', int(rand 5000), int(rand 4) * 25;
    my %seen;
    my @access = grep { !$seen{$_}++ } map { $sections[rand @sections] } 1 .. 1 + int(rand 4);
    @access = sort @access;
    my $status = rand() < 0.02 ? 'suspended' : 'active';

    print $json ($i ? ",\n" : ''),
        qq({"host":"$host","brand":"$brand","customer_signup":$cs,"carrier_signup":$ks,),
        qq("customer_limit":"$limit","access":[), join(',', map { qq("$_") } @access),
        qq(],"status":"$status"});

    if ($status eq 'active') {
        $active++;
        my $line = "$host\t$brand\n";
        if (!$sample || @reservoir < $sample) {
            push @reservoir, $line;
        } elsif ((my $j = int rand $active) < $sample) {
            $reservoir[$j] = $line;
        }
    }
    if ($map_path) {
        my @v = ($brand, $cs eq 'true' ? 1 : 0, $ks eq 'true' ? 1 : 0, $limit,
                 join(',', @access), $status);
        push @{ $maps[$_][1] }, qq(    $host "$v[$_]";\n) for 0 .. $#maps;
    }
}
print $json "\n]}\n";
print $hosts @reservoir;
close $json or die "$json_path: $!\n";
close $hosts or die "$hosts_path: $!\n";

if ($map_path) {
    open my $map, '>', $map_path or die "$map_path: $!\n";
    for my $m (@maps) {
        print $map "map \$host \$bench_$m->[0] {\n    hostnames;\n    default \"\";\n",
            @{ $m->[1] }, "}\n";
    }
    close $map or die "$map_path: $!\n";
}
