# The ACME engine outside nginx: `portalctl acme issue` and `acme run` against Pebble, with
# nginx only answering HTTP-01 (portal_acme_challenge on) and serving what the engine stored.
# Also: the HTTP-01 responder itself (known token, unknown token, bad token, method, before
# rewrites) and one engine per data directory.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use Time::HiRes qw(sleep time);
use JSON::PP;
use POSIX qw(WNOHANG);
use PortalTest;
use PortalAcme;

my $t = PortalTest->new;
my $acme = PortalAcme->new(tmp => $t->tmp);
$t->start_upstream;
$t->ctl_ok('init');
$t->ctl_ok(qw(domain add portal.yourwebsite.com --brand), 'Your Website');

my $dns = $acme->start_dns;
my $p = $acme->start_pebble(http_port => $t->port, env => { PEBBLE_WFE_NONCEREJECT => 0 });
my $fallback = $t->make_cert('fallback.invalid', self_signed => 1);

$t->write_conf(<<"EOF2");
    portal_acme_challenge on;

    server {
        listen 127.0.0.1:%%PORT%%;
        portal on;
        # a usual "everything to https": HTTP-01 is answered before it
        location / { return 301 https://\$host\$request_uri; }
    }
    server {
        listen 127.0.0.1:%%PORT2%% ssl;
        ssl_certificate $fallback->{cert};
        ssl_certificate_key $fallback->{key};
        portal_ssl on;
        portal on;
        location / { proxy_pass http://%%UPSTREAM%%; }
    }
EOF2
$t->start;
unlike($t->error_log, qr/runs the ACME engine/, 'portal_acme_challenge alone runs no engine in nginx');

# ---- the responder ----
$t->lmdb_put($t->data . '/state', 'challenges', { 'tok_EN-123' => 'tok_EN-123.thumbprint' });
my $r = $t->get('any.example', '/.well-known/acme-challenge/tok_EN-123');
is($r->{status}, 200, 'a published token: 200');
is($r->{body}, 'tok_EN-123.thumbprint', 'the body is the key authorization');
like($r->{headers}{'content-type'} // '', qr{^text/plain}, 'as text/plain');
is($t->get('any.example', '/.well-known/acme-challenge/unknown_token')->{status}, 404,
   'an unknown token: 404');
is($t->get('any.example', '/.well-known/acme-challenge/bad%21token')->{status}, 404,
   'a token that is not base64url: 404');
is($t->get('any.example', '/.well-known/acme-challenge/a.b')->{status}, 404, 'a dot: 404');
is($t->get('any.example', '/something')->{status}, 301, 'other paths still get the redirect');
my $post = $t->raw("POST /.well-known/acme-challenge/tok_EN-123 HTTP/1.1\r\nHost: x.example\r\n"
                   . "Content-Length: 0\r\nConnection: close\r\n\r\n");
is($post->{status}, 405, 'POST: 405');

# ---- portalctl acme issue ----
my @engine = ('--directory', $p->{url}, '--ca-certificate', $p->{ca},
              '--cname-target', 'edge.portal.test', '--resolver', "127.0.0.1:$dns->{port}",
              '--backoff', '1s', '--backoff', '2s');
my ($rc, $out, $err) = $t->ctl('acme', 'issue', 'portal.yourwebsite.com', @engine);
is($rc, 1, 'acme issue without the CNAME fails');
like($err, qr/pending_dns: DNS: no A\/AAAA\/CNAME/, 'and says it is pending DNS');
is($acme->order_count, 0, 'and no order reached Pebble');

$acme->point_here('portal.yourwebsite.com', 'edge.portal.test');
($rc, $out, $err) = $t->ctl('acme', 'issue', 'portal.yourwebsite.com', @engine);
is($rc, 0, 'acme issue with the CNAME set: exit 0') or diag $err;
like($err, qr/certificate issued by "Pebble Intermediate CA/, 'it says so');
my $hs = $t->tls_handshake(port => $t->port2, sni => 'portal.yourwebsite.com', ca => $p->{roots});
ok($hs->{ok}, 'nginx serves the new certificate, verified against Pebble\'s root')
    or diag $hs->{error};

($rc, undef, $err) = $t->ctl('acme', 'issue', 'nope.example', @engine);
is($rc, 2, 'acme issue for a name that is no portal domain: exit 2');
like($err, qr/not an active portal domain/, 'and says why');
($rc, undef, $err) = $t->ctl('acme', 'issue', 'portal.yourwebsite.com', '--directory', $p->{url},
                             '--cname-target', 'edge.portal.test', '--key-type', 'dsa');
is($rc, 2, 'a bad key type: exit 2');
like($err, qr/--key-type: invalid key type "dsa"/, 'naming the option and the value');
($rc, undef, $err) = $t->ctl('acme', 'issue', 'portal.yourwebsite.com', '--directory', $p->{url});
is($rc, 2, 'no CNAME target nor edge address: exit 2');
like($err, qr/needs a CNAME target or edge addresses/, 'and says so');

# ---- portalctl acme run, and one engine per data directory ----
$t->ctl_ok(qw(domain add second.portal.example --brand Second));
$acme->point_here('second.portal.example', 'edge.portal.test');
my $log = $t->tmp . '/acme-run.log';
my $pid = fork // die "fork: $!";
if ($pid == 0) {
    open STDOUT, '>', $log or POSIX::_exit(1);
    open STDERR, '>&', \*STDOUT or POSIX::_exit(1);
    { no warnings 'exec';
      exec 'timeout', '120', $ENV{PORTALCTL} // "$FindBin::Bin/../../build/portalctl",
          '--data', $t->data, 'acme', 'run', @engine; }
    POSIX::_exit(127);
}
my $deadline = time + 15;
my $got;
until (($got = $t->tls_handshake(port => $t->port2, sni => 'second.portal.example',
                                 ca => $p->{roots}))->{ok} || time > $deadline) { sleep 0.2 }
ok($got->{ok}, 'acme run issues the second domain');
($rc, undef, $err) = $t->ctl('acme', 'issue', 'portal.yourwebsite.com', @engine);
is($rc, 1, 'a second engine for the same data directory is refused');
like($err, qr/an ACME engine already runs for "[^"]+" \(pid \d+ portalctl acme run\)/,
     'naming the one that runs');
my (undef, $status) = $t->ctl('status');
like($status, qr/^engine: running, pid \d+ portalctl acme run$/m, 'status names the engine');

$t->ctl_ok('acme', 'renew', 'second.portal.example');
$deadline = time + 15;
my $renewed;
until ((($renewed = $t->tls_handshake(port => $t->port2, sni => 'second.portal.example'))->{serial}
        // $got->{serial}) ne $got->{serial} || time > $deadline) { sleep 0.2 }
isnt($renewed->{serial}, $got->{serial}, 'acme renew is carried out by acme run');

kill 'TERM', $pid;
my $t0 = time;
waitpid($pid, 0);
ok(time - $t0 < 5, sprintf('acme run stops on SIGTERM (%.1f s)', time - $t0));
is($? >> 8, 0, 'with exit 0');
like(PortalTest::slurp($log), qr/engine stopped/, 'saying the engine stopped');
(undef, $status) = $t->ctl('status');
like($status, qr/^engine: not running$/m, 'status: no engine');

$t->stop;
is_deeply([$t->crash_lines], [], 'no worker crashed');
done_testing;
