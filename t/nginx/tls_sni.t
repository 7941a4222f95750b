# portal_ssl: each portal domain gets its own certificate at the handshake, picked by SNI
# from the state store; a name with no certificate gets the server's ssl_certificate (the
# fallback), or with "portal_ssl_unknown reject" the unrecognized_name alert; no SNI or an
# IP literal gets the fallback; a request for another host than the SNI name gets 421.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use PortalTest;

my $t = PortalTest->new;
$t->start_upstream;
$t->ctl_ok('init');
$t->ctl_ok(qw(domain add portal.alpha.example --brand Alpha));
$t->ctl_ok(qw(domain add portal.beta.example --brand Beta));
$t->ctl_ok(qw(domain add portal.nocert.example --brand), 'No Cert');    # no certificate yet

my $ca = $t->test_ca;
my $fallback = $t->make_cert('fallback.invalid', self_signed => 1);
my $alpha = $t->make_cert('portal.alpha.example');                  # ECDSA P-256
my $beta = $t->make_cert('portal.beta.example', type => 'rsa');     # RSA 2048
$t->import_cert('portal.alpha.example', $alpha);
$t->import_cert('portal.beta.example', $beta);

# PORT: unknown names get the fallback; PORT2: they are rejected
$t->write_conf(<<"EOF2", workers => 1);
    server {
        listen 127.0.0.1:%%PORT%% ssl default_server;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_certificate $fallback->{cert};
        ssl_certificate_key $fallback->{key};
        portal_ssl on;
        portal on;
        location / {
            proxy_pass http://%%UPSTREAM%%;
        }
    }
    server {
        listen 127.0.0.1:%%PORT2%% ssl default_server;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_certificate $fallback->{cert};
        ssl_certificate_key $fallback->{key};
        portal_ssl on;
        portal_ssl_unknown reject;
        portal on;
        location / {
            proxy_pass http://%%UPSTREAM%%;
        }
    }
EOF2
$t->start;
my @workers = $t->worker_pids;
my $port = $t->port;

# What the handshake with this SNI presents: "serial CN key type", or why it failed.
sub served {
    my ($sni, %opt) = @_;
    my $hs = $t->tls_handshake(sni => $sni, %opt);
    return $hs->{ok} ? "$hs->{serial} $hs->{cn} $hs->{key}" : "failed: $hs->{error}";
}
my $alpha_cert = "$alpha->{serial} portal.alpha.example EC";
my $beta_cert = "$beta->{serial} portal.beta.example RSA";
my $fallback_cert = "$fallback->{serial} fallback.invalid EC";

# each portal domain's own certificate, in both protocol versions
for my $version ('TLSv1_3', 'TLSv1_2') {
    is(served('portal.alpha.example', version => $version), $alpha_cert,
        "$version: SNI portal.alpha.example: its ECDSA certificate");
    is(served('portal.beta.example', version => $version), $beta_cert,
        "$version: SNI portal.beta.example: its RSA certificate");
}
{
    my $hs = $t->tls_handshake(sni => 'portal.alpha.example');
    is($hs->{issuer}, '/CN=Portal Test Intermediate CA', 'issued by the test CA\'s intermediate');
    is($hs->{version}, 'TLSv1_3', 'TLS 1.3 when the client offers it');
}

# a client that verifies: the chain (leaf and intermediate) and the name check out
for my $d (['portal.alpha.example', 'Alpha'], ['portal.beta.example', 'Beta']) {
    my ($host, $brand) = @$d;
    my ($rc, $out, $err) = $t->curl('--cacert', $ca->{root}, '--resolve',
        "$host:$port:127.0.0.1", "https://$host:$port/account");
    is($rc, 0, "curl --cacert to $host: verified, exit 0") or diag $err;
    like($out, qr/^GET \/account HTTP/, "curl to $host: the request reached the upstream");
    like($out, qr/^x-portal-brand: \Q$brand\E$/m, "curl to $host: upstream got brand $brand");
}

# names with no certificate, fallback mode
is(served('portal.nocert.example'), $fallback_cert,
    'a portal domain with no certificate: the fallback certificate');
is(served('stranger.example'), $fallback_cert, 'a name that is no portal domain: the fallback');
is($t->seen($t->https_get('portal.nocert.example', 'portal.nocert.example', '/'))
    ->{'x-portal-brand'}, 'No Cert', 'the domain with no certificate is still served over TLS');
is(served(undef), $fallback_cert, 'no SNI: the fallback certificate');
{
    my ($rc, $out) = $t->s_client('', '-noservername');
    is($t->pem_serial($out), $fallback->{serial}, 'no SNI (s_client -noservername): the fallback');
    ($rc, $out) = $t->s_client('', '-servername', '127.0.0.1');
    is($t->pem_serial($out), $fallback->{serial}, 'an IP literal as SNI: the fallback');
}

# names with no certificate, reject mode: the handshake ends with unrecognized_name
for my $name ('stranger.example', 'portal.nocert.example') {
    my ($rc, $out) = $t->s_client('', { port => $t->port2 }, '-servername', $name);
    isnt($rc, 0, "reject: s_client -servername $name fails");
    like($out, qr/tlsv1 unrecognized name.*SSL alert number 112/,
        "reject: $name: alert 112, unrecognized_name");
    is($t->pem_serial($out), undef, "reject: $name: no certificate at all");
}
like(served('stranger.example', port => $t->port2, version => 'TLSv1_2'),
    qr/^failed: .*unrecognized name/, 'reject, TLS 1.2 client: handshake fails the same way');
is(served('portal.alpha.example', port => $t->port2), $alpha_cert,
    'reject mode: a name with a certificate gets it');
is(served(undef, port => $t->port2), $fallback_cert, 'reject mode: no SNI gets the fallback');
{
    my ($rc, $out) = $t->s_client('', { port => $t->port2 }, '-servername', '127.0.0.1');
    is($t->pem_serial($out), $fallback->{serial}, 'reject mode: an IP literal gets the fallback');
}

# SNI and Host: the same domain is served, another one gets 421
{
    my $res = $t->https_get('portal.alpha.example', 'portal.alpha.example', '/');
    is($res->{status}, 200, 'SNI = Host: 200');
    is($t->seen($res)->{'x-portal-brand'}, 'Alpha', 'SNI = Host: that domain\'s brand');

    $res = $t->https_get('portal.alpha.example', 'portal.beta.example', '/');
    is($res->{status}, 421, 'SNI alpha, Host beta (both have certificates): 421');
    unlike($res->{body}, qr/Beta|Alpha/, '421: neither domain\'s context in the response');
    is($t->https_get('portal.beta.example', 'portal.alpha.example', '/')->{status}, 421,
        'SNI beta, Host alpha: 421');
    is($t->https_get('portal.alpha.example', 'stranger.example', '/')->{status}, 421,
        'SNI alpha, Host not a portal domain: 421');
    is($t->https_get('portal.alpha.example', "portal.beta.example:$port", '/')->{status}, 421,
        'SNI alpha, Host beta with a port: 421');
}
like($t->error_log,
    qr/\[info\] .*portal: host "portal\.beta\.example" differs from the TLS server name/,
    'error.log: the 421 is explained at info level');
{
    my $req = "GET / HTTP/1.1\r\nHost: portal.alpha.example\r\nConnection: close\r\n\r\n";
    my ($rc, $out) = $t->s_client($req, '-servername', '127.0.0.1', '-ign_eof');
    like($out, qr{^HTTP/1\.1 421 }m, 'an IP literal as SNI, Host a portal domain: 421');
    # no SNI: nothing to compare; the request is served over the fallback certificate
    ($rc, $out) = $t->s_client($req, '-noservername', '-ign_eof');
    like($out, qr/^x-portal-brand: Alpha$/m, 'no SNI, Host a portal domain: served by its Host');
}

# canonical names: case and a trailing dot do not matter, on either side
for my $sni ('PORTAL.ALPHA.EXAMPLE', 'Portal.Alpha.Example', 'portal.alpha.example.') {
    is(served($sni), $alpha_cert, "SNI $sni: the certificate of portal.alpha.example");
    my $res = $t->https_get($sni, 'portal.alpha.example', '/');
    is($t->seen($res)->{'x-portal-brand'}, 'Alpha', "SNI $sni, Host portal.alpha.example: 200");
}
for my $host ('PORTAL.ALPHA.EXAMPLE', 'portal.alpha.example.', "Portal.Alpha.Example.:$port") {
    my $res = $t->https_get('portal.alpha.example', $host, '/');
    is($t->seen($res)->{'x-portal-brand'}, 'Alpha', "SNI portal.alpha.example, Host $host: 200");
}

is_deeply([$t->worker_pids], \@workers, 'the same worker throughout: no crash');
is_deeply([$t->crash_lines], [], 'no crash in error.log');
unlike($t->error_log, qr/\[(?:alert|crit)\]/, 'no alert in error.log');

done_testing;
