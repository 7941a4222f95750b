#!/usr/bin/perl
# Turns the benchmark's raw measurements into the results table (stdout) and a
# machine-readable file:   summarise.pl RAW.tsv IMPORT.tsv RESULTS.tsv [INSTR.tsv]
# RAW.tsv: one line per wrk run (header line first); IMPORT.tsv: "key<TAB>value" lines;
# INSTR.tsv: scenario, requests, instructions (callgrind), when that stage ran.
# A ratio is the median over repetitions of the per-repetition ratio: the scenarios run
# interleaved, so pairing them cancels most of the drift of a shared machine. The spread of
# the per-repetition ratios (25th-75th percentile) and the A/A control (a') say how far
# the machine's noise moves a ratio.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use BenchStats;

my ($raw_path, $import_path, $out_path, $instr_path) = @ARGV;
die "usage: $0 RAW.tsv IMPORT.tsv RESULTS.tsv [INSTR.tsv]\n" unless defined $out_path;

my @order = qw(plain plain2 portal_10k portal_1m map_10k headers portal_vars);


open my $raw, '<', $raw_path or die "$raw_path: $!\n";
chomp(my $head = <$raw>);
my @cols = split /\t/, $head;
my (%runs, %by_rep);
while (<$raw>) {
    chomp;
    my %r;
    @r{@cols} = split /\t/;
    next unless $r{requests} && $r{duration_us};
    my $cpu_s = $r{cpu_ns} / 1e9;
    my $secs = $r{duration_us} / 1e6;
    my %m = (
        rps      => $r{requests} / $secs,
        cpu_us   => $cpu_s * 1e6 / $r{requests},
        cpu_pct  => 100 * $cpu_s / $secs,
        up_pct   => 100 * $r{up_ns} / 1e9 / $secs,
        other_pct => length($r{core0_other_ns} // '')
            ? 100 * $r{core0_other_ns} / 1e9 / $secs : undef,
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
    @v{qw(vs_plain vs_plain_p25 vs_plain_p75)} =
        paired_ratio_spread(\%by_rep, $s, 'plain', 'cpu_us');
    $v{vs_map} = ratio($s, 'map_10k');
    $sum{$s} = \%v;
}

# user-space instructions per request (callgrind), if that stage ran
my %instr;
if ($instr_path && open my $in, '<', $instr_path) {
    <$in>;
    while (<$in>) {
        chomp;
        my ($s, $requests, $ir) = split /\t/;
        $instr{$s} = $ir / $requests if $requests && $sum{$s};
    }
}
for my $s (keys %instr) {
    $sum{$s}{instructions} = $instr{$s};
    $sum{$s}{instructions_vs_plain} = $instr{$s} / $instr{plain} if $instr{plain};
}

my ($small, $large) = (size($sum{portal_10k}{domains}), size($sum{portal_1m}{domains}));
my %label = (
    plain       => '(a) plain proxy_pass',
    plain2      => "(a') the same again (A/A)",
    portal_10k  => "(b) portal on, $small domains",
    portal_1m   => "(c) portal on, $large domains",
    map_10k     => "(d) map \$host hostnames, $small",
    headers     => '(e) 7 fixed headers, no lookup',
    portal_vars => "(f) (b), proxy_set_header \$portal_*",
);

printf "%-32s %7s %21s %6s %6s %5s %6s %15s %6s %6s %6s\n", 'scenario', 'req/s',
    'CPU us/req (min-max)', 'worker', 'upstr', 'other', 'p99 ms', 'vs (a) [p25-p75]', 'vs (d)',
    'instr', 'errors';
for my $s (@order) {
    my $v = $sum{$s} or next;
    printf "%-32s %7s %21s %5.0f%% %5.0f%% %5s %6.2f %15s %6s %6s %6d\n", $label{$s},
        thousands($v->{rps}),
        sprintf('%.2f (%.2f-%.2f)', @$v{qw(cpu_us cpu_us_min cpu_us_max)}),
        $v->{cpu_pct}, $v->{up_pct}, fmt('%.0f%%', $v->{other_pct}), $v->{p99_ms},
        sprintf('%s [%s-%s]', fmt('%.3f', $v->{vs_plain}), fmt('%.2f', $v->{vs_plain_p25}),
                fmt('%.2f', $v->{vs_plain_p75})),
        fmt('%.3f', $v->{vs_map}), fmt('%.0f', $v->{instructions}), $v->{errors};
    push @out, map { [$s, $_, $v->{$_}] }
        qw(domains runs rps cpu_us cpu_us_min cpu_us_max cpu_pct up_pct other_pct p50_ms p99_ms
           vs_plain vs_plain_p25 vs_plain_p75 vs_map instructions instructions_vs_plain errors);
}

for my $s (grep { $sum{$_} && $sum{$_}{errors} } @order) {
    print "WARNING: $label{$s} had $sum{$s}{errors} failed requests: its figures are not sound\n";
}
print "CPU us/req: the measured worker's CPU time per request (median of the runs, min-max);\n",
    "worker, upstr: CPU use of the measured and the upstream worker; other: core 0 busy time\n",
    "not spent by the measured worker (other processes, interrupts, steal); vs (a), vs (d):\n",
    "median over repetitions of the CPU-per-request ratio to (a) plain proxy, (d) map, with the\n",
    "25th-75th percentile of the per-repetition ratios; (a') measures the noise of a ratio;\n",
    "instr: user-space instructions per request under callgrind (the kernel's are not counted).\n";
if (%instr) {
    print "\ninstructions per request vs (a):";
    printf " %s %.3f;", $label{$_} =~ s/ .*//r, $sum{$_}{instructions_vs_plain}
        for grep { $sum{$_} && defined $sum{$_}{instructions_vs_plain} } @order;
    print "\n";
}

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
    ['noise_aa', "A/A control: (a') within 1% of (a) (else the run is too noisy)",
     $sum{plain2}{vs_plain}, sub { abs($_[0] - 1) <= 0.01 }, '%.3f x'],
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
