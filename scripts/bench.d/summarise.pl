#!/usr/bin/perl
# Turns the benchmark's raw measurements into the results table (stdout) and a
# machine-readable file:   summarise.pl RAW.tsv IMPORT.tsv RESULTS.tsv
# RAW.tsv: one line per wrk run (header line first); IMPORT.tsv: "key<TAB>value" lines.
# A ratio is the median over repetitions of the per-repetition ratio: the scenarios run
# interleaved, so pairing them cancels most of the drift of a shared machine.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use BenchStats;

my ($raw_path, $import_path, $out_path) = @ARGV;
die "usage: $0 RAW.tsv IMPORT.tsv RESULTS.tsv\n" unless defined $out_path;

my @order = qw(plain portal_10k portal_1m map_10k headers);


open my $raw, '<', $raw_path or die "$raw_path: $!\n";
chomp(my $head = <$raw>);
my @cols = split /\t/, $head;
my (%runs, %by_rep);
while (<$raw>) {
    chomp;
    my %r;
    @r{@cols} = split /\t/;
    next unless $r{requests} && $r{duration_us};
    my $cpu_s = $r{cpu_ticks} / $r{clk_tck};
    my $secs = $r{duration_us} / 1e6;
    my %m = (
        rps      => $r{requests} / $secs,
        cpu_us   => $cpu_s * 1e6 / $r{requests},
        cpu_pct  => 100 * $cpu_s / $secs,
        up_pct   => 100 * $r{up_ticks} / $r{clk_tck} / $secs,
        other_pct => length($r{core0_other_ticks} // '')
            ? 100 * $r{core0_other_ticks} / $r{clk_tck} / $secs : undef,
        p50_ms   => $r{p50_us} / 1000,
        p99_ms   => $r{p99_us} / 1000,
        errors   => $r{errors},
        domains  => $r{domains},
    );
    push @{ $runs{ $r{scenario} } }, \%m;
    $by_rep{ $r{rep} }{ $r{scenario} } = \%m;
}
close $raw;

my %import;
if (open my $imp, '<', $import_path) {
    while (<$imp>) {
        chomp;
        my ($k, $v) = split /\t/, $_, 2;
        $import{$k} = $v if defined $v && length $v;
    }
}

# The ratio of scenario s's CPU per request to base b's, paired by repetition.
sub ratio { paired_ratio(\%by_rep, @_, 'cpu_us') }

my (%sum, @out);
for my $s (@order) {
    my $list = $runs{$s} or next;
    my %v = (runs => scalar @$list, domains => $list->[0]{domains});
    for my $k (qw(rps cpu_us cpu_pct up_pct other_pct p50_ms p99_ms)) {
        $v{$k} = median(grep { defined } map { $_->{$k} } @$list);
    }
    my @cpu = sort { $a <=> $b } map { $_->{cpu_us} } @$list;
    @v{qw(cpu_us_min cpu_us_max)} = @cpu[0, -1];
    $v{errors} = 0;
    $v{errors} += $_->{errors} for @$list;
    $v{vs_plain} = ratio($s, 'plain');
    $v{vs_map} = ratio($s, 'map_10k');
    $sum{$s} = \%v;
}

my ($small, $large) = (size($sum{portal_10k}{domains}), size($sum{portal_1m}{domains}));
my %label = (
    plain      => '(a) plain proxy_pass',
    portal_10k => "(b) portal on, $small domains",
    portal_1m  => "(c) portal on, $large domains",
    map_10k    => "(d) map \$host hostnames, $small",
    headers    => '(e) 7 fixed headers, no lookup',
);

printf "%-30s %8s %21s %6s %6s %6s %7s %7s %7s %6s\n", 'scenario', 'req/s',
    'CPU us/req (min-max)', 'worker', 'upstr', 'other', 'p99 ms', 'vs (a)', 'vs (d)',
    'errors';
for my $s (@order) {
    my $v = $sum{$s} or next;
    printf "%-30s %8s %21s %5.0f%% %5.0f%% %6s %7.2f %7s %7s %6d\n", $label{$s},
        thousands($v->{rps}),
        sprintf('%.2f (%.2f-%.2f)', @$v{qw(cpu_us cpu_us_min cpu_us_max)}),
        $v->{cpu_pct}, $v->{up_pct}, fmt('%.0f%%', $v->{other_pct}), $v->{p99_ms},
        fmt('%.3f', $v->{vs_plain}), fmt('%.3f', $v->{vs_map}), $v->{errors};
    push @out, map { [$s, $_, $v->{$_}] }
        qw(domains runs rps cpu_us cpu_us_min cpu_us_max cpu_pct up_pct other_pct p50_ms p99_ms
           vs_plain vs_map errors);
}

for my $s (grep { $sum{$_} && $sum{$_}{errors} } @order) {
    print "WARNING: $label{$s} had $sum{$s}{errors} failed requests: its figures are not sound\n";
}
print "CPU us/req: the measured worker's utime+stime per request (median of the runs, min-max);\n",
    "worker, upstr: CPU use of the measured and the upstream worker; other: core 0 busy time\n",
    "not spent by the measured worker (other processes, interrupts, steal); vs (a), vs (d):\n",
    "median over repetitions of the CPU-per-request ratio to (a) plain proxy, (d) map.\n";

my $n = $import{domains};
my $per = $n && defined $import{data_mdb_bytes} ? $import{data_mdb_bytes} / $n : undef;
print "\n";
if (defined $import{seconds}) {
    printf "portalctl import of %s domains: %.1f s wall%s; data.mdb %s bytes (%.1f MB), " .
        "%s bytes per domain\n",
        thousands($n), $import{seconds},
        (defined $import{max_rss_kb} ? sprintf(', peak RSS %.0f MB', $import{max_rss_kb} / 1024) : ''),
        thousands($import{data_mdb_bytes} // 0), ($import{data_mdb_bytes} // 0) / 1e6,
        fmt('%.1f', $per);
    push @out, map { ['import', $_, $import{$_}] } sort keys %import;
    push @out, ['import', 'bytes_per_domain', $per];
}

my @goals = (
    ['module_10k_vs_plain', "module, $small domains: CPU/request <= 1.02 x plain proxy",
     $sum{portal_10k}{vs_plain}, sub { $_[0] <= 1.02 }, '%.3f x'],
    ['module_1m_vs_plain', "module, $large domains: CPU/request <= 1.02 x plain proxy",
     $sum{portal_1m}{vs_plain}, sub { $_[0] <= 1.02 }, '%.3f x'],
    ['module_10k_vs_map', "module, $small domains: CPU/request <= map ($small)",
     $sum{portal_10k}{vs_map}, sub { $_[0] <= 1.0 }, '%.3f x'],
    ['module_1m_vs_map', "module, $large domains: CPU/request <= map ($small)",
     $sum{portal_1m}{vs_map}, sub { $_[0] <= 1.0 }, '%.3f x'],
    ['import_time', 'import of ' . size($import{domains}) . ' domains under 60 s', $import{seconds},
     sub { $_[0] < 60 }, '%.1f s'],
    ['import_size', 'snapshot under 300 bytes per domain', $per,
     sub { $_[0] < 300 }, '%.1f B'],
);
print "\ngoals:\n";
for my $g (@goals) {
    my ($key, $text, $value, $ok, $f) = @$g;
    my $verdict = !defined $value ? 'n/a' : $ok->($value) ? 'PASS' : 'MISS';
    printf "  %-4s  %-56s %s\n", $verdict, $text, fmt($f, $value);
    push @out, ['goal', $key, $verdict];
}

open my $o, '>', $out_path or die "$out_path: $!\n";
print $o "item\tmetric\tvalue\n";
for (@out) {
    my $v = $_->[2];
    $v = sprintf('%.4f', $v) if defined $v && $v =~ /^-?\d+\.\d{5,}/;
    print $o join("\t", $_->[0], $_->[1], $v // ''), "\n";
}
close $o or die "$out_path: $!\n";
