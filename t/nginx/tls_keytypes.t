# A portal domain may hold an ECDSA and an RSA certificate at once: the client's signature
# algorithms (TLS 1.3) or cipher suites (TLS 1.2) choose. Importing the other key type adds
# a certificate, the same key type replaces it; cert rm --type removes one. A name's own
# certificates replace the fallback's: a client that cannot use them gets no certificate
# under that name, not the fallback.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use PortalTest;

my $t = PortalTest->new;
$t->start_upstream;
$t->ctl_ok('init');
$t->ctl_ok(qw(domain add portal.dual.example --brand Dual));
$t->ctl_ok(qw(domain add portal.ec.example --brand EC));

my $ca = $t->test_ca;
my $fallback = $t->make_cert('fallback.invalid', self_signed => 1, type => 'rsa');
my $ecdsa = $t->make_cert('portal.dual.example', type => 'ecdsa');
my $rsa = $t->make_cert('portal.dual.example', type => 'rsa');
my $ec_only = $t->make_cert('portal.ec.example', type => 'ecdsa');
$t->import_cert('portal.dual.example', $ecdsa);
$t->import_cert('portal.dual.example', $rsa);
$t->import_cert('portal.ec.example', $ec_only);

like($t->ctl_ok(qw(cert show portal.dual.example)),
    qr/key_type: ecdsa\n.*serial: .*\n.*key_type: rsa\n/s, 'cert show: both certificates');

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
EOF2
$t->start;
my $port = $t->port;

my %client = (
    'TLS 1.3, RSA signatures only'   => ['-tls1_3', '-sigalgs', 'RSA-PSS+SHA256:RSA+SHA256'],
    'TLS 1.3, ECDSA signatures only' => ['-tls1_3', '-sigalgs', 'ECDSA+SHA256'],
    'TLS 1.3, both'                  => ['-tls1_3'],
    'TLS 1.2, ECDHE-RSA suites only'   => ['-tls1_2', '-cipher', 'ECDHE-RSA-AES128-GCM-SHA256'],
    'TLS 1.2, ECDHE-ECDSA suites only' => ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-GCM-SHA256'],
    'TLS 1.2, RSA signatures only'   => ['-tls1_2', '-sigalgs', 'RSA+SHA256'],
);

# The serial of the certificate s_client got for SNI NAME, or "failed" and the alert.
sub served {
    my ($name, $client) = @_;
    my ($rc, $out) = $t->s_client('', '-servername', $name, @{ $client{$client} });
    my $serial = $t->pem_serial($out);
    return $serial if $rc == 0 && defined $serial;
    my ($why) = $out =~ /:([a-z0-9 ]+):[^:\n]*:\d+:SSL alert number/;
    return 'failed' . ($why ? ": $why" : '') . (defined $serial ? " (got $serial)" : '');
}

is(served('portal.dual.example', 'TLS 1.3, RSA signatures only'), $rsa->{serial},
    'TLS 1.3, a client offering only RSA signatures: the RSA certificate');
is(served('portal.dual.example', 'TLS 1.3, ECDSA signatures only'), $ecdsa->{serial},
    'TLS 1.3, a client offering only ECDSA signatures: the ECDSA certificate');
is(served('portal.dual.example', 'TLS 1.2, ECDHE-RSA suites only'), $rsa->{serial},
    'TLS 1.2, a client offering only ECDHE-RSA suites: the RSA certificate');
is(served('portal.dual.example', 'TLS 1.2, ECDHE-ECDSA suites only'), $ecdsa->{serial},
    'TLS 1.2, a client offering only ECDHE-ECDSA suites: the ECDSA certificate');
is(served('portal.dual.example', 'TLS 1.2, RSA signatures only'), $rsa->{serial},
    'TLS 1.2, a client offering only RSA signatures: the RSA certificate');
like(served('portal.dual.example', 'TLS 1.3, both'),
    qr/^(?:\Q$ecdsa->{serial}\E|\Q$rsa->{serial}\E)$/,
    'a client offering both: one of the two');
note 'a client offering both gets the '
    . (served('portal.dual.example', 'TLS 1.3, both') eq $ecdsa->{serial} ? 'ECDSA' : 'RSA')
    . ' certificate';

# the same with IO::Socket::SSL, and with curl verifying each chain
is($t->tls_handshake(sni => 'portal.dual.example', version => 'TLSv1_2',
    cipher => 'ECDHE-RSA-AES128-GCM-SHA256')->{key}, 'RSA', 'IO::Socket::SSL, RSA suites: RSA key');
is($t->tls_handshake(sni => 'portal.dual.example', version => 'TLSv1_2',
    cipher => 'ECDHE-ECDSA-AES128-GCM-SHA256')->{key}, 'EC',
    'IO::Socket::SSL, ECDSA suites: EC key');
for my $suite ('ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES128-GCM-SHA256') {
    my ($rc, $out, $err) = $t->curl('--cacert', $ca->{root}, '--tls-max', '1.2',
        '--ciphers', $suite, '--resolve', "portal.dual.example:$port:127.0.0.1",
        "https://portal.dual.example:$port/");
    like($out, qr/^x-portal-brand: Dual$/m, "curl --ciphers $suite: verified, the portal served")
        or diag $err;
}

# a name with only an ECDSA certificate, a client that only takes RSA: no certificate under
# that name at all (the fallback, an RSA certificate here, is not offered in its place)
like(served('portal.ec.example', 'TLS 1.3, RSA signatures only'),
    qr/^failed: .*handshake failure$/,
    'ECDSA-only domain, RSA-only TLS 1.3 client: the handshake fails');
like(served('portal.ec.example', 'TLS 1.2, ECDHE-RSA suites only'),
    qr/^failed: .*handshake failure$/,
    'ECDSA-only domain, ECDHE-RSA-only TLS 1.2 client: the handshake fails');
is(served('portal.ec.example', 'TLS 1.3, ECDSA signatures only'), $ec_only->{serial},
    'ECDSA-only domain, ECDSA client: its certificate');
is(served('unknown.example', 'TLS 1.3, RSA signatures only'), $fallback->{serial},
    'an unknown name, RSA-only client: the (RSA) fallback');

# the same key type again: replaces that one only
my $ecdsa2 = $t->make_cert('portal.dual.example', type => 'ecdsa');
$t->import_cert('portal.dual.example', $ecdsa2);
is(served('portal.dual.example', 'TLS 1.3, ECDSA signatures only'), $ecdsa2->{serial},
    'a new ECDSA certificate: it replaces the old one');
is(served('portal.dual.example', 'TLS 1.3, RSA signatures only'), $rsa->{serial},
    'and the RSA certificate stays');

# cert rm --type: one goes, the other stays
$t->ctl_ok(qw(cert rm portal.dual.example --type ecdsa));
is(served('portal.dual.example', 'TLS 1.3, both'), $rsa->{serial},
    'cert rm --type ecdsa: a client offering both now gets the RSA certificate');
like(served('portal.dual.example', 'TLS 1.3, ECDSA signatures only'),
    qr/^failed: .*handshake failure$/,
    'cert rm --type ecdsa: an ECDSA-only client gets no certificate for that name');
$t->ctl_ok(qw(cert rm portal.dual.example --type rsa));
is(served('portal.dual.example', 'TLS 1.3, RSA signatures only'), $fallback->{serial},
    'cert rm --type rsa (the last one): the fallback');

is_deeply([$t->crash_lines], [], 'no crash in error.log');

done_testing;
