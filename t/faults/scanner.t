# A scanner: 10,000 TLS connections (a full handshake and a request each) and 2,000 plain
# HTTP requests for names that are not portal domains (random names as SNI and Host, SNI and
# Host that differ, no SNI, ACME challenge paths with random tokens, and names whose DNS
# does point at the edge), with portal_acme on and Pebble running. The ACME engine, driven by
# the snapshot only, makes no order; at nginx's default error_log level (error), the module
# logs nothing for those requests; every answer is the documented one.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use Time::HiRes qw(sleep time);
use JSON::PP;
use POSIX ();
use Net::SSLeay;
use Socket qw(PF_INET SOCK_STREAM SOL_SOCKET SO_RCVTIMEO SO_SNDTIMEO inet_aton sockaddr_in);
use PortalTest;
use PortalAcme;

# A write to a connection that nginx closed (a worker killed) fails; it does not kill the test
# or its clients.
$SIG{PIPE} = 'IGNORE';

my $TLS = 10_000;
my $HTTP = 2_000;
my $CLIENTS = 2;

my $t = PortalTest->new;
my $acme = PortalAcme->new(tmp => $t->tmp);
$t->start_upstream;
$t->ctl_ok('init');

my $dns = $acme->start_dns;
my $p = $acme->start_pebble(http_port => $t->port, env => { PEBBLE_WFE_NONCEREJECT => 0 });
my $fallback = $t->make_cert('fallback.invalid', self_signed => 1);

$t->write_conf(<<"EOF2", workers => 2, log_level => 'error');
    portal_acme on;
    portal_acme_directory $p->{url};
    portal_acme_ca_certificate $p->{ca};
    portal_acme_cname_target edge.scan.test;
    portal_acme_resolver 127.0.0.1:$dns->{port};
    portal_acme_backoff 1s 2s 4s 8s;

    server {
        listen 127.0.0.1:%%PORT%%;
        portal on;
        location / { proxy_pass http://%%UPSTREAM%%; }
        location = /scan-status { portal off; portal_status; }
    }
    server {
        listen 127.0.0.1:%%PORT2%% ssl;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_certificate $fallback->{cert};
        ssl_certificate_key $fallback->{key};
        portal_ssl on;
        portal on;
        location / { proxy_pass http://%%UPSTREAM%%; }
    }
EOF2
$t->start;

# One real domain first: the engine works, and orders what the snapshot asks for.
$acme->point_here('real.tenant.example', 'edge.scan.test');
$t->ctl_ok(qw(domain add real.tenant.example --brand Real));
my $deadline = time + 20;
my $hs;
until (time > $deadline) {
    $hs = $t->tls_handshake(port => $t->port2, sni => 'real.tenant.example', ca => $p->{roots});
    last if $hs->{ok};
    sleep 0.1;
}
ok($hs->{ok}, 'control: a real portal domain gets its certificate from Pebble')
    or diag $t->error_log_tail;
my $orders = $acme->order_count;
cmp_ok($orders, '>=', 1, "control: the engine made $orders order(s) for it");

# Names whose DNS points at the edge (as a scanner's list of real names might), not portal
# domains.
my @pointed = map { "pointed$_.elsewhere.example" } 1 .. 20;
$acme->point_here($_, 'edge.scan.test') for @pointed;

sub status_counters {
    my $r = $t->get('admin.example', '/scan-status?format=prometheus');
    return { $r->{body} =~ /^portal_requests_total\{result="(\w+)"\} (\d+)$/mg };
}
my $counters_before = status_counters();
my $log_from = length $t->error_log;
my $pebble_from = $acme->pebble_log_size;

# ---- the scan ----
my @tld = qw(com net org io example test invalid co.uk de xyz);
sub random_name {
    my ($r) = @_;
    my @labels;
    for (1 .. 1 + int(rand(3))) {
        my $len = 1 + int(rand($r < 0.02 ? 63 : 12));
        push @labels, join '', map { ('a' .. 'z', 0 .. 9)[rand 36] } 1 .. $len;
    }
    my $name = join('.', @labels, $tld[rand @tld]);
    $name = "xn--$name" if $r > 0.97;
    return $name;
}

my $t0 = time;
my @clients;
for my $c (1 .. $CLIENTS) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        srand($$ ^ time);
        open my $fh, '>', $t->tmp . "/scan$c.log" or POSIX::_exit(1);
        # Net::SSLeay directly: a third of IO::Socket::SSL's cost per connection. No
        # session cache: every handshake is a full one.
        Net::SSLeay::initialize();
        my $ctx = Net::SSLeay::CTX_new() or POSIX::_exit(2);
        Net::SSLeay::CTX_set_verify($ctx, 0);
        Net::SSLeay::CTX_set_session_cache_mode($ctx, 0);
        my $addr = sockaddr_in($t->port2, inet_aton('127.0.0.1'));
        for my $i (1 .. $TLS / $CLIENTS) {
            my $r = rand;
            my $sni = random_name($r);
            my ($kind, $host, $path, $want) = ('same', $sni, '/', 421);
            if ($r < 0.1) {
                ($kind, $host) = ('differ', random_name(0.5));
            } elsif ($r < 0.2) {
                ($kind, $sni) = ('no-sni', undef);
            } elsif ($r < 0.25) {
                ($kind, $path, $want) = ('challenge',
                    '/.well-known/acme-challenge/' . join('', map { ('A' .. 'Z', 'a' .. 'z', 0 .. 9, '-', '_')[rand 64] } 1 .. 43),
                    404);
            } elsif ($r < 0.3) {
                ($kind, $sni) = ('pointed', $pointed[rand @pointed]);
                $host = $sni;
            } elsif ($r < 0.35) {
                ($kind, $host) = ('upper', uc($sni) . '.');
            }
            socket(my $s, PF_INET, SOCK_STREAM, 0) or POSIX::_exit(3);
            setsockopt($s, SOL_SOCKET, $_, pack('l!l!', 5, 0)) for SO_RCVTIMEO, SO_SNDTIMEO;
            my ($status, $buf) = (0, '');
            if (connect($s, $addr)) {
                my $ssl = Net::SSLeay::new($ctx);
                Net::SSLeay::set_fd($ssl, fileno $s);
                Net::SSLeay::set_tlsext_host_name($ssl, $sni) if defined $sni;
                if (Net::SSLeay::connect($ssl) == 1) {
                    Net::SSLeay::write($ssl, "GET $path HTTP/1.1\r\nHost: $host\r\nConnection: close\r\n\r\n");
                    while (defined(my $d = Net::SSLeay::read($ssl))) { last unless length $d; $buf .= $d }
                    ($status) = $buf =~ m{^HTTP/1\.1 (\d{3})};
                    my $x509 = Net::SSLeay::get_peer_certificate($ssl);
                    my $subject = $x509 ? Net::SSLeay::X509_NAME_oneline(
                        Net::SSLeay::X509_get_subject_name($x509)) : '';
                    Net::SSLeay::X509_free($x509) if $x509;
                    # anything but the fallback certificate counts as a wrong answer
                    $status = "cert:$subject" unless $subject =~ /CN ?= ?fallback\.invalid/;
                    print $fh "$kind tls ", ($status // 0), " $want\n";
                } else {
                    print $fh "$kind tls-failed 0 $want\n";
                }
                Net::SSLeay::free($ssl);
            } else {
                print $fh "$kind tls-failed 0 $want\n";
            }
            close $s;
        }
        for my $i (1 .. $HTTP / $CLIENTS) {
            my $r = rand;
            my ($kind, $host, $want) = ('http', random_name($r), 421);
            ($kind, $host, $want) = ('http-ip', "127.0.0.$i", 421) if $r < 0.05;
            ($kind, $host, $want) = ('http-label', "scanme$i", 421) if $r >= 0.05 && $r < 0.1;
            ($kind, $host, $want) = ('http-badport', random_name(0.5) . ':99999', 400)
                if $r >= 0.1 && $r < 0.15;
            my $res = $t->raw("GET / HTTP/1.1\r\nHost: $host\r\nConnection: close\r\n\r\n",
                port => $t->port);
            print $fh "$kind http $res->{status} $want\n";
        }
        close $fh;
        POSIX::_exit(0);
    }
    push @clients, $pid;
}
waitpid $_, 0 for @clients;
my $secs = time - $t0;
sleep 2;    # the engine has had time to notice anything, had it been told

my (%kinds, @wrong, $n_tls, $n_http);
for my $c (1 .. $CLIENTS) {
    for (split /\n/, PortalTest::slurp($t->tmp . "/scan$c.log") // '') {
        my ($kind, $via, $status, $want) = split ' ';
        $kinds{$kind}++;
        $via =~ /^tls/ ? $n_tls++ : $n_http++;
        push @wrong, $_ if $status ne $want;
    }
}
is($n_tls, $TLS, "$TLS TLS connections made");
is($n_http, $HTTP, "$HTTP plain HTTP requests made");
is(scalar @wrong, 0, 'every one got the documented answer (handshake with the fallback '
    . 'certificate; 421, 404 for a challenge token, 400 for a bad port)')
    or diag join "\n", @wrong[0 .. ($#wrong < 9 ? $#wrong : 9)];
note sprintf('%d TLS connections and %d HTTP requests in %.1f s (%.0f per second): %s',
    $TLS, $HTTP, $secs, ($TLS + $HTTP) / $secs, join(', ', map { "$_ $kinds{$_}" } sort keys %kinds));

is($acme->order_count($pebble_from), 0, 'Pebble: no order during the scan');
is($acme->pebble_count('new_account', $pebble_from), 0, 'Pebble: no account request either');
is($acme->order_count, $orders, 'Pebble: still only the order(s) of the real domain');

my @scan_log = grep { length } split /\n/, substr($t->error_log, $log_from);
my @module = grep { /portal|acme/i } @scan_log;
is_deeply(\@module, [], 'error.log (level error): no line from the module during the scan');
is(scalar @scan_log, 0, 'error.log (level error): no line at all during the scan')
    or diag join "\n", @scan_log[0 .. ($#scan_log < 9 ? $#scan_log : 9)];

my $counters = status_counters();
my $misses = ($counters->{miss} // 0) - ($counters_before->{miss} // 0);
# the requests reached the module: each lookup of a name that is not a portal domain is a
# miss (the challenge tokens and the bad ports are answered before any lookup)
cmp_ok($misses, '>=', ($TLS + $HTTP) / 2, "portal_status counted $misses misses");
is(($counters->{hit} // 0) - ($counters_before->{hit} // 0), 0, 'and no hit');

my ($src, $json) = $t->ctl(qw(status --json));
my $st = eval { decode_json($json) } // {};
is_deeply([map { $_->{host} } @{ $st->{domains} // [] }], ['real.tenant.example'],
    'portalctl status: the one real domain, nothing else');
is_deeply([grep { /exited on signal|\[(?:alert|crit|emerg)\]/ } split /\n/, $t->error_log], [],
    'no worker died, nothing at alert or above');
$t->stop;
done_testing;
