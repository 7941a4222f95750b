# A worker killed with SIGKILL under load, 20 times: the master starts a new one each time;
# the dead worker's LMDB reader slots (snapshot and state store) stay in the reader tables
# until another process opens the environment, and are freed when the new worker does
# (mdb_reader_check at open), so the reader tables never grow beyond one slot per live worker; the only failed requests are those the killed worker held; every
# request and handshake after the restart succeeds.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use Time::HiRes qw(sleep time);
use POSIX ();
use PortalTest;

# A write to a connection that nginx closed (a worker killed) fails; it does not kill the test
# or its clients.
$SIG{PIPE} = 'IGNORE';

my $KILLS = 20;
my $HOST = 'portal.kill.example';
my $t = PortalTest->new;
$t->start_upstream;
$t->ctl_ok('init');
$t->ctl_ok('domain', 'add', $HOST, '--brand', 'Kill');
my $fallback = $t->make_cert('fallback.invalid', self_signed => 1);
my $cert = $t->make_cert($HOST);
$t->import_cert($HOST, $cert);

$t->write_conf(<<"EOF2", workers => 2);
    server {
        listen 127.0.0.1:%%PORT%%;
        portal on;
        location / { proxy_pass http://%%UPSTREAM%%; }
    }
    server {
        listen 127.0.0.1:%%PORT2%% ssl;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_certificate $fallback->{cert};
        ssl_certificate_key $fallback->{key};
        portal_ssl on;
        portal on;
        location / { proxy_pass http://%%UPSTREAM%%; }
    }
EOF2
$t->start;
my $master = $t->master_pid;

# The reader table of an environment, from `mdb_stat -r` (which lists it without taking a
# slot itself): [[pid, thread, txnid], ...], one per slot in use. (mdb_stat -r of LMDB 0.9.24
# exits 1 whenever it has printed a table: its output is what counts.)
sub readers {
    my ($env) = @_;
    my ($rc, $out, $err) = $t->run('mdb_stat', '-r', $t->data . "/$env");
    die "mdb_stat -r $env: exit $rc: $err (is lmdb-utils installed?)\n"
        unless $out =~ /^Reader Table Status/m;
    return map { [split ' '] } grep { /^\s*\d+\s+\S+\s+\S+\s*$/ } split /\n/, $out;
}
sub pids_of { join ' ', sort { $a <=> $b } map { $_->[0] } @_ }
sub alive { my ($pid) = @_; my $s = PortalTest::slurp("/proc/$pid/stat") // ''; $s =~ /\)\s+[^ZX]/ }

sub request_ok { my $r = $t->get($HOST, '/'); $r->{status} == 200 && $r->{body} =~ /^x-portal-brand: Kill$/m }
sub handshake_ok {
    my $hs = $t->tls_handshake(port => $t->port2, sni => $HOST);
    return $hs->{ok} && $hs->{serial} eq $cert->{serial};
}
# Enough requests and handshakes that both workers have served some (and so opened both
# environments): the connections go to either worker.
sub exercise {
    my ($n) = @_;
    my $bad = 0;
    for (1 .. $n) {
        $bad++ unless request_ok();
        $bad++ unless handshake_ok();
    }
    return $bad;
}

is(exercise(20), 0, 'before: requests and handshakes succeed');
my @workers = $t->worker_pids;
is(pids_of(readers('snapshot')), join(' ', @workers), 'snapshot: one reader slot per worker');
is(pids_of(readers('state')), join(' ', @workers), 'state store: one reader slot per worker');

# What frees a dead worker's slot: not LMDB by itself, but the next process that opens the
# environment (the new worker). With the master stopped, so that it forks no new worker yet,
# the killed worker's slots stay in both tables; once it runs again, they are gone.
{
    my $victim = $workers[0];
    kill 'STOP', $master;
    kill 'KILL', $victim;
    my $deadline = time + 5;
    sleep 0.01 while alive($victim) && time < $deadline;
    my $listed = eval { grep { $_->[0] == $victim } readers('snapshot'), readers('state') };
    kill 'CONT', $master;    # whatever happened
    is($listed, 2,
       "master stopped, worker $victim killed: its two slots are still listed (dead reader)");
    $deadline = time + 10;
    sleep 0.01 until ($t->worker_pids == 2 && !grep { $_ == $victim } $t->worker_pids)
        || time > $deadline;
    @workers = $t->worker_pids;
    is(pids_of(readers('snapshot')), join(' ', @workers),
       'master running again: the new worker opened the snapshot and its check freed the slot');
    is(pids_of(readers('state')), join(' ', @workers), 'and the state store\'s');
}

# The load: one client, a request then a handshake, again and again. One line each: start
# and end time, what, ok or the failure.
my $stop = $t->tmp . '/stop';
my $client = fork // die "fork: $!";
if ($client == 0) {
    open my $fh, '>', $t->tmp . '/load.log' or POSIX::_exit(1);
    $fh->autoflush(1);
    my $deadline = time + 80;
    until (-e $stop || time > $deadline) {
        for my $what ('http', 'tls') {
            my $s = time;
            my $ok = eval { $what eq 'http' ? request_ok() : handshake_ok() } ? 'ok' : 'failed';
            printf $fh "%.6f %.6f %s %s\n", $s, time, $what, $ok;
        }
    }
    close $fh;
    POSIX::_exit(0);
}
sleep 0.5;

# lines of the load client's log so far
sub load_count { my $l = PortalTest::slurp($t->tmp . '/load.log') // ''; $l =~ tr/\n// }

my (@kills, @stale_seen, @slots_after, $bad_after, @restart_ms);
my $seen_load = 0;
for my $k (1 .. $KILLS) {
    # the load goes on between kills: 10 more requests and handshakes first
    my $until = time + 10;
    sleep 0.02 while load_count() < $seen_load + 10 && time < $until;
    $seen_load = load_count();
    my @before = $t->worker_pids;
    my $victim = $before[$k % 2];
    my $t0 = time;
    kill 'KILL', $victim or die "kill $victim: $!";
    # the master notices and forks a new worker
    my @now;
    my $deadline = time + 10;
    until ((@now = $t->worker_pids) == 2 && !grep { $_ == $victim } @now) {
        die "no new worker 10 s after killing $victim\n" if time > $deadline;
        sleep 0.005;
    }
    my ($new) = grep { my $p = $_; !grep { $_ == $p } @before } @now;
    push @restart_ms, (time - $t0) * 1000;
    push @kills, { victim => $victim, new => $new, at => $t0 };
    # at once: is the dead one still in the tables (the new worker may not have opened the
    # environments yet)?
    push @stale_seen, scalar grep { $_->[0] == $victim } readers('snapshot'), readers('state');
    $bad_after += exercise(5);
    # once the new worker has opened both environments (at its start, in init_process: on a
    # busy machine that may come after the requests above), the dead worker's slots are gone
    my (@snap, @state);
    my $opened_by = time + 5;
    until ((grep { $_->[0] == $new } @snap = readers('snapshot'))
           && (grep { $_->[0] == $new } @state = readers('state')) || time > $opened_by) {
        sleep 0.02;
    }
    push @slots_after, { snapshot => pids_of(@snap), state => pids_of(@state),
                         live => join(" ", @now), dead => scalar(grep { !alive($_->[0]) } @snap, @state),
                         detail => "kill $k: victim $victim, new $new, live " . join(' ', $t->worker_pids)
                             . '; snapshot slots: ' . join(', ', map { "@$_" } @snap)
                             . '; state slots: ' . join(', ', map { "@$_" } @state) };
    sleep 0.2;
}
sleep 0.3;
PortalTest::spew($stop, '');
waitpid $client, 0;
is($?, 0, 'the load client ran to the end');

is(scalar @kills, $KILLS, "$KILLS workers killed, each replaced by the master");
is($t->master_pid, $master, 'the same master throughout');
is_deeply([map { $_->{snapshot} } @slots_after], [map { $_->{live} } @slots_after],
    'snapshot: after each restart, the slots in use are exactly those of the live workers');
is_deeply([map { $_->{state} } @slots_after], [map { $_->{live} } @slots_after],
    'state store: the same');
is_deeply([map { $_->{dead} } @slots_after], [(0) x $KILLS], 'no slot of a dead process is left')
    or diag join "\n", map { $_->{detail} } grep { $_->{dead} || $_->{snapshot} ne $_->{live} } @slots_after;
my @final_snap = readers('snapshot');
cmp_ok(scalar @final_snap, '<=', 2, 'after 20 kills the snapshot reader table holds 2 slots, as before')
    or diag explain \@final_snap;
is($bad_after, 0, 'after each restart, 5 requests and 5 handshakes out of 5 succeed');
is(exercise(20), 0, 'after the last restart: 20 requests and 20 handshakes succeed');

# The load: the only failures are requests in flight at a kill (at most one per kill, the
# client having one connection open at a time), none started after the new worker was up.
my @load = map { [split ' '] } split /\n/, PortalTest::slurp($t->tmp . '/load.log') // '';
my @failed = grep { $_->[3] ne 'ok' } @load;
my @unexplained = grep {
    my $f = $_;
    !grep { $f->[0] <= $_->{at} + 0.001 && $f->[1] >= $_->{at} } @kills
} @failed;
cmp_ok(scalar @load, '>=', 200, 'the load client made 200 requests and handshakes or more');
ok(@load && $load[0][0] < $kills[0]{at} && $load[-1][1] > $kills[-1]{at},
   'its load spans every kill');
cmp_ok(scalar @failed, '<=', $KILLS, 'at most one failure per kill');
is_deeply([map { "@$_" } @unexplained], [], 'every failure was in flight when a worker was killed');
my @sorted = sort { $a <=> $b } @restart_ms;
note sprintf('%d kills; new worker up %.0f ms median, %.0f ms max after the kill; load: %d '
    . 'requests and handshakes, %d failed (in flight at a kill); dead readers still listed '
    . 'right after the restart, before the new worker had opened the environments: %d of %d kills',
    $KILLS, $sorted[@sorted / 2], $sorted[-1], scalar @load, scalar @failed,
    scalar(grep { $_ } @stale_seen), $KILLS);

my @deaths = grep { /exited on signal/ } split /\n/, $t->error_log;
is(scalar @deaths, $KILLS + 1, 'error.log: ' . ($KILLS + 1) . ' workers exited on signal 9')
    or diag join "\n", @deaths;
is_deeply([grep { !/signal 9/ } @deaths], [], 'no death other than the kills');
is_deeply([grep { /\[(?:alert|crit|emerg)\]/ && !/exited on signal 9/ } split /\n/, $t->error_log],
    [], 'nothing else at alert or above');
done_testing;
