# A certificate record that cannot be used (damaged bytes, cut short, a certificate that
# does not parse, a key that does not match its certificate) is served as the fallback
# certificate: the handshake succeeds, error.log says so once per worker, nginx does not
# crash, and every other portal domain keeps its own certificate.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use PortalTest;

my $t = PortalTest->new;
$t->start_upstream;
$t->ctl_ok('init');
my $state = $t->data . '/state';

my $fallback = $t->make_cert('fallback.invalid', self_signed => 1);
my %cert;
for my $host (qw(ok.example garbage.example truncated.example future.example baddder.example
                 wrongkey.example was-fine.example))
{
    $t->ctl_ok('domain', 'add', $host, '--brand', "Brand of $host");
    $cert{$host} = $t->make_cert($host);
    $t->import_cert($host, $cert{$host});
}
my $good = $t->lmdb_records($state, 'certs');

# The record's last field is the key (PKCS #8 DER, after its length): one of the same
# length from another host makes a record that decodes, but whose key does not match.
my $key_der = sub { $t->openssl_ok(qw(pkcs8 -topk8 -nocrypt -outform DER -in), $_[0]{key}) };
my ($own_key, $other_key) = map { $key_der->($cert{$_}) } 'wrongkey.example', 'ok.example';
my $wrongkey = $good->{'wrongkey.example'};
substr($wrongkey, -length $own_key) eq $own_key && length $own_key == length $other_key
    or die "the record of wrongkey.example does not end with its key\n";
substr($wrongkey, -length $own_key) = $other_key;

# version 1 | source imported | generation 9 | updated 0 | 1 pair: ECDSA, times 0 and 0,
# a chain of one 3-byte "certificate", a 3-byte "key"
my $baddder = "\x01\x02\x09\x00\x01\x01\x00\x00\x01\x03abc\x03xyz";

$t->lmdb_put($state, 'certs', {
    'garbage.example'   => "\xff\xffgarbage",                            # no record at all
    'truncated.example' => substr($good->{'truncated.example'}, 0, 300),  # cut short
    'future.example'    => "\x02" . substr($good->{'future.example'}, 1), # version 2
    'baddder.example'   => $baddder,
    'wrongkey.example'  => $wrongkey,
});
my @damaged = qw(garbage.example truncated.example future.example baddder.example
                 wrongkey.example);

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
my @workers = $t->worker_pids;

# Serials over N handshakes with SNI HOST: "serial" when all agree, else each with a count.
sub serials {
    my ($host, $n, %opt) = @_;
    my %seen;
    for (1 .. $n) {
        my $hs = $t->tls_handshake(sni => $host, %opt);
        $seen{ $hs->{ok} ? $hs->{serial} : "failed: $hs->{error}" }++;
    }
    return join ', ', map { $seen{$_} == $n ? $_ : "$_ x$seen{$_}" } sort keys %seen;
}

for my $host (@damaged) {
    is(serials($host, 4), $fallback->{serial}, "$host: the fallback certificate, 4 times of 4");
    is(serials($host, 2, version => 'TLSv1_2'), $fallback->{serial},
        "$host: the fallback with TLS 1.2 too");
    is(serials('ok.example', 1), $cert{'ok.example'}{serial},
        "between them, ok.example keeps its own certificate");
}
is(serials('was-fine.example', 3), $cert{'was-fine.example'}{serial},
    'was-fine.example: its certificate, and now in the worker\'s cache');

# a record damaged while nginx runs, after its good version was cached: the fallback, not
# the cached certificate
$t->lmdb_put($state, 'certs', { 'was-fine.example' => "\x01\x02" });
is(serials('was-fine.example', 4), $fallback->{serial},
    'was-fine.example damaged while cached: the fallback certificate');

my @log = split /\n/, $t->error_log;
my $why = qr/certificate record does not parse \(damaged\?\); serving the fallback certificate/;
for my $host (@damaged, 'was-fine.example') {
    my @lines = grep { /portal domain "\Q$host\E"/ } @log;
    is(scalar @lines, 1, "error.log: one line about $host after several handshakes")
        or diag join "\n", @lines;
    like($lines[0] // '', qr/\[error\] .*portal domain "\Q$host\E": $why/,
        "error.log: $host: an [error] saying the record does not parse") if @lines;
}

# the request on such a connection is still the portal domain's (a brand, not a 421)
is($t->seen($t->https_get('garbage.example', 'garbage.example', '/'))->{'x-portal-brand'},
    'Brand of garbage.example', 'the damaged record does not touch the portal domain itself');

# portalctl repairs it: cert import over the damaged record; served at the next handshake
my $repaired = $t->make_cert('garbage.example');
$t->import_cert('garbage.example', $repaired);
is(serials('garbage.example', 3), $repaired->{serial}, 'imported again: its certificate at once');
$t->ctl_ok(qw(cert rm wrongkey.example));
is(serials('wrongkey.example', 3), $fallback->{serial}, 'cert rm of a damaged record: fallback');
is(scalar(grep { /portal domain "wrongkey\.example"/ } split /\n/, $t->error_log), 1,
    'and no new line about it once it is gone');

is_deeply([$t->worker_pids], \@workers, 'the same worker throughout: no crash');
is_deeply([$t->crash_lines], [], 'no crash in error.log');
unlike($t->error_log, qr/\[(?:alert|crit)\]/, 'no alert in error.log');

done_testing;
