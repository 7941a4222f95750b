#!/usr/bin/perl
# Turns the TLS benchmark's raw measurements into its table (stdout) and a machine-readable
# file:   tls-summarise.pl RAW.tsv PREP.tsv RESULTS.tsv [INSTR.tsv]
# RAW.tsv: one line per measured client run (header line first); PREP.tsv: "key<TAB>value";
# INSTR.tsv: scenario, handshakes, instructions (callgrind), when that stage ran.
# A ratio is the median over repetitions of the per-repetition ratio (the scenarios take
# turns within each repetition, so pairing them cancels most of a shared machine's drift);
# the 25th-75th percentile of those ratios and the A/A control (a') show the noise left.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use BenchStats;

my ($raw_path, $prep_path, $out_path, $instr_path) = @ARGV;
die "usage: $0 RAW.tsv PREP.tsv RESULTS.tsv [INSTR.tsv]\n" unless defined $out_path;

my @order = qw(static static2 portal_small portal_large portal_large_lowcache files_small
               servers_small);


open my $raw, '<', $raw_path or die "$raw_path: $!\n";
chomp(my $head = <$raw>);
my @cols = split /\t/, $head;
my (%runs, %by_rep, %info);
while (<$raw>) {
    chomp;
    my %r;
    @r{@cols} = split /\t/;
    next unless $r{handshakes} && $r{duration_us};
    my $secs = $r{duration_us} / 1e6;
    my $cpu_s = $r{cpu_ns} / 1e9;
    my %m = (
        rep        => $r{rep},
        hps        => $r{handshakes} / $secs,
        cpu_us     => $cpu_s * 1e6 / $r{handshakes},
        cpu_pct    => 100 * $cpu_s / $secs,
        client_pct => 100 * $r{client_cpu_us} / 1e6 / $secs,
        other_pct  => length($r{core0_other_ns} // '')
            ? 100 * $r{core0_other_ns} / 1e9 / $secs : undef,
        errors     => $r{errors} + $r{wrong_cert},
        handshakes => $r{handshakes} + ($r{warmup_handshakes} // 0),
        rss_kb     => $r{rss_kb},
        anon_kb    => $r{rss_anon_kb},
        file_kb    => $r{rss_file_kb},
    );
    push @{ $runs{ $r{scenario} } }, \%m;
    $by_rep{ $r{rep} }{ $r{scenario} } = \%m;
    $info{ $r{scenario} } = { names => $r{names}, sni => $r{sni_names}, cache => $r{cache} };
}
close $raw;

my %prep;
if (open my $p, '<', $prep_path) {
    while (<$p>) {
        chomp;
        my ($k, $v) = split /\t/, $_, 2;
        $prep{$k} = $v if defined $v && length $v;
    }
}

# Median over repetitions of key(s) / key(b).
sub ratio { paired_ratio(\%by_rep, @_) }

my (%sum, @out);
for my $s (@order) {
    my $list = $runs{$s} or next;
    my %v = (runs => scalar @$list, %{ $info{$s} });
    for my $k (qw(hps cpu_us cpu_pct client_pct other_pct)) {
        $v{$k} = median(grep { defined } map { $_->{$k} } @$list);
    }
    my @cpu = sort { $a <=> $b } map { $_->{cpu_us} } @$list;
    @v{qw(cpu_us_min cpu_us_max)} = @cpu[0, -1];
    $v{errors} = 0;
    $v{errors} += $_->{errors} for @$list;
    my @by_rep = sort { $a->{rep} <=> $b->{rep} } @$list;
    @v{qw(rss_kb anon_kb file_kb)} = @{ $by_rep[-1] }{qw(rss_kb anon_kb file_kb)};
    $v{anon_kb_first} = $by_rep[0]{anon_kb};
    $v{handshakes_total} = 0;
    $v{handshakes_total} += $_->{handshakes} for @$list;
    @v{qw(vs_static vs_static_p25 vs_static_p75)} =
        paired_ratio_spread(\%by_rep, $s, 'static', 'cpu_us');
    $v{vs_files} = ratio($s, 'files_small', 'cpu_us');
    $v{hps_vs_files} = ratio($s, 'files_small', 'hps');
    @v{qw(vs_servers vs_servers_p25 vs_servers_p75)} =
        paired_ratio_spread(\%by_rep, $s, 'servers_small', 'cpu_us');
    $sum{$s} = \%v;
}

# user-space instructions per handshake (callgrind), if that stage ran
my %instr;
if ($instr_path && open my $in, '<', $instr_path) {
    <$in>;
    while (<$in>) {
        chomp;
        my ($s, $n, $ir) = split /\t/;
        $instr{$s} = $ir / $n if $n && $ir && $sum{$s};
    }
}
for my $s (keys %instr) {
    $sum{$s}{instructions} = $instr{$s};
    $sum{$s}{instructions_vs_static} = $instr{$s} / $instr{static} if $instr{static};
}

my ($small, $large) = map { size($_) } ($info{portal_small}{names}, $info{portal_large}{names});
my $lsni = $info{portal_large} ? size($info{portal_large}{sni}) : '-';
my ($lcache, $lowcache) = map { $_ ? size($_) : '-' }
    ($info{portal_large}{cache}, $info{portal_large_lowcache}{cache});
my %label = (
    static                => '(a) static certificate',
    static2               => "(a') the same again (A/A)",
    portal_small          => "(b) portal_ssl, $small names",
    portal_large          => "(c) portal_ssl, $large names",
    portal_large_lowcache => "(c') the same, cache $lowcache",
    files_small           => "(d) \$ssl_server_name files, $small",
    servers_small         => "(e) $small server blocks",
);

printf "%-32s %6s %22s %6s %6s %5s %6s %16s %6s %8s %6s\n", 'scenario', 'hs/s',
    'CPU us/handsh.(min-max)', 'worker', 'client', 'other', 'RSS MB', 'vs (a) [p25-p75]',
    'vs (d)', 'instr', 'errors';
for my $s (@order) {
    my $v = $sum{$s} or next;
    printf "%-32s %6s %22s %5.0f%% %5.0f%% %5s %6s %16s %6s %8s %6d\n", $label{$s},
        thousands($v->{hps}),
        sprintf('%.0f (%.0f-%.0f)', @$v{qw(cpu_us cpu_us_min cpu_us_max)}),
        $v->{cpu_pct}, $v->{client_pct}, fmt('%.0f%%', $v->{other_pct}),
        fmt('%.1f', defined $v->{rss_kb} ? $v->{rss_kb} / 1024 : undef),
        sprintf('%s [%s-%s]', fmt('%.3f', $v->{vs_static}), fmt('%.2f', $v->{vs_static_p25}),
                fmt('%.2f', $v->{vs_static_p75})),
        fmt('%.3f', $v->{vs_files}), fmt('%.0f', $v->{instructions}), $v->{errors};
    push @out, map { [$s, $_, $v->{$_}] }
        qw(names sni cache runs hps cpu_us cpu_us_min cpu_us_max cpu_pct client_pct other_pct
           rss_kb anon_kb file_kb anon_kb_first handshakes_total vs_static vs_static_p25
           vs_static_p75 vs_files hps_vs_files vs_servers vs_servers_p25 vs_servers_p75
           instructions instructions_vs_static errors);
}
for my $s (grep { $sum{$_} && $sum{$_}{errors} } @order) {
    print "WARNING: $label{$s} had $sum{$s}{errors} failed handshakes or wrong certificates: ",
        "its figures are not sound\n";
}
print "hs/s: handshakes per second (a new connection, a full TLS 1.3 handshake and one request\n",
    "each); CPU us/handshake: the worker's CPU time per handshake (median of the runs,\n",
    "min-max); worker, client: CPU use of the measured worker and of the load generator; other:\n",
    "core 0 busy time not spent by the worker; RSS: the worker's VmRSS after the last run;\n",
    "vs (a), vs (d): median over repetitions of the CPU-per-handshake ratio to (a), to (d), with\n",
    "the 25th-75th percentile of the per-repetition ratios; (a') measures the noise of a ratio;\n",
    "instr: user-space instructions per handshake under callgrind (not the kernel's).\n";
if ($sum{portal_small} && $sum{servers_small}) {
    my $v = $sum{portal_small};
    printf "(b) against (e), nginx's own static certificates with a server block per name: " .
        "%s [%s-%s]\n", fmt('%.3f', $v->{vs_servers}), fmt('%.2f', $v->{vs_servers_p25}),
        fmt('%.2f', $v->{vs_servers_p75});
}
if (%instr) {
    print "instructions per handshake vs (a):";
    printf " %s %.3f;", $label{$_} =~ s/ .*//r, $sum{$_}{instructions_vs_static}
        for grep { $sum{$_} && defined $sum{$_}{instructions_vs_static} } @order;
    print "\n";
}
print "(c), (c'): the client draws the SNI name at random from $lsni of the $large names; ",
    "portal_ssl_cache $lcache and $lowcache.\n" if $sum{portal_large};

# Memory of the large scenarios: anonymous memory (heap: the cache) apart from mapped files
# (the state store's pages, which the kernel can drop).
my @mem = grep { $sum{$_} }
    qw(static portal_small portal_large portal_large_lowcache files_small servers_small);
print "\nworker memory after the last run (MB): VmRSS = RssAnon (heap) + RssFile (mapped files)\n";
for my $s (@mem) {
    my $v = $sum{$s};
    printf "  %-34s %8s = %7s + %7s   (RssAnon after the 1st run: %s)\n", $label{$s},
        fmt('%.1f', $v->{rss_kb} / 1024), fmt('%.1f', $v->{anon_kb} / 1024),
        fmt('%.1f', $v->{file_kb} / 1024), fmt('%.1f', $v->{anon_kb_first} / 1024);
}
# The caches start full (the benchmark fills them first) and random names keep them full.
my ($per_name, $unbounded);
if ($sum{portal_large} && $sum{portal_large_lowcache}) {
    my $n = $info{portal_large}{sni};
    my $held1 = _min($info{portal_large}{cache}, $n);
    my $held2 = _min($info{portal_large_lowcache}{cache}, $n);
    if ($held1 - $held2 >= 100) {
        $per_name = ($sum{portal_large}{anon_kb} - $sum{portal_large_lowcache}{anon_kb}) * 1024
            / ($held1 - $held2);
        $unbounded = $per_name * $info{portal_large}{names};
        printf "  heap per cached name: %.1f kB (from (c) - (c')); all %s names cached would " .
            "take about %.0f MB\n", $per_name / 1024, thousands($info{portal_large}{names}),
            $unbounded / 1048576;
    }
}
sub _min { $_[0] < $_[1] ? $_[0] : $_[1] }

print "\n";
if (defined $prep{certs_seconds}) {
    printf "preparation: %s certificates made in %.1f s; portalctl cert import-list of %s in " .
        "%.1f s (%.2f ms each) and of %s in %.1f s; state data.mdb %.1f MB%s\n",
        thousands($prep{large}), $prep{certs_seconds}, thousands($prep{large}),
        $prep{import_large_seconds}, 1000 * $prep{import_large_seconds} / $prep{large},
        thousands($prep{small}), $prep{import_small_seconds},
        ($prep{state_large_bytes} // 0) / 1e6, $prep{reused} ? ' (reused from BENCH_TLS_DATA)' : '';
    push @out, map { ['prep', $_, $prep{$_}] } sort keys %prep;
}
push @out, ['memory', 'heap_per_cached_name_bytes', $per_name],
           ['memory', 'all_names_cached_estimate_bytes', $unbounded];

# Bounded memory: with more names than its cache holds, the large scenario's heap does not
# grow from the end of the first run to the end of the last, though new names keep coming.
my ($bounded, $bounded_text) = (undef, 'n/a');
if (my $v = $sum{portal_large}) {
    if ($info{portal_large}{sni} > $info{portal_large}{cache} && $v->{anon_kb_first}) {
        $bounded = $v->{anon_kb} / $v->{anon_kb_first};
        $bounded_text = sprintf '%.1f -> %.1f MB heap (x %.3f)', $v->{anon_kb_first} / 1024,
            $v->{anon_kb} / 1024, $bounded;
    } else {
        $bounded_text = 'n/a: no more names than the cache holds';
    }
}
my $cpu_files = $sum{portal_small} ? $sum{portal_small}{vs_files} : undef;
my $rate_files = $sum{portal_small} ? $sum{portal_small}{hps_vs_files} : undef;
# A paced client (BENCH_TLS_RATE) holds every scenario to the same handshakes/s.
my $paced = ($ENV{BENCH_TLS_RATE} // 0) > 0;
$rate_files = undef if $paced;
my @goals = (
    ['module_small_vs_static', "module, $small names: CPU/handshake <= 1.05 x static",
     $sum{portal_small}{vs_static}, sub { $_[0] <= 1.05 }, fmt('%.3f x', $sum{portal_small}{vs_static})],
    ['module_small_vs_files_cpu', "module, $small names: CPU/handshake <= 1/2 of files",
     $cpu_files, sub { $_[0] <= 0.5 },
     defined $cpu_files ? sprintf('%.3f x (files cost %.2f x)', $cpu_files, 1 / $cpu_files) : '-'],
    ['module_small_vs_files_rate', "module, $small names: handshakes/s >= 2 x files",
     $rate_files, sub { $_[0] >= 2 }, $paced ? 'n/a: the client was paced' : fmt('%.2f x', $rate_files)],
    ['module_large_memory', "module, $large names: heap stops growing (<= 1.05 x)",
     $bounded, sub { $_[0] <= 1.05 }, $bounded_text],
    ['noise_aa', "A/A control: (a') within 1% of (a) (else too noisy)",
     $sum{static2}{vs_static}, sub { abs($_[0] - 1) <= 0.01 }, fmt('%.3f x', $sum{static2}{vs_static})],
);
print "\ngoals:\n";
for my $g (@goals) {
    my ($key, $text, $value, $ok, $shown) = @$g;
    my $verdict = !defined $value ? 'n/a' : $ok->($value) ? 'PASS' : 'MISS';
    printf "  %-4s  %-58s %s\n", $verdict, $text, $shown;
    push @out, ['goal', $key, $verdict];
}
if ($sum{portal_small} && $sum{files_small}
    && ($sum{portal_small}{cpu_pct} < 90 || $sum{files_small}{cpu_pct} < 90)) {
    print "  note: a worker below 90% CPU was not saturated (the client or other load held it\n",
          "  back): its handshakes/s is a floor; CPU per handshake is the sound comparison.\n";
}

open my $o, '>', $out_path or die "$out_path: $!\n";
print $o "item\tmetric\tvalue\n";
for (@out) {
    my $v = $_->[2];
    $v = sprintf('%.4f', $v) if defined $v && $v =~ /^-?\d+\.\d{5,}/;
    print $o join("\t", $_->[0], $_->[1], $v // ''), "\n";
}
close $o or die "$out_path: $!\n";
