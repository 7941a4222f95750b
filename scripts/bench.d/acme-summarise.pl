#!/usr/bin/env perl
# Summary of the ACME benchmark (scripts/bench.d/acme.sh): reads RAW (item, metric, value),
# DIR/acme-latency.tsv (name, seconds, portalctl seconds, handshakes) and
# DIR/acme-status-cN.json; prints the summary and writes RESULTS (item, metric, value: RAW's
# rows, the latency statistics, one "goal" row per goal).
#   acme-summarise.pl RAW DIR RESULTS
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use BenchStats;
use JSON::PP;
use POSIX qw(ceil);

my ($raw_file, $dir, $results_file) = @ARGV;
die "usage: acme-summarise.pl RAW DIR RESULTS\n" unless $results_file;

my (%v, @rows, @items);
open my $in, '<', $raw_file or die "$raw_file: $!\n";
while (<$in>) {
    chomp;
    my ($item, $metric, $value) = split /\t/, $_, 3;
    next unless defined $value;
    push @items, $item unless exists $v{$item};
    $v{$item}{$metric} = $value;
    push @rows, [$item, $metric, $value];
}
close $in;

# Nearest rank: the smallest value with at least P of the values at or below it.
sub rank { my ($p, @s) = @_; @s ? $s[ceil($p * @s) - 1] : undef }

# --- latency ---
my (@lat, @missing);
if (open my $lt, '<', "$dir/acme-latency.tsv") {
    while (<$lt>) {
        chomp;
        my ($name, $secs) = split /\t/;
        if (defined $secs && length $secs) { push @lat, $secs } else { push @missing, $name }
    }
}
@lat = sort { $a <=> $b } @lat;
my %lat = (measured => scalar @lat, not_served => scalar @missing,
           median_s => median(@lat), p90_s => rank(0.9, @lat), max_s => $lat[-1],
           min_s => $lat[0]);
push @rows, map { ['latency', $_, defined $lat{$_} ? (/_s$/ ? sprintf('%.3f', $lat{$_}) : $lat{$_}) : ''] }
    qw(measured not_served min_s median_s p90_s max_s);

# --- bursts ---
my @bursts = grep { /^burst-c\d+$/ } @items;
for my $b (@bursts) {
    my ($c) = $b =~ /(\d+)$/;
    my $file = "$dir/acme-status-c$c.json";
    my ($failed, $not_active, $failures) = (0, 0, 0);
    if (open my $fh, '<', $file) {
        local $/;
        my $st = eval { decode_json(<$fh>) } // {};
        for my $d (@{ $st->{domains} // [] }) {
            $failures += $d->{failures} // 0;
            $failed++ if ($d->{failures} // 0) > 0 || $d->{state} eq 'failed';
            $not_active++ if $d->{state} ne 'active';
        }
    }
    my $x = $v{$b};
    $x->{domains_with_failures} = $failed;
    $x->{domains_not_active} = $not_active;
    $x->{acme_failures} = $failures;
    for my $p ('', 'base_') {
        $x->{"${p}http_failed"} = 0;
        $x->{"${p}http_failed"} += $x->{"${p}http_$_"} // 0 for qw(connect read write status timeout);
    }
    $x->{certs_per_s} = $x->{all_s} =~ /^[\d.]+$/ && $x->{all_s} > 0
        ? sprintf('%.2f', $x->{names} / $x->{all_s}) : '';
    push @rows, [$b, $_, $x->{$_}]
        for qw(domains_with_failures domains_not_active acme_failures http_failed base_http_failed
               certs_per_s);
}

# --- goals ---
my @goals;
if (@lat) {
    my $pass = !@missing && $lat{median_s} <= 3;
    push @goals, ['median latency from domain add to a verified handshake <= 3 s',
                  sprintf('%.2f s', $lat{median_s}) . (@missing ? ", $lat{not_served} never served" : ''),
                  $pass ? 'PASS' : 'MISS'];
}
for my $b (@bursts) {
    my $x = $v{$b};
    my $failed = $x->{http_failed} + ($x->{https_failed} // 0);
    push @goals, ["no failed request during the burst (portal_acme_concurrency $x->{concurrency})",
                  sprintf('%d of %d failed', $failed,
                          ($x->{http_requests} // 0) + ($x->{https_requests} // 0)),
                  $failed == 0 ? 'PASS' : 'MISS'];
    push @goals, ["all $x->{names} names of the burst served (portal_acme_concurrency $x->{concurrency})",
                  $x->{all_s} eq 'none' ? "$x->{served} served" : "in $x->{all_s} s",
                  $x->{all_s} eq 'none' ? 'MISS' : 'PASS'];
}
push @rows, map { ['goal', $_->[0], "$_->[2] ($_->[1])"] } @goals;

open my $out, '>', $results_file or die "$results_file: $!\n";
print $out "item\tmetric\tvalue\n";
print $out join("\t", @$_), "\n" for @rows;
close $out or die "$results_file: $!\n";

# --- print ---
my $e = $v{env} // {};
my $mb = sub { defined $_[0] && length $_[0] ? sprintf('%.1f', $_[0] / 1024) : '-' };
printf "Pebble %s (%s), %s, 2 workers, %s cores: %s\n", $e->{pebble_version} // '?',
    $e->{pebble} // '?', $e->{nginx} // '?', $e->{cores} // '?', $e->{cpu} // '?';
printf "loadavg %s\n", $e->{loadavg} // '?';
print "\n";
if (@lat || @missing) {
    printf "(1) latency, portalctl domain add -> first verified handshake, %d names one at a time "
         . "(portal_acme_concurrency %s):\n", @lat + @missing, $v{latency}{concurrency} // '?';
    printf "    median %s s   p90 %s s   max %s s   (min %s s)%s\n",
        fmt('%.2f', $lat{median_s}), fmt('%.2f', $lat{p90_s}), fmt('%.2f', $lat{max_s}),
        fmt('%.2f', $lat{min_s}), @missing ? "; never served: @missing" : '';
    print "\n";
}
if (@bursts) {
    my $n = $v{ $bursts[0] }{names};
    printf "(2) burst: %s names in one portalctl import, CNAMEs set before; load on a portal domain "
         . "meanwhile\n", thousands($n);
    printf "    %-50s" . (" %20s" x @bursts) . "\n", 'portal_acme_concurrency',
        map { $v{$_}{concurrency} } @bursts;
    my @lines = (
        ['all served (s)', sub { $_[0]{all_s} }],
        ['first / median / p90 served (s)',
         sub { join ' / ', map { fmt('%.1f', $_[0]{$_}) } qw(first_s p50_s p90_s) }],
        ['certificates per second', sub { $_[0]{certs_per_s} || '-' }],
        ['portalctl import (s)', sub { fmt('%.2f', $_[0]{import_s}) }],
        ['served / names', sub { "$_[0]{served} / $_[0]{names}" }],
        ['domains with a failure; ACME failures', sub { "$_[0]{domains_with_failures}; $_[0]{acme_failures}" }],
        ['[error] lines in error.log', sub { $_[0]{log_errors} }],
        (map { my ($p, $when) = @$_; (
        ["$when: HTTP requests, failed",
         sub { thousands($_[0]{"${p}http_requests"} // 0) . ', ' . ($_[0]{"${p}http_failed"} // '-') }],
        ["$when: HTTP req/s, p50, p99, max ms",
         sub { my $x = $_[0];
               return '-' unless $x->{"${p}http_duration_us"};
               sprintf '%.0f, %.1f, %.1f, %.0f',
                   $x->{"${p}http_requests"} / ($x->{"${p}http_duration_us"} / 1e6),
                   map { ($x->{"${p}http_${_}_us"} // 0) / 1000 } qw(p50 p99 max) }],
        ["$when: HTTPS connections, failed",
         sub { thousands($_[0]{"${p}https_requests"} // 0) . ', ' . ($_[0]{"${p}https_failed"} // '-') }],
        ["$when: CPU busy, run queue ms/s engine/other",
         sub { my $x = $_[0];
               sprintf '%s%%, %s / %s', map { $x->{"$p$_"} // '-' }
                   qw(machine_busy_pct engine_runq_ms_per_s other_runq_ms_per_s) }],
        ) } ['base_', 'load alone'], ['', 'in the burst']),
        ['engine worker VmHWM MB (before the burst)',
         sub { $mb->($_[0]{engine_vmhwm_kb}) . ' (' . $mb->($_[0]{engine_vmhwm_before_kb}) . ')' }],
        ['other worker VmHWM MB (before the burst)',
         sub { $mb->($_[0]{other_vmhwm_kb}) . ' (' . $mb->($_[0]{other_vmhwm_before_kb}) . ')' }],
        (map { my ($w, $when) = @$_;
               ["VmRSS MB, $w worker, $when = anon + file",
                sub { join ' ', $mb->($_[0]{"${w}_vmrss_${when}_kb"}), '=',
                      $mb->($_[0]{"${w}_rssanon_${when}_kb"}), '+',
                      $mb->($_[0]{"${w}_rssfile_${when}_kb"}) }] }
         [engine => 'before'], [engine => 'after'], [other => 'before'], [other => 'after']),
        ['load average (1 min) at start, end', sub { "$_[0]{loadavg_before}, $_[0]{loadavg_after}" }],
        ['CPU s: engine worker / other / Pebble',
         sub { "$_[0]{engine_cpu_s} / $_[0]{other_cpu_s} / $_[0]{pebble_cpu_s}" }],
        ['Pebble VmHWM MB', sub { $mb->($_[0]{pebble_vmhwm_kb}) }],
        ['state store data.mdb MB', sub { $mb->(($_[0]{state_mdb_bytes} // 0) / 1024) }],
    );
    for my $l (@lines) {
        printf "    %-50s" . (" %20s" x @bursts) . "\n", $l->[0], map { $l->[1]->($v{$_}) // '-' } @bursts;
    }
    print "\n";
}
print "goals (issue 4):\n";
printf "    %-4s  %s: %s\n", $_->[2], $_->[0], $_->[1] for @goals;
