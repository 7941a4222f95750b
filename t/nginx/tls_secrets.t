# Private keys stay secret: after imports (good, mismatched, malformed), handshakes (known,
# unknown, damaged record) and requests, with error_log at debug, no key material is in
# error.log, in any portalctl output or message, or in any response. The state store that
# holds the keys is 0700 / 0600 and owned like the data directory.
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
$t->ctl_ok(qw(domain add portal.damaged.example --brand Damaged));
my $state = $t->data . '/state';
my $tmp = $t->tmp;

my $fallback = $t->make_cert('fallback.invalid', self_signed => 1);
my $alpha = $t->make_cert('portal.alpha.example');
my $alpha_rsa = $t->make_cert('portal.alpha.example', type => 'rsa');
my $alpha2 = $t->make_cert('portal.alpha.example');
my $beta = $t->make_cert('portal.beta.example', type => 'rsa');
my $damaged = $t->make_cert('portal.damaged.example');
my @keys = map { $_->{key} } $fallback, $alpha, $alpha_rsa, $alpha2, $beta, $damaged;

my @outputs;    # [what, text]: everything portalctl printed
sub ctl {
    my (@args) = @_;
    my ($rc, $out, $err) = $t->ctl(@args);
    push @outputs, ["portalctl @args (stdout)", $out], ["portalctl @args (stderr)", $err];
    return $rc;
}
sub import_args { ('cert', 'import', $_[0], '--cert', $_[1], '--key', $_[2]) }

is(ctl(import_args('portal.alpha.example', $alpha->{cert}, $alpha->{key})), 0, 'import: ok');
is(ctl('--json', import_args('portal.alpha.example', $alpha_rsa->{cert}, $alpha_rsa->{key})), 0,
    'import of a second key type, --json: ok');
is(ctl(import_args('portal.beta.example', $beta->{cert}, $beta->{key})), 0, 'import RSA: ok');
is(ctl(import_args('portal.damaged.example', $damaged->{cert}, $damaged->{key})), 0,
    'import of the one to damage: ok');

# refused imports: their messages must not quote what they were given
is(ctl(import_args('portal.alpha.example', $alpha->{cert}, $beta->{key})), 2,
    'import with a key that does not match the certificate: exit 2');
like($outputs[-1][1], qr/\S/, 'with a message');
is(ctl(import_args('portal.alpha.example', $alpha->{key}, $alpha->{key})), 2,
    'import with the key given as the certificate: exit 2');
is(ctl(import_args('portal.alpha.example', $alpha->{cert}, $alpha->{cert})), 2,
    'import with the certificate given as the key: exit 2');
{
    my $text = PortalTest::slurp($alpha->{key});
    PortalTest::spew("$tmp/cut.key", substr($text, 0, int(length($text) * 2 / 3)) . "\n");
    PortalTest::spew("$tmp/junk.key", $text =~ s/^([A-Za-z0-9+\/]{10})/$1!!/mr);
}
is(ctl(import_args('portal.alpha.example', $alpha->{cert}, "$tmp/cut.key")), 2,
    'import with a key cut short: exit 2');
is(ctl(import_args('portal.alpha.example', $alpha->{cert}, "$tmp/junk.key")), 2,
    'import with a key whose base64 is damaged: exit 2');

# a damaged record (one that still holds a key)
{
    my $rec = $t->lmdb_records($state, 'certs')->{'portal.damaged.example'};
    $t->lmdb_put($state, 'certs', { 'portal.damaged.example' => substr($rec, 0, -7) });
}

isnt(ctl(qw(cert show portal.damaged.example)), 0, 'cert show of the damaged record fails');
for my $json ([], ['--json']) {
    is(ctl(@$json, qw(cert show portal.alpha.example)), 0, "cert show @$json");
    ctl(@$json, qw(cert list));    # exit 1: the damaged record is skipped, and said so
}

$t->write_conf(<<"EOF2", workers => 1, log_level => 'debug');
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

my @responses;    # [what, raw bytes]
my $port = $t->port;
for my $sni ('portal.alpha.example', 'portal.beta.example', 'portal.damaged.example',
             'stranger.example', undef)
{
    for my $version ('TLSv1_3', 'TLSv1_2') {
        my $res = $t->https_get($sni, $sni // 'portal.alpha.example', '/', version => $version);
        push @responses, ["GET with SNI " . ($sni // 'none') . " $version", $res->{raw}];
    }
}
push @responses, ['GET with SNI alpha, Host beta',
    $t->https_get('portal.alpha.example', 'portal.beta.example', '/')->{raw}];
is(ctl(import_args('portal.alpha.example', $alpha2->{cert}, $alpha2->{key})), 0,
    'a rotation while nginx runs: ok');
for my $opts (['-sigalgs', 'RSA-PSS+SHA256'], ['-sigalgs', 'ECDSA+SHA256'], ['-tls1_2']) {
    my ($rc, $out) = $t->s_client(
        "GET / HTTP/1.1\r\nHost: portal.alpha.example\r\nConnection: close\r\n\r\n",
        '-servername', 'portal.alpha.example', '-showcerts', '-ign_eof', @$opts);
    push @responses, ["s_client @$opts", $out];
}
{
    my ($rc, $out, $err) = $t->curl('-v', '--cacert', $t->test_ca->{root}, '--resolve',
        "portal.beta.example:$port:127.0.0.1", "https://portal.beta.example:$port/");
    is($rc, 0, 'curl to portal.beta.example works') or diag $err;
    push @responses, ['curl -v', "$out$err"];
}
is_deeply([map { $_->[0] } grep { $_->[1] !~ m{^(?:< )?HTTP/1\.1 (?:200|421) }m } @responses], [],
    'every request got its answer (' . scalar(@responses) . ' of them)');
is(scalar(grep { $_->[1] =~ /^x-portal-brand: Alpha$/m } @responses), 4 + 3,
    'the requests for portal.alpha.example reached the upstream (7)');
like($t->error_log, qr/\[debug\] .*portal: certificate of "portal\.alpha\.example"/,
    'error.log has debug lines from the certificate callback');
like($t->error_log, qr/portal domain "portal\.damaged\.example": certificate record does not parse/,
    'error.log has the damaged record\'s line');
$t->stop;

# What must never show: the PEM armour, any base64 line of a key, any 16 bytes of a key's DER
# (hex, either case).
my @secrets = ('PRIVATE KEY');
for my $key (@keys) {
    my $pem = PortalTest::slurp($key);
    push @secrets, grep { length >= 16 } map { s/=+$//r }
        grep { !/^-----/ } split /\n/, $pem;
    my $hex = unpack 'H*', $t->openssl_ok(qw(pkcs8 -topk8 -nocrypt -outform DER -in), $key);
    push @secrets, map { substr($hex, $_ * 32, 32), uc substr($hex, $_ * 32, 32) }
        0 .. int(length($hex) / 32) - 1;
}
cmp_ok(scalar @secrets, '>', 6 * 10, 'the secrets to look for: the armour and many key pieces');
{
    # the same search over a key's own PEM and DER: it finds them
    my $control = PortalTest::slurp($beta->{key}) . "\n"
        . unpack('H*', $t->openssl_ok(qw(pkcs8 -topk8 -nocrypt -outform DER -in), $beta->{key}));
    cmp_ok(scalar(grep { index($control, $_) >= 0 } @secrets), '>', 50,
        'the search finds the pieces of a key where there is one');
}

my @places = (
    ['error.log (debug)', $t->error_log],
    ['access.log', PortalTest::slurp("$tmp/access.log") // ''],
    ['nginx stdout/stderr', PortalTest::slurp("$tmp/nginx.out") // ''],
    @outputs, @responses,
);
my @leaks;
for my $place (@places) {
    for my $secret (@secrets) {
        push @leaks, "$place->[0]: \"$secret\"" if index($place->[1], $secret) >= 0;
    }
}
is_deeply(\@leaks, [], 'no key material in ' . scalar(@places) . ' logs, outputs and responses');
cmp_ok(length($t->error_log), '>', 10_000, 'error.log is a real debug log (over 10 kB)');

# where the keys live
{
    my @dir = stat $state;
    my @data = stat $t->data;
    is(sprintf('%04o', $dir[2] & 07777), '0700', 'state/ is 0700');
    is("$dir[4]:$dir[5]", "$data[4]:$data[5]", 'state/ is owned like the data directory');
    for my $f ('data.mdb', 'lock.mdb') {
        my @st = stat "$state/$f";
        is(sprintf('%04o', $st[2] & 07777), '0600', "state/$f is 0600");
        is("$st[4]:$st[5]", "$data[4]:$data[5]", "state/$f is owned like the data directory");
    }
    if ($> == 0) {
        my ($uid, $gid) = $t->worker_ids;
        is("$data[4]:$data[5]", "$uid:$gid", 'run as root: that is the worker user');
    }
}

done_testing;
