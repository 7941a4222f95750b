#!/usr/bin/env perl
# The ACME benchmark's client side (scripts/bench.d/acme.sh runs it; everything on 127.0.0.1):
#
#   acme-probe.pl dns-wait DNS_PORT MGMT_PORT
#       waits until pebble-challtestsrv answers on its management API and its DNS port
#   acme-probe.pl dns MGMT_PORT TARGET NAMES_FILE
#       TARGET A 127.0.0.1, then NAME CNAME TARGET for every name of NAMES_FILE (one a line)
#   acme-probe.pl latency OPTIONS NAMES_FILE
#       for each name in turn: "portalctl domain add NAME", then a verified TLS handshake every
#       POLL seconds until one presents a certificate for NAME that verifies against --ca;
#       writes "name<TAB>seconds<TAB>portalctl_seconds<TAB>handshakes" lines to --out; between
#       two names, a pause of GAP plus a random 0 to 1 s
#   acme-probe.pl burst OPTIONS NAMES_FILE JSON_FILE
#       "portalctl import JSON_FILE", then "portalctl --json status" every POLL seconds; each
#       name it shows active is checked with a verified handshake; until every name is served
#       or --timeout. Writes "name<TAB>served_seconds" lines (empty when never) to --out and a
#       "BURST key=value ..." line to stdout
#   acme-probe.pl tls-load --port P --ca ROOT --host HOST --rate R --out FILE
#       until SIGTERM or SIGINT: a new TLS connection to HOST (verified), "GET /", 200 expected,
#       R times a second; writes "TLSLOAD requests=N failed=M ..." to FILE at the end
#
# OPTIONS: --portalctl PATH --data DIR --port HTTPS_PORT --ca ROOT_PEM [--poll S] [--timeout S]
#          [--out FILE] [--gap S] [--brand PREFIX]
use strict;
use warnings;

use Getopt::Long qw(GetOptionsFromArray);
use HTTP::Tiny;
use IO::Select;
use IO::Socket::INET;
use IO::Socket::SSL;
use JSON::PP;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);

$| = 1;
my $cmd = shift @ARGV // die "usage: acme-probe.pl dns-wait|dns|latency|burst|tls-load ...\n";

my %opt = (poll => 0.05, timeout => 120, gap => 0.5, brand => 'Bench');
GetOptionsFromArray(\@ARGV, \%opt, 'portalctl=s', 'data=s', 'port=i', 'ca=s', 'poll=f',
    'timeout=f', 'out=s', 'gap=f', 'brand=s', 'host=s', 'rate=f') or die "bad options\n";

sub slurp_lines {
    my ($file) = @_;
    open my $fh, '<', $file or die "$file: $!\n";
    chomp(my @l = grep { /\S/ } <$fh>);
    return @l;
}

# Runs CMD; returns (exit status, stdout, stderr).
sub run {
    my (@cmd) = @_;
    my ($out, $err) = ('', '');
    pipe(my $or, my $ow) or die "pipe: $!";
    pipe(my $er, my $ew) or die "pipe: $!";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        close $or; close $er;
        open STDIN, '<', '/dev/null';
        open STDOUT, '>&', $ow or POSIX::_exit(126);
        open STDERR, '>&', $ew or POSIX::_exit(126);
        { no warnings 'exec'; exec { $cmd[0] } @cmd; }
        print STDERR "cannot run $cmd[0]: $!\n";
        POSIX::_exit(127);
    }
    close $ow; close $ew;
    my $sel = IO::Select->new($or, $er);
    while ($sel->count) {
        for my $fh ($sel->can_read) {
            my $n = sysread $fh, my $buf, 65536;
            if (!$n) { $sel->remove($fh); next }
            if ($fh == $or) { $out .= $buf } else { $err .= $buf }
        }
    }
    waitpid $pid, 0;
    my $rc = $? & 127 ? 128 + ($? & 127) : $? >> 8;
    return ($rc, $out, $err);
}

sub need { for (@_) { defined $opt{$_} or die "acme-probe.pl $cmd: --$_ is required\n" } }

# One TLS handshake with SNI NAME, verified against --ca and NAME; with REQUEST, the request
# is sent and the status of the answer returned. Returns (ok, error or status).
sub handshake {
    my ($name, $request) = @_;
    my $s = IO::Socket::SSL->new(
        PeerAddr => '127.0.0.1', PeerPort => $opt{port}, Timeout => 5,
        SSL_hostname => $name, SSL_verify_mode => SSL_VERIFY_PEER,
        SSL_ca_file => $opt{ca}, SSL_verifycn_name => $name, SSL_verifycn_scheme => 'http',
        SSL_session_cache_size => 0);
    unless ($s) {
        no warnings 'once';
        return (0, $IO::Socket::SSL::SSL_ERROR || "$!");
    }
    my $status = 'handshake';
    if (defined $request) {
        my $bytes = $request;
        while (length $bytes) {
            my $n = $s->syswrite($bytes);
            unless ($n) { $s->close(SSL_fast_shutdown => 1); return (0, "write: $!") }
            substr($bytes, 0, $n) = '';
        }
        my $buf = '';
        my $sel = IO::Select->new($s);
        my $deadline = time + 10;
        while (time < $deadline) {
            last unless $s->pending || $sel->can_read($deadline - time);
            my $n = $s->sysread($buf, 65536, length $buf);
            last unless $n;
        }
        ($status) = $buf =~ m{^HTTP/1\.\d (\d{3})};
        $status //= $buf eq '' ? 'no answer' : 'bad answer';
    }
    $s->close(SSL_fast_shutdown => 1);
    return (defined $request ? ($status eq '200' ? 1 : 0) : 1, $status);
}

# ---- DNS (pebble-challtestsrv) ------------------------------------------------------------

sub dns_api {
    my ($mgmt, $path, $body) = @_;
    state_http()->post("http://127.0.0.1:$mgmt$path", {
        headers => { 'Content-Type' => 'application/json' }, content => encode_json($body) });
}

my $http;
sub state_http { $http //= HTTP::Tiny->new(timeout => 5, keep_alive => 1) }

sub dns_ok {
    my ($mgmt, $path, $body) = @_;
    my $r = dns_api($mgmt, $path, $body);
    die "POST $path: $r->{status} $r->{reason} $r->{content}\n" unless $r->{status} == 200;
}

# One A question to 127.0.0.1:PORT over UDP; true when any answer comes back.
sub dns_answers {
    my ($port, $name) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'udp')
        or return 0;
    my $id = int rand 65536;
    my $q = pack('n6', $id, 0x0100, 1, 0, 0, 0)
        . join('', map { chr(length) . $_ } split /\./, $name) . "\0" . pack('n2', 1, 1);
    $s->send($q) or return 0;
    return 0 unless IO::Select->new($s)->can_read(0.5);
    defined $s->recv(my $buf, 4096) or return 0;
    return length $buf >= 2 && unpack('n', $buf) == $id;
}

if ($cmd eq 'dns-wait') {
    my ($port, $mgmt) = @ARGV;
    my $deadline = time + 15;
    while (time < $deadline) {
        my $r = HTTP::Tiny->new(timeout => 1)->get("http://127.0.0.1:$mgmt/");
        exit 0 if $r->{status} != 599 && dns_answers($port, 'ready.challtestsrv.invalid');
        sleep 0.05;
    }
    die "pebble-challtestsrv does not answer on 127.0.0.1:$port and :$mgmt\n";
}

if ($cmd eq 'dns') {
    my ($mgmt, $target, $file) = @ARGV;
    dns_ok($mgmt, '/add-a', { host => $target, addresses => ['127.0.0.1'] });
    dns_ok($mgmt, '/set-cname', { host => $_, target => $target }) for slurp_lines($file);
    exit 0;
}

# ---- latency ------------------------------------------------------------------------------

if ($cmd eq 'latency') {
    need(qw(portalctl data port ca out));
    my @names = slurp_lines($ARGV[0] // die "latency: NAMES_FILE?\n");
    open my $out, '>', $opt{out} or die "$opt{out}: $!\n";
    my $i = 0;
    for my $name (@names) {
        $i++;
        my $t0 = time;
        my ($rc, $o, $e) = run($opt{portalctl}, '--data', $opt{data}, 'domain', 'add', $name,
                               '--brand', "$opt{brand} $i");
        die "portalctl domain add $name: exit $rc: $e$o" if $rc != 0;
        my $t_ctl = time - $t0;
        my ($ok, $why, $n) = (0, '', 0);
        while (1) {
            ($ok, $why) = handshake($name);
            $n++;
            last if $ok || time - $t0 > $opt{timeout};
            sleep $opt{poll};
        }
        my $secs = time - $t0;
        printf $out "%s\t%s\t%.4f\t%d\n", $name, $ok ? sprintf('%.4f', $secs) : '', $t_ctl, $n;
        printf STDERR "   %-40s %s\n", $name,
            $ok ? sprintf('%.2f s (%d handshakes)', $secs, $n)
                : sprintf('not served after %.0f s: %s', $secs, $why);
        # A random pause of GAP to GAP + 1 s: the next add lands at a random point of the
        # engine's snapshot poll (every 500 ms), not in step with it.
        sleep $opt{gap} + rand(1) if $i < @names;
    }
    close $out or die "$opt{out}: $!\n";
    exit 0;
}

# ---- burst --------------------------------------------------------------------------------

if ($cmd eq 'burst') {
    need(qw(portalctl data port ca out));
    my ($names_file, $json_file) = @ARGV;
    my @names = slurp_lines($names_file);
    my %want = map { $_ => 1 } @names;
    my (%served, %active_at);
    my ($checks, $active_not_served, $polls, $status_secs) = (0, 0, 0, 0);
    my $t0 = time;
    my ($rc, $o, $e) = run($opt{portalctl}, '--data', $opt{data}, 'import', $json_file);
    die "portalctl import: exit $rc: $e$o" if $rc != 0;
    my $t_import = time - $t0;
    my ($t_all_active, $last_report) = (undef, $t0);
    my %states;
    while (keys %served < @names && time - $t0 < $opt{timeout}) {
        my $ts = time;
        my ($src, $json, $err) = run($opt{portalctl}, '--data', $opt{data}, '--json', 'status');
        $status_secs += time - $ts;
        $polls++;
        die "portalctl --json status: exit $src: $err" if $src != 0;
        my $st = decode_json($json);
        %states = ();
        my $active = 0;
        for my $d (@{ $st->{domains} }) {
            next unless $want{ $d->{host} };
            $states{ $d->{state} }++;
            next unless $d->{state} eq 'active';
            $active++;
            $active_at{ $d->{host} } //= time - $t0;
        }
        $t_all_active //= time - $t0 if $active == @names;
        for my $name (grep { !$served{$_} } sort keys %active_at) {
            my ($ok) = handshake($name);
            $checks++;
            if ($ok) { $served{$name} = time - $t0 } else { $active_not_served++ }
        }
        if (time - $last_report >= 10) {
            $last_report = time;
            printf STDERR "   %6.1f s: %d of %d served (%s)\n", time - $t0, scalar keys %served,
                scalar @names, join(', ', map { "$_ $states{$_}" } sort keys %states);
        }
        sleep $opt{poll} if keys %served < @names;
    }
    my $elapsed = time - $t0;
    open my $out, '>', $opt{out} or die "$opt{out}: $!\n";
    printf $out "%s\t%s\t%s\n", $_, defined $served{$_} ? sprintf('%.3f', $served{$_}) : '',
        defined $active_at{$_} ? sprintf('%.3f', $active_at{$_}) : '' for @names;
    close $out or die "$opt{out}: $!\n";
    my @t = sort { $a <=> $b } values %served;
    my $q = sub { @t ? $t[int($_[0] * (@t - 1) + 0.5)] : -1 };
    printf "BURST names=%d served=%d import_s=%.3f first_s=%.3f p50_s=%.3f p90_s=%.3f "
         . "all_s=%s all_active_s=%s elapsed_s=%.3f polls=%d status_s_mean=%.4f checks=%d "
         . "active_not_served=%d states=%s\n",
        scalar @names, scalar @t, $t_import, $q->(0), $q->(0.5), $q->(0.9),
        @t == @names ? sprintf('%.3f', $t[-1]) : 'none',
        defined $t_all_active ? sprintf('%.3f', $t_all_active) : 'none', $elapsed, $polls,
        $polls ? $status_secs / $polls : 0, $checks, $active_not_served,
        join(',', map { "$_:$states{$_}" } sort keys %states) || '-';
    exit 0;
}

# ---- HTTPS load ---------------------------------------------------------------------------

if ($cmd eq 'tls-load') {
    need(qw(port ca host rate out));
    my $stop = 0;
    $SIG{TERM} = $SIG{INT} = sub { $stop = 1 };
    my $req = "GET / HTTP/1.1\r\nHost: $opt{host}\r\nConnection: close\r\n\r\n";
    my ($n, $failed, %why) = (0, 0);
    my $t0 = time;
    my $interval = 1 / $opt{rate};
    my $next = $t0;
    while (!$stop) {
        my ($ok, $status) = handshake($opt{host}, $req);
        $n++;
        unless ($ok) { $failed++; $why{$status}++ }
        $next += $interval;
        my $wait = $next - time;
        if ($wait > 0) { sleep $wait } else { $next = time }
    }
    my $secs = time - $t0;
    open my $out, '>', $opt{out} or die "$opt{out}: $!\n";
    printf $out "TLSLOAD requests=%d failed=%d seconds=%.1f rate=%.1f errors=%s\n", $n, $failed,
        $secs, $secs > 0 ? $n / $secs : 0,
        join(';', map { "$_:$why{$_}" } sort keys %why) || '-';
    close $out;
    exit 0;
}

die "acme-probe.pl: unknown command $cmd\n";
