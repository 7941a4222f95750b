# 1,000 certificate rotations under handshake load: `portalctl cert import` of three
# pre-generated pairs in turn, from four import loops at once (a portalctl process costs
# ~30-60 ms here, mostly its start: one loop alone would take a minute), while two clients
# make one full TLS handshake after another (a new connection each, TLS 1.2 and 1.3 in turn,
# the chain and name verified against the test root, a request sent and its answer read). No
# handshake fails, each presents one of the three certificates (a completed handshake proves
# the key matches it), every import is counted in the record's generation (none lost), and
# no worker dies. IMPORTERS and CLIENTS in the environment change the four and the one.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use Time::HiRes qw(sleep time);
use POSIX ();
use Net::SSLeay;
use Socket qw(PF_INET SOCK_STREAM SOL_SOCKET SO_RCVTIMEO SO_SNDTIMEO inet_aton sockaddr_in);
use PortalTest;

# A write to a connection that nginx closed (a worker killed) fails; it does not kill the test
# or its clients.
$SIG{PIPE} = 'IGNORE';

my $ROTATIONS = 1000;
my $IMPORTERS = $ENV{IMPORTERS} // 4;
my $CLIENTS = $ENV{CLIENTS} // 2;
my $HOST = 'portal.rotate.example';

my $t = PortalTest->new;
$t->start_upstream;
$t->ctl_ok('init');
$t->ctl_ok('domain', 'add', $HOST, '--brand', 'Rotate');

my $fallback = $t->make_cert('fallback.invalid', self_signed => 1);
my @pairs = map { $t->make_cert($HOST) } 1 .. 3;
my %serials = map { $_->{serial} => 1 } @pairs;
is(scalar keys %serials, 3, 'three pairs, three serials');
$t->import_cert($HOST, $pairs[0]);
my ($gen0) = $t->ctl_ok('cert', 'show', $HOST) =~ /^generation: (\d+)$/m;

$t->write_conf(<<"EOF2", workers => 2);
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
my $master = $t->master_pid;
my @workers = $t->worker_pids;
my $root = $t->test_ca->{root};

# The handshake clients: Net::SSLeay directly (a third of IO::Socket::SSL's cost per
# connection, so that the load stays high while portalctl takes the CPU), no session cache
# and no tickets (every handshake a full one), the chain and HOST verified against the test
# root. One line per connection: start time, then the serial presented and the status of the
# request, or "failed" and why. TLS 1.3 and TLS 1.2 in turn.
my $stop = $t->tmp . '/stop';

sub make_ctx {
    my ($max) = @_;
    my $ctx = Net::SSLeay::CTX_new() or die 'CTX_new';
    Net::SSLeay::CTX_load_verify_locations($ctx, $root, '') or die "load $root";
    Net::SSLeay::CTX_set_verify($ctx, Net::SSLeay::VERIFY_PEER());
    Net::SSLeay::CTX_set_session_cache_mode($ctx, 0);
    Net::SSLeay::CTX_set_options($ctx, Net::SSLeay::OP_NO_TICKET());
    Net::SSLeay::CTX_set_max_proto_version($ctx, $max) if $max;
    return $ctx;
}

sub handshake_request {
    my ($ctx, $addr) = @_;
    socket(my $s, PF_INET, SOCK_STREAM, 0) or return ('failed', '-', "socket: $!");
    setsockopt($s, SOL_SOCKET, $_, pack('l!l!', 5, 0)) for SO_RCVTIMEO, SO_SNDTIMEO;
    connect($s, $addr) or return ('failed', '-', "connect: $!");
    my $ssl = Net::SSLeay::new($ctx);
    Net::SSLeay::set_fd($ssl, fileno $s);
    Net::SSLeay::set_tlsext_host_name($ssl, $HOST);
    Net::SSLeay::X509_VERIFY_PARAM_set1_host(Net::SSLeay::get0_param($ssl), $HOST);
    my @r;
    if (Net::SSLeay::connect($ssl) == 1) {
        my $x509 = Net::SSLeay::get_peer_certificate($ssl);
        my $serial = uc Net::SSLeay::P_ASN1_INTEGER_get_hex(Net::SSLeay::X509_get_serialNumber($x509));
        $serial =~ s/^0+(?=.)//;
        Net::SSLeay::X509_free($x509);
        Net::SSLeay::write($ssl, "GET / HTTP/1.1\r\nHost: $HOST\r\nConnection: close\r\n\r\n");
        my $buf = '';
        while (defined(my $d = Net::SSLeay::read($ssl))) { last unless length $d; $buf .= $d }
        my ($status) = $buf =~ m{^HTTP/1\.1 (\d{3})};
        @r = ($serial, $status // 0, Net::SSLeay::get_version($ssl));
    } else {
        @r = ('failed', '-', Net::SSLeay::ERR_error_string(Net::SSLeay::ERR_get_error())
            . ' verify ' . Net::SSLeay::get_verify_result($ssl));
    }
    Net::SSLeay::free($ssl);
    close $s;
    return @r;
}

my @clients;
for my $c (1 .. $CLIENTS) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        Net::SSLeay::initialize();
        my @ctx = (make_ctx(0), make_ctx(Net::SSLeay::TLS1_2_VERSION()));
        my $addr = sockaddr_in($t->port, inet_aton('127.0.0.1'));
        open my $fh, '>', $t->tmp . "/hs$c.log" or POSIX::_exit(1);
        $fh->autoflush(1);
        my $deadline = time + 85;
        my $n = 0;
        until (-e $stop || time > $deadline) {
            my $start = time;
            my ($serial, $status, $detail) = handshake_request($ctx[$n++ % 2], $addr);
            printf $fh "%.6f %s %s %s\n", $start, $serial, $status, $detail =~ s/\s+/ /gr;
        }
        close $fh;
        POSIX::_exit(0);
    }
    push @clients, $pid;
}

sub handshakes {
    my @all;
    for my $c (1 .. $CLIENTS) {
        push @all, map { [split / /, $_, 4] }
            split /\n/, PortalTest::slurp($t->tmp . "/hs$c.log") // '';
    }
    return @all;
}

my $deadline = time + 10;
sleep 0.05 until handshakes() >= 50 || time > $deadline;

# The import loops: loop L imports pair (L + k) mod 3 at its k-th turn (each loop goes through
# the three pairs in turn). Each writes one line per import: its exit status and message.
my $per = $ROTATIONS / $IMPORTERS;
my $t0 = time;
my @importers;
for my $l (0 .. $IMPORTERS - 1) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open my $fh, '>', $t->tmp . "/imports$l.log" or POSIX::_exit(1);
        $fh->autoflush(1);
        for my $k (1 .. $per) {
            my $pair = $pairs[($l + $k) % 3];
            my ($rc, $out, $err) = $t->ctl('cert', 'import', $HOST, '--cert', $pair->{cert},
                '--key', $pair->{key});
            print $fh "$rc ", ($rc ? $err =~ s/\s+/ /gr : ''), "\n";
        }
        close $fh;
        POSIX::_exit(0);
    }
    push @importers, $pid;
}
waitpid $_, 0 for @importers;
my $t1 = time;
my $during = handshakes();
sleep 0.5;
PortalTest::spew($stop, '');
waitpid $_, 0 for @clients;

my @imports = map { split /\n/, PortalTest::slurp($t->tmp . "/imports$_.log") // '' }
    0 .. $IMPORTERS - 1;
is(scalar @imports, $ROTATIONS, "$ROTATIONS imports were made");
is_deeply([grep { !/^0 / } @imports], [], 'every import exited 0');
my ($gen1) = $t->ctl_ok('cert', 'show', $HOST) =~ /^generation: (\d+)$/m;
is($gen1 - $gen0, $ROTATIONS, "the generation went up by $ROTATIONS: no import was lost");

my @all = handshakes();
my @in_window = grep { $_->[0] >= $t0 && $_->[0] <= $t1 } @all;
my @failed = grep { $_->[1] eq 'failed' } @all;
my %by_serial;
$by_serial{ $_->[1] }++ for @all;
cmp_ok(scalar @in_window, '>=', 1000, 'a thousand handshakes or more while the imports ran');
is(scalar @failed, 0, 'no handshake failed')
    or diag join "\n", map { "@$_" } @failed[0 .. ($#failed < 9 ? $#failed : 9)];
is_deeply([map { "@$_" } grep { $_->[1] ne 'failed' && !$serials{ $_->[1] } } @all], [],
    'every handshake presented one of the three certificates (never the fallback)');
is_deeply([map { "@$_" } grep { $_->[1] ne 'failed' && $_->[2] ne '200' } @all], [],
    'every request over them got 200');
is(scalar(grep { $by_serial{ $_->{serial} } } @pairs), 3, 'all three certificates were served');
my %by_version;
$by_version{ $_->[3] }++ for grep { $_->[1] ne 'failed' } @all;
ok($by_version{'TLSv1.2'} && $by_version{'TLSv1.3'}, 'over TLS 1.2 and TLS 1.3 ('
    . join(', ', map { "$_ $by_version{$_}" } sort keys %by_version) . ')');

# handshakes that saw a change from the previous one of the same client: the load crossed the
# rotations many times
my $changes = 0;
for my $c (1 .. $CLIENTS) {
    my $prev = '';
    for (map { [split / /] } split /\n/, PortalTest::slurp($t->tmp . "/hs$c.log") // '') {
        $changes++ if $prev && $_->[1] ne $prev;
        $prev = $_->[1];
    }
}
cmp_ok($changes, '>=', 100, "clients saw the certificate change $changes times");
note sprintf('%d rotations in %.1f s (%.0f per second); %d handshakes in all, %d during the '
    . 'rotations (%.0f per second); by serial: %s', $ROTATIONS, $t1 - $t0,
    $ROTATIONS / ($t1 - $t0), scalar @all, scalar @in_window, @in_window / ($t1 - $t0),
    join(', ', map { "$_ $by_serial{$_}" } sort keys %by_serial));

is($t->master_pid, $master, 'the same master');
is_deeply([$t->worker_pids], \@workers, 'the same workers: none died, nothing was reloaded');
is_deeply([grep { /exited on signal|core dumped|\[(?:alert|crit|emerg)\]/ } split /\n/, $t->error_log],
    [], 'error.log: no worker died, nothing at alert or above');
is_deeply([$t->crash_lines], [], 'no crash in error.log');
done_testing;
