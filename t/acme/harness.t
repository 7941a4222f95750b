# The ACME harness itself: pebble-challtestsrv answers what the test sets, Pebble serves its
# directory over TLS that the listener CA verifies, its log counts the requests that reach
# it, a restart brings a new root on the same ports, and nothing it started outlives a stop
# or a test killed on the spot.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use HTTP::Tiny;
use POSIX qw(WNOHANG);
use Test::More;
use Time::HiRes qw(sleep time);
use PortalAcme;

-x '/usr/bin/pebble' && -x '/usr/bin/pebble-challtestsrv'
    or plan skip_all => 'pebble is not installed (apt-get install pebble)';

my $acme = PortalAcme->new;

# ---- DNS ----
my $dns = $acme->start_dns;
like($dns->{port}, qr/^\d+$/, 'start_dns: a DNS port');
like($dns->{mgmt_port}, qr/^\d+$/, 'start_dns: a management port');
ok(PortalAcme::alive($dns->{pid}), 'pebble-challtestsrv runs');

sub rrs {
    my ($res) = @_;
    return [ map { "$_->{type} $_->{name} $_->{data}" } @{ $res->{answer} } ];
}

{
    my $res = $acme->lookup('nothing.example.com', 'A');
    is($res->{rcode}, 'NOERROR', 'unknown name: NOERROR');
    is_deeply(rrs($res), [], 'unknown name: no answer (no default A)');
    is_deeply(rrs($acme->lookup('nothing.example.com', 'AAAA')), [],
        'unknown name: no AAAA either');
}

$acme->set_cname('shop.example.com', 'edge.portal.test');
is_deeply(rrs($acme->lookup('shop.example.com', 'CNAME')),
    ['CNAME shop.example.com edge.portal.test'], 'set_cname: a CNAME question is answered');
is_deeply(rrs($acme->lookup('shop.example.com', 'A')),
    ['CNAME shop.example.com edge.portal.test'],
    'A question for a name with only a CNAME: the CNAME alone, no address');

$acme->add_a('edge.portal.test', ['127.0.0.1']);
is_deeply(rrs($acme->lookup('shop.example.com', 'A')),
    ['CNAME shop.example.com edge.portal.test', 'A edge.portal.test 127.0.0.1'],
    "with the target's A record: the CNAME, then the target's address");
$acme->clear_a('edge.portal.test');
$acme->clear_cname('shop.example.com');
is_deeply(rrs($acme->lookup('shop.example.com', 'A')), [], 'clear_cname, clear_a: gone');

$acme->add_a('direct.example.com', ['192.0.2.1', '192.0.2.2']);
is_deeply(rrs($acme->lookup('direct.example.com', 'A')),
    ['A direct.example.com 192.0.2.1', 'A direct.example.com 192.0.2.2'], 'add_a');
$acme->clear_a('direct.example.com');
is_deeply(rrs($acme->lookup('direct.example.com', 'A')), [], 'clear_a');

$acme->point_here('a.example.com', 'edge.portal.test');
$acme->point_here('b.example.com', 'edge.portal.test');
is_deeply(rrs($acme->lookup('a.example.com', 'A')),
    ['CNAME a.example.com edge.portal.test', 'A edge.portal.test 127.0.0.1'], 'point_here');
$acme->point_away('a.example.com');
is_deeply(rrs($acme->lookup('a.example.com', 'A')), [], 'point_away: the name is gone');
is_deeply(rrs($acme->lookup('b.example.com', 'A')),
    ['CNAME b.example.com edge.portal.test', 'A edge.portal.test 127.0.0.1'],
    'point_away: another name pointed at the same target still resolves');
$acme->point_away('b.example.com');
is_deeply(rrs($acme->lookup('edge.portal.test', 'A')), [],
    "point_away of the last name: the target's A record is gone too");

# ---- Pebble ----
my $http_port = PortalTest::free_port();
my $p = $acme->start_pebble(http_port => $http_port, env => { PEBBLE_WFE_NONCEREJECT => 0 });
like($p->{url}, qr{^https://127\.0\.0\.1:\d+/dir$}, "directory URL $p->{url}");
ok(PortalAcme::alive($p->{pid}), 'pebble runs');
is($p->{http_port}, $http_port, 'the HTTP-01 port is the one given');

my $dir = $acme->directory;
for my $k (qw(newNonce newAccount newOrder)) {
    like($dir->{$k} // '', qr{^https://127\.0\.0\.1:$p->{port}/}, "directory has $k");
}

{
    my $res = HTTP::Tiny->new(timeout => 5, verify_SSL => 1)->get($p->{url});
    is($res->{status}, 599, 'the directory is not trusted without the listener CA');
}

my $root1 = PortalTest::slurp($p->{roots});
like($root1, qr/^-----BEGIN CERTIFICATE-----/, 'the issued-roots file holds a certificate');
{
    my $subject = $acme->run_ok('openssl', 'x509', '-noout', '-subject', '-in', $p->{roots});
    like($subject, qr/Pebble Root CA/, "it is Pebble's root");
    my $ok = $acme->run_ok('openssl', 'verify', '-CAfile', $p->{roots}, $p->{intermediates});
    like($ok, qr/: OK$/m, 'the intermediate verifies against it');
}

like($acme->pebble_log, qr/Using custom DNS resolver for ACME challenges: 127\.0\.0\.1:$dns->{port}/,
    "pebble's VA uses the DNS server");
like($acme->pebble_log, qr/Configured to reject 0% of good nonces/, 'the extra env reached pebble');

# The counts see requests that reach Pebble, rejected or not.
is($acme->order_count, 0, 'no order request yet');
my $mark = $acme->pebble_log_size;
{
    my $h = $acme->https_client;
    my $res = $h->request('HEAD', $dir->{newNonce});
    ok($res->{headers}{'replay-nonce'}, 'newNonce gives a nonce');
    $res = $h->post($dir->{newOrder}, { headers => { 'Content-Type' => 'application/jose+json' },
                                        content => '{}' });
    is($res->{status}, 400, 'an unsigned newOrder is refused');
    sleep 0.2;    # pebble's log is written as it goes
}
is($acme->order_count, 1, 'order_count counts the refused newOrder request');
is($acme->order_count($mark), 1, 'order_count from a log offset');
is($acme->pebble_count('order_created'), 0, 'no order was created');
is($acme->pebble_count('new_nonce', $mark), 1, 'one newNonce request since the mark');
is($acme->finalize_count, 0, 'no finalize request');

# ---- restart ----
my ($old_pid, $old_wrapper, $old_port) = @$p{qw(pid wrapper port)};
my $p2 = $acme->restart_pebble;
ok(!PortalAcme::alive($old_pid), 'restart: the old pebble is gone');
ok(!kill(0, $old_wrapper), 'restart: its timeout wrapper is reaped');
isnt($p2->{pid}, $old_pid, 'restart: a new pebble');
is($p2->{port}, $old_port, 'restart: the same ACME port');
is($p2->{mgmt_port}, $p->{mgmt_port}, 'restart: the same management port');
is($p2->{http_port}, $http_port, 'restart: the same HTTP-01 port');
is($p2->{start}, 2, 'restart: start 2');
my $root2 = PortalTest::slurp($p2->{roots});
like($root2, qr/^-----BEGIN CERTIFICATE-----/, 'restart: a root');
isnt($root2, $root1, 'restart: the root changed');
is_deeply([ sort keys %{ $acme->directory } ], [ sort keys %$dir ], 'restart: the directory answers');
like($acme->pebble_log, qr/Configured to reject 0% of good nonces(?s:.*)pebble start 2(?s:.*)Configured to reject 0%/,
    'restart: the same env');
is($acme->order_count, 1, 'the log and its counts span restarts');

# ---- stop ----
my @pids = ($p2->{pid}, $dns->{pid});
is($acme->stop_pebble, 1, 'stop_pebble: pebble stops on TERM');
is($acme->stop_dns, 1, 'stop_dns: challtestsrv stops on TERM');
ok(!PortalAcme::alive($_), "pid $_ is gone") for @pids;
ok(!kill(0, $_), "wrapper $_ is reaped") for $p2->{wrapper}, $dns->{wrapper};
is($acme->stop_pebble, undef, 'stop_pebble again: nothing to stop');

# ---- a test killed on the spot: the watchdog stops what it started ----
{
    pipe my $r, my $w or die "pipe: $!";
    my $child = fork // die "fork: $!";
    if ($child == 0) {
        close $r;
        my $a2 = PortalAcme->new;
        my $d2 = $a2->start_dns;
        syswrite $w, "$d2->{pid} $d2->{wrapper}\n";
        close $w;
        kill 'KILL', $$;
    }
    close $w;
    my $line = <$r> // '';
    close $r;
    waitpid $child, 0;
    my ($pid, $wrapper) = $line =~ /^(\d+) (\d+)$/;
    ok($pid, 'a killed test had started a DNS server');
    my $deadline = time + 10;
    sleep 0.1 while time < $deadline && ($pid && PortalAcme::alive($pid)
        || $wrapper && PortalAcme::alive($wrapper));
    ok($pid && !PortalAcme::alive($pid), 'the watchdog stopped its DNS server');
    ok($wrapper && !PortalAcme::alive($wrapper), 'and its timeout wrapper');
}

done_testing;
