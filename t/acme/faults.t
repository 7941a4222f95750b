# The ACME engine when things go wrong: Pebble down (certificates keep being served, retries
# follow the backoff), the engine's worker killed with SIGKILL in the middle of an order (the
# next engine finishes it: the domain ends active with a pair that matches), nginx restarted
# (no order for names that hold a valid certificate).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use Time::HiRes qw(sleep time);
use JSON::PP;
use PortalTest;
use PortalAcme;

my $t = PortalTest->new;
my $acme = PortalAcme->new(tmp => $t->tmp);
$t->start_upstream;
$t->ctl_ok('init');

my ($dns, $p) = $acme->start_edge($t);
$t->start;

sub handshake {
    my ($host, %opt) = @_;
    return $t->tls_handshake(port => $t->port2, sni => $host, %opt);
}

sub status_of {
    my ($host) = @_;
    my ($rc, $json) = $t->ctl(qw(status --json));
    return {} unless $rc == 0;
    my ($d) = grep { $_->{host} eq $host } @{ decode_json($json)->{domains} };
    return $d // {};
}

sub wait_for(&$) {
    my ($cond, $secs) = @_;
    my $deadline = time + $secs;
    until ($cond->()) {
        return 0 if time > $deadline;
        sleep 0.1;
    }
    return 1;
}

sub served_by_pebble {
    my ($host) = @_;
    my $hs = handshake($host);
    return $hs->{ok} && ($hs->{issuer} // '') =~ /Pebble/ ? $hs : undef;
}

for my $h (qw(one.portal.example two.portal.example)) {
    $acme->point_here($h, 'edge.portal.test');
    $t->ctl_ok('domain', 'add', $h, '--brand', $h);
}
ok(wait_for(sub { served_by_pebble('one.portal.example') && served_by_pebble('two.portal.example') }, 15),
   'two domains issued') or diag $t->error_log_tail(20);
my %serial = map { $_ => served_by_pebble($_)->{serial} } qw(one.portal.example two.portal.example);

# ---- Pebble down ----
$acme->stop_pebble;
$acme->point_here('three.portal.example', 'edge.portal.test');
my $log_from = length $t->error_log;
$t->ctl_ok(qw(domain add three.portal.example --brand Three));
# Failures 1..4 come after 0, 1, 2 and 4 s (+ up to 10 % jitter): wait for the fourth.
ok(wait_for(sub { substr($t->error_log, $log_from) =~ /failure 4\)/ }, 15), 'four failed attempts')
    or diag $t->error_log_tail(10);
my @fails;
for my $line (split /\n/, substr($t->error_log, $log_from)) {
    next unless $line =~ /portal domain "three\.portal\.example": .* next attempt (\S+) \(failure (\d+)\)/;
    my ($next, $n) = ($1, $2);
    my ($logged) = $line =~ m{^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d)};
    push @fails, { n => $n, next => iso($next), at => ngx_time($logged) };
}
is_deeply([map { $_->{n} } @fails], [1, 2, 3, 4], 'failures counted 1, 2, 3, 4, no more yet');
my @want = (1, 2, 4, 8);
for my $i (0 .. $#fails) {
    my $delay = $fails[$i]{next} - $fails[$i]{at};
    ok($delay >= $want[$i] - 1 && $delay <= $want[$i] * 1.1 + 1,
       "failure $fails[$i]{n}: next attempt after ${delay}s (backoff $want[$i]s)");
}
like(status_of('three.portal.example')->{detail}, qr/Couldn't connect to server/,
     'status says what failed');
is(status_of('three.portal.example')->{state}, 'failed', 'state failed');
for my $h (qw(one.portal.example two.portal.example)) {
    my $hs = handshake($h);
    is($hs->{ok} && $hs->{serial}, $serial{$h}, "$h keeps being served while the CA is down");
}

# ---- the engine killed during an order ----
# Pebble back, sleeping up to 3 s before it validates, so that an order is in flight.
$p = $acme->start_pebble(env => { PEBBLE_WFE_NONCEREJECT => 0, PEBBLE_VA_NOSLEEP => 0,
                                  PEBBLE_VA_SLEEPTIME => 3 });
# the last worker that took the engine (it moves when its worker exits)
my ($engine_pid) = ($t->error_log =~ /(\d+)#\d+: portal: acme: this worker runs the ACME engine/g)[-1];
ok($engine_pid, "the engine runs in worker $engine_pid");
$acme->point_here('four.portal.example', 'edge.portal.test');
$log_from = length $t->error_log;
$t->ctl_ok(qw(domain add four.portal.example --brand Four));
ok(wait_for(sub { substr($t->error_log, $log_from) =~ /"four\.portal\.example": order (\S+) created/ }, 15),
   'an order for four.portal.example is in flight');
my ($order) = substr($t->error_log, $log_from) =~ /"four\.portal\.example": order (\S+) created/;
ok(kill('KILL', $engine_pid), "SIGKILL to the engine's worker $engine_pid");
ok(wait_for(sub { served_by_pebble('four.portal.example') }, 30),
   'after the kill, another engine finishes: four.portal.example is served (the pair matches: '
   . 'the handshake proves the key)') or diag $t->error_log_tail(20);
wait_for(sub { substr($t->error_log, $log_from) =~ /worker process $engine_pid exited on signal 9/ }, 5);
my $after = substr($t->error_log, $log_from);
like($after, qr/worker process $engine_pid exited on signal 9/, 'the worker was killed')
    or diag join "\n", grep { /runs the ACME engine|exited on signal/ } split /\n/, $t->error_log;
like($after, qr/(resuming order \Q$order\E|order \S+ created)/, 'the order was resumed or restarted');
note(($after =~ /resuming order/) ? 'the order was resumed' : 'a new order was made');
is(status_of('four.portal.example')->{state}, 'active', 'four.portal.example is active');
ok(wait_for(sub { served_by_pebble('three.portal.example') }, 20),
   'three.portal.example got its certificate once Pebble was back');

# ---- restart: no order for names that hold a valid certificate ----
$t->stop;
my $orders = $acme->order_count;
$t->start;
ok(wait_for(sub { $t->error_log =~ /engine started/ }, 5), 'the engine runs again');
sleep 3;
is($acme->order_count, $orders, 'after a restart, no order for the four certified names');
for my $h (qw(one two three four)) {
    is(status_of("$h.portal.example")->{state}, 'active', "$h.portal.example active");
}
$t->stop;
my @crashes = grep { !/exited on signal 9/ } $t->crash_lines;
is_deeply(\@crashes, [], 'no other worker died');
done_testing;

sub iso {
    my ($s) = @_;
    my ($y, $mo, $d, $h, $mi, $sec) = $s =~ /^(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+)Z$/ or return 0;
    require Time::Local;
    return Time::Local::timegm($sec, $mi, $h, $d, $mo - 1, $y);
}

sub ngx_time {
    my ($s) = @_;
    my ($y, $mo, $d, $h, $mi, $sec) = $s =~ m{^(\d+)/(\d+)/(\d+) (\d+):(\d+):(\d+)$} or return 0;
    require Time::Local;
    return Time::Local::timelocal($sec, $mi, $h, $d, $mo - 1, $y);
}
