# The ACME engine across nginx's own life: a reload (SIGHUP) moves the engine to a new worker
# without waiting on it; a graceful shutdown (SIGQUIT) in the middle of an order does not hang
# on the engine's thread, and the next start finishes the order.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use Time::HiRes qw(sleep time);
use POSIX qw(WNOHANG);
use IO::Socket::INET;
use PortalTest;
use PortalAcme;

my $t = PortalTest->new;
my $acme = PortalAcme->new(tmp => $t->tmp);
$t->start_upstream;
$t->ctl_ok('init');

# Pebble sleeps up to 3 s before it validates: orders stay in flight long enough to stop nginx.
my ($dns, $p) = $acme->start_edge($t, pebble_env => { PEBBLE_WFE_NONCEREJECT => 0,
    PEBBLE_VA_NOSLEEP => 0, PEBBLE_VA_SLEEPTIME => 3 });
$t->start;

sub wait_for(&$) {
    my ($cond, $secs) = @_;
    my $deadline = time + $secs;
    until ($cond->()) {
        return 0 if time > $deadline;
        sleep 0.1;
    }
    return 1;
}

sub served {
    my ($host) = @_;
    my $hs = $t->tls_handshake(port => $t->port2, sni => $host, ca => $p->{roots});
    return $hs->{ok};
}

sub engine_pids {
    my @pids = $t->error_log =~ /(\d+)#\d+: portal: acme: this worker runs the ACME engine/g;
    return @pids;
}

ok(wait_for(sub { engine_pids() == 1 }, 5), 'the engine runs in one worker');
my ($first) = engine_pids();

# ---- reload ----
# A client in the middle of its request headers keeps an old worker shutting down for a
# while: the engine must not wait for it.
my @old = $t->worker_pids;
my @slow = map {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $t->port) or die $!;
    print $s "GET / HTTP/1.1\r\nHost: slow.example\r\n";
    $s;
} 1 .. 4;
sleep 0.3;
kill 'HUP', $t->master_pid;
ok(wait_for(sub { engine_pids() == 2 }, 5),
   'after a reload a new worker runs the engine, while an old one still serves a slow client');
ok((grep { PortalAcme::alive($_) } @old), 'an old worker is indeed still there');
close $_ for @slow;
ok(wait_for(sub { !grep { PortalAcme::alive($_) } @old }, 10), 'the old workers exit');
my ($second) = (engine_pids())[1];
ok($second != $first && !grep({ $_ == $second } @old), "a worker of the new generation ($second)");

$acme->point_here('one.portal.example', 'edge.portal.test');
$t->ctl_ok(qw(domain add one.portal.example --brand One));
ok(wait_for(sub { served('one.portal.example') }, 20), 'the new engine issues a certificate');

# ---- graceful shutdown during an order ----
$acme->point_here('two.portal.example', 'edge.portal.test');
my $from = length $t->error_log;
$t->ctl_ok(qw(domain add two.portal.example --brand Two));
ok(wait_for(sub { substr($t->error_log, $from) =~ /"two\.portal\.example": order \S+ created/ }, 10),
   'an order is in flight');
my $master = $t->master_pid;
my $t0 = time;
kill 'QUIT', $master;
my $gone = wait_for(sub { waitpid($master, WNOHANG) == $master }, 10);
ok($gone, sprintf('a graceful shutdown during the order completes (%.1f s)', time - $t0));
delete $t->{master} if $gone;
like(substr($t->error_log, $from), qr/acme: engine stopped/, 'the engine stopped with its worker');

$t->start;
ok(wait_for(sub { served('two.portal.example') }, 20), 'the next start finishes the order')
    or diag $t->error_log_tail(20);
$t->stop;
is_deeply([grep { !/SIGHUP|reconfiguring/ } $t->crash_lines], [], 'no worker crashed');
done_testing;
