# portal_ssl_cache bounds the worker's cache of parsed certificates: with more names than it
# holds, every handshake still presents its own name's certificate, and a connection made
# before its certificate left the cache goes on working. A TLS 1.3 handshake that takes a
# HelloRetryRequest (the client's first key share is for a group the server does not take)
# presents the right certificate too.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use PortalTest;

my $t = PortalTest->new;
$t->start_upstream;
$t->ctl_ok('init');

my $fallback = $t->make_cert('fallback.invalid', self_signed => 1);
my @hosts = map { "portal$_.example" } 1 .. 5;
my %cert;
for my $i (0 .. $#hosts) {
    my $host = $hosts[$i];
    $t->ctl_ok('domain', 'add', $host, '--brand', "Brand $i");
    $cert{$host} = $t->make_cert($host, type => $i == 2 ? 'rsa' : 'ecdsa');
    $t->import_cert($host, $cert{$host});
}

$t->write_conf(<<"EOF2", workers => 1);
    portal_ssl_cache 2;

    server {
        listen 127.0.0.1:%%PORT%% ssl default_server;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ecdh_curve prime256v1;
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

# 5 names through a cache of 2, four times over; a connection is kept open after each
# handshake, to be used once its certificate has long left the cache
my (@wrong, @open);
for my $round (1 .. 4) {
    for my $host (@hosts) {
        my $hs = $t->tls_handshake(sni => $host);
        push @wrong, "round $round, $host: " . ($hs->{ok} ? $hs->{serial} : $hs->{error})
            unless $hs->{ok} && $hs->{serial} eq $cert{$host}{serial};
        next if $round > 1;
        require IO::Socket::SSL;
        push @open, [$host, IO::Socket::SSL->new(PeerAddr => '127.0.0.1', PeerPort => $t->port,
            SSL_hostname => $host, SSL_verify_mode => 0, SSL_ca => [], Timeout => 5)
            || die "connect: $IO::Socket::SSL::SSL_ERROR\n"];
    }
}
is_deeply(\@wrong, [], '5 names, a cache of 2, 20 handshakes: each its own certificate');

my @answers;
for my $conn (@open) {
    my ($host, $s) = @$conn;
    print $s "GET / HTTP/1.1\r\nHost: $host\r\nConnection: close\r\n\r\n";
    local $/;
    my $res = PortalTest::parse_response(<$s> // '');
    push @answers, $t->seen($res)->{'x-portal-brand'} // "status $res->{status}";
    close $s;
}
is("@answers", 'Brand 0 Brand 1 Brand 2 Brand 3 Brand 4',
    'connections made before their certificates left the cache: each served');

for my $host ($hosts[0], $hosts[2]) {
    my ($rc, $out) = $t->s_client('', '-tls1_3', '-groups', 'X25519:P-256', '-servername',
        $host, '-msg');
    is(scalar(() = $out =~ /^>>> .*Handshake.*ClientHello$/mg), 2,
        "$host: the client sent a second ClientHello (HelloRetryRequest)");
    is($t->pem_serial($out), $cert{$host}{serial}, "$host: after it, its own certificate");
}

is_deeply([$t->worker_pids], \@workers, 'the same worker throughout: no crash');
is_deeply([$t->crash_lines], [], 'no crash in error.log');

done_testing;
