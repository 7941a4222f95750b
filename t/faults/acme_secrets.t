# Secrets through a whole ACME issuance: nginx (built --with-debug, as Debian's is) with
# error_log at debug runs the engine against Pebble and issues a certificate, renews it once on
# request; then `portalctl acme issue` (the engine in the foreground, -v) issues another one
# with nginx answering the challenges. Every private key the state store holds is read back
# from it (the ACME account key from the "acme" table, the certificates' keys from the
# "certs" records, any order key from "orders"), and none of them shows anywhere: error.log
# (debug), nginx's other output, every response body fetched, portal_status JSON and
# Prometheus text, `portalctl status`, `cert show`, `cert list`, `domain show`, `export`,
# and the engine's log. Searched: "PRIVATE KEY", each key's DER and its private value, raw,
# in hex (lower and upper case, with and without colons) and in base64 and base64url at
# every byte alignment, and the first 32 bytes of each DER (hex and base64).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use Time::HiRes qw(sleep time);
use JSON::PP;
use MIME::Base64 qw(encode_base64 decode_base64);
use PortalTest;
use PortalAcme;

# A write to a connection that nginx closed (a worker killed) fails; it does not kill the test
# or its clients.
$SIG{PIPE} = 'IGNORE';

my $t = PortalTest->new;
my $acme = PortalAcme->new(tmp => $t->tmp);
$t->start_upstream;
$t->ctl_ok('init');

my ($vrc, undef, $verr) = $t->run($t->{nginx}, '-V');
my $with_debug = $verr =~ /--with-debug/;
ok($with_debug, 'nginx is built --with-debug: error_log debug takes effect');

my $dns = $acme->start_dns;
my $p = $acme->start_pebble(http_port => $t->port, env => { PEBBLE_WFE_NONCEREJECT => 0 });
my $fallback = $t->make_cert('fallback.invalid', self_signed => 1);
my $status_port = PortalTest::free_port();

my $servers = <<"EOF2";
    server {
        listen 127.0.0.1:%%PORT%%;
        portal on;
        location / { proxy_pass http://%%UPSTREAM%%; }
    }
    server {
        listen 127.0.0.1:%%PORT2%% ssl;
        ssl_certificate $fallback->{cert};
        ssl_certificate_key $fallback->{key};
        portal_ssl on;
        portal on;
        location / { proxy_pass http://%%UPSTREAM%%; }
    }
    server {
        listen 127.0.0.1:$status_port;
        location = /status { portal_status; }
    }
EOF2
my @engine_opts = ('--directory', $p->{url}, '--ca-certificate', $p->{ca},
    '--contact', 'mailto:ops@secrets.example', '--cname-target', 'edge.secrets.test',
    '--resolver', "127.0.0.1:$dns->{port}");
$t->write_conf(<<"EOF2" . $servers, workers => 2, log_level => 'debug');
    portal_acme on;
    portal_acme_directory $p->{url};
    portal_acme_ca_certificate $p->{ca};
    portal_acme_contact mailto:ops\@secrets.example;
    portal_acme_cname_target edge.secrets.test;
    portal_acme_resolver 127.0.0.1:$dns->{port};
    portal_acme_backoff 1s 2s 4s 8s;
EOF2
$t->start;

# Everything looked at: [what, text].
my @texts;
sub keep { push @texts, [$_[0], $_[1] // ''] }
sub ctl_keep {
    my (@args) = @_;
    my ($rc, $out, $err) = $t->ctl(@args);
    keep("portalctl @args (stdout)", $out);
    keep("portalctl @args (stderr)", $err);
    return ($rc, $out, $err);
}
sub wait_for(&$) {
    my ($cond, $secs) = @_;
    my $deadline = time + $secs;
    until ($cond->()) { return 0 if time > $deadline; sleep 0.1 }
    return 1;
}
sub verified {
    my ($host) = @_;
    my $hs = $t->tls_handshake(port => $t->port2, sni => $host, ca => $acme->pebble->{roots});
    return $hs->{ok} ? $hs : undef;
}

# Every private key the state store holds now, added to @keys ([what, DER], each DER once).
my @keys;
my %key_seen;
sub collect_keys {
    my $state = $t->data . '/state';
    my @new;
    my $acme_db = $t->lmdb_records($state, 'acme');
    for my $k (sort keys %$acme_db) {
        my $j = eval { decode_json($acme_db->{$k}) } or next;
        push @new, ["account key ($k)", b64url_decode($j->{key})] if $j->{key};
    }
    my $orders = eval { $t->lmdb_records($state, 'orders') } // {};
    for my $k (sort keys %$orders) {
        my $j = eval { decode_json($orders->{$k}) } or next;
        push @new, ["order key ($k)", b64url_decode($j->{key})] if $j->{key};
    }
    my $certs = $t->lmdb_records($state, 'certs');
    for my $host (sort keys %$certs) {
        push @new, map { ["certificate key of $host", $_] } cert_record_keys($certs->{$host});
    }
    push @keys, grep { !$key_seen{ $_->[1] }++ } @new;
}

# ---- issuance in nginx, then a renewal ----
$acme->point_here('one.secrets.example', 'edge.secrets.test');
$t->ctl_ok(qw(domain add one.secrets.example --brand One));
ok(wait_for(sub { verified('one.secrets.example') }, 20),
   'one.secrets.example: issued by the engine in nginx') or diag $t->error_log_tail(20);
my $serial1 = verified('one.secrets.example')->{serial};
collect_keys();
ctl_keep(qw(acme renew one.secrets.example));
ok(wait_for(sub { my $hs = verified('one.secrets.example'); $hs && $hs->{serial} ne $serial1 }, 20),
   'renewed on request: a new certificate (a new key)');
collect_keys();

for my $path ('/', '/cdr', '/.well-known/acme-challenge/unknown-token') {
    my ($rc, $body) = $t->run('curl', '-sS', '-i', '--cacert', $acme->pebble->{roots}, '--resolve',
        'one.secrets.example:' . $t->port2 . ':127.0.0.1',
        'https://one.secrets.example:' . $t->port2 . $path);
    keep("GET https://one.secrets.example$path", $body);
}
like($texts[-3][1], qr/^x-portal-brand: One$/m, 'fetched over HTTPS through the portal');
for my $q ('', '?format=prometheus') {
    my $r = $t->get_port($status_port, 'admin.example', "/status$q");
    is($r->{status}, 200, "portal_status$q answers");
    keep("portal_status$q", $r->{raw});
}

# ---- portalctl acme issue: the engine in the foreground, nginx answering the challenges ----
$t->stop;
$t->write_conf("    portal_acme_challenge on;\n" . $servers, workers => 2, log_level => 'debug');
$t->start;
$acme->point_here('two.secrets.example', 'edge.secrets.test');
$t->ctl_ok(qw(domain add two.secrets.example --brand Two));
my ($irc) = ctl_keep('acme', 'issue', 'two.secrets.example', @engine_opts, '-v');
is($irc, 0, 'portalctl acme issue two.secrets.example: exit 0');
like($texts[-1][1], qr/certificate issued by/, 'its log (stderr) says so');
ok(verified('two.secrets.example'), 'nginx serves it');

# ---- what anyone may see ----
for my $cmd (['status'], ['--json', 'status'], ['cert', 'list'], ['--json', 'cert', 'list'],
             ['domain', 'list'], ['export']) {
    ctl_keep(@$cmd);
}
for my $h (qw(one.secrets.example two.secrets.example)) {
    ctl_keep('cert', 'show', $h);
    ctl_keep('--json', 'cert', 'show', $h);
    ctl_keep('domain', 'show', $h);
}
for my $q ('', '?format=prometheus') {
    keep("portal_status$q (after)", $t->get_port($status_port, 'admin.example', "/status$q")->{raw});
}
$t->stop;
keep('error.log', $t->error_log);
keep('nginx.out', PortalTest::slurp($t->tmp . '/nginx.out'));
keep('access.log', PortalTest::slurp($t->tmp . '/access.log'));
cmp_ok(scalar(() = $t->error_log =~ /\[debug\]/g), '>', 1000, 'error.log holds debug lines');
like($t->error_log, qr/\[debug\] .*portal: certificate of "one\.secrets\.example"/,
    'including the module\'s own (one per handshake)');
like($t->error_log, qr/certificate issued by/, 'and the engine\'s');

# ---- the keys, from the state store (read as the test went: a renewal replaces a key) ----
collect_keys();
my @account = grep { $_->[0] =~ /^account/ } @keys;
my @certkeys = grep { $_->[0] =~ /^certificate/ } @keys;
is(scalar @account, 1, 'the account key, from the state store');
is(scalar @certkeys, 3, 'the keys of the three certificates (one, one renewed, two), from the state store');
note 'keys found: ' . join(', ', map { $_->[0] } @keys);

# The secrets to look for, from each key: [what, pattern bytes].
my @needles;
for my $k (@keys) {
    my ($what, $der) = @$k;
    is(substr($der, 0, 1), "\x30", "$what: a DER SEQUENCE") or next;
    my $priv = private_value($der);
    ok(defined $priv && length $priv >= 32, "$what: its private value (" . length($priv // '') . ' bytes)');
    push @needles, variants("$what, DER", $der), variants("$what, private value", $priv // '');
    push @needles, ["$what, first 32 bytes of the DER (hex)", unpack('H*', substr($der, 0, 32))],
                   ["$what, first 32 bytes of the DER (base64)",
                    encode_base64(substr($der, 0, 30), '')];
}
push @needles, ['"PRIVATE KEY"', 'PRIVATE KEY'];
for my $k (@account) {    # the account key as the state store holds it (base64url)
    my $j = encode_base64($k->[1], '') =~ tr{+/}{-_}r =~ s/=+$//r;
    push @needles, ["$k->[0], as stored (base64url)", substr($j, 8, 48)];
}

my @found;
for my $n (@needles) {
    for my $txt (@texts) {
        push @found, "$n->[0] in $txt->[0]" if index($txt->[1], $n->[1]) >= 0
            || index(lc $txt->[1], lc $n->[1]) >= 0 && $n->[1] =~ /^[0-9a-f:]+$/;
    }
}
my $bytes = 0;
$bytes += length $_->[1] for @texts;
note sprintf('%d patterns searched in %d texts (%d bytes)', scalar @needles, scalar @texts, $bytes);
cmp_ok(scalar @needles, '>=', 40, 'patterns to look for');
is_deeply(\@found, [], 'no key material anywhere');

# the search finds what it looks for: a text made of a key's base64 at an odd offset
{
    my ($what, $der) = @{ $certkeys[0] // ['none', ''] };
    my $planted = 'x' . encode_base64("z$der", '');
    ok((grep { index($planted, $_->[1]) >= 0 } @needles), 'the search finds a planted key');
}
done_testing;

# ---- helpers ----

sub b64url_decode {
    my ($s) = @_;
    $s =~ tr{-_}{+/};
    $s .= '=' x ((4 - length($s) % 4) % 4);
    return decode_base64($s);
}

# The key DERs of a certificate record (module/core/domain/cert_record.h, version 1).
sub cert_record_keys {
    my ($rec) = @_;
    my $pos = 0;
    my $byte = sub { my $b = ord substr($rec, $pos, 1); $pos++; $b };
    my $varint = sub {
        my ($v, $shift) = (0, 0);
        while (1) { my $b = $byte->(); $v += ($b & 0x7f) * 2**$shift; $shift += 7; last unless $b & 0x80 }
        return $v;
    };
    my $version = $byte->();
    return () unless $version == 1;
    $byte->();       # source
    $varint->();     # generation
    $varint->();     # updated
    my $pairs = $byte->();
    my @keys;
    for (1 .. $pairs) {
        $byte->();                 # key type
        $varint->() for 1 .. 2;    # not_before, not_after
        my $chain = $byte->();
        for (1 .. $chain) { my $len = $varint->(); $pos += $len }
        my $len = $varint->();
        push @keys, substr($rec, $pos, $len);
        $pos += $len;
    }
    return @keys;
}

# The private value of a PKCS #8 key: the EC private scalar, or the RSA private exponent.
sub private_value {
    my ($der) = @_;
    my $file = $t->tmp . '/key.der';
    PortalTest::spew($file, $der);
    my ($rc, $out) = $t->run('openssl', 'pkey', '-inform', 'DER', '-in', $file, '-noout', '-text');
    unlink $file;
    return undef if $rc != 0;
    my ($hex) = $out =~ /^(?:priv|privateExponent):\s*\n((?:\s+[0-9a-f:]+\n)+)/m or return undef;
    $hex =~ s/[\s:]//g;
    $hex =~ s/^00(?=[89a-f])//;    # the sign byte openssl prints
    return pack 'H*', $hex;
}

# BYTES as it could appear: raw, hex (with and without colons), base64 and base64url at each
# of the three byte alignments (the characters that depend on the neighbours left out).
sub variants {
    my ($what, $bytes) = @_;
    return () unless length $bytes >= 16;
    my @v = (["$what (raw)", $bytes], ["$what (hex)", unpack('H*', $bytes)],
             ["$what (hex with colons)", join(':', unpack('(H2)*', $bytes))]);
    for my $off (0 .. 2) {
        my $part = substr($bytes, $off);
        my $n = int(length($part) / 3) * 3;
        my $b64 = encode_base64(substr($part, 0, $n), '');
        push @v, ["$what (base64, offset $off)", $b64],
                 ["$what (base64url, offset $off)", $b64 =~ tr{+/}{-_}r];
    }
    return @v;
}
