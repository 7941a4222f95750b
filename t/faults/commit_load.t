# 100 portalctl commits (domain set, and import --replace of the whole snapshot) while wrk and
# two checking clients keep requests coming: every answer is explained by the data. A 200
# comes from the upstream with the headers of one record, whole (brand, customer limit and
# access all of the same version), of a version that was current while the request was in
# flight; a 403 only while the suspended domain could be suspended; a 421 only for a host that
# could be absent. No worker dies, nothing is logged at alert or above, nothing is reloaded.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use Time::HiRes qw(sleep time);
use JSON::PP;
use POSIX ();
use PortalTest;

# A write to a connection that nginx closed (a worker killed) fails; it does not kill the test
# or its clients.
$SIG{PIPE} = 'IGNORE';

my $COMMITS = 100;
my $t = PortalTest->new;
$t->start_upstream(processes => 6);
$t->ctl_ok('init');

# The hosts: A changes with domain set; B, C, D, E with import --replace (C is suspended every
# other import, D is left out of every third one, so removed and added back); U never exists.
my @hosts = map { "$_.load.example" } qw(a b c d e u);
my ($A, $B, $C, $D, $E, $U) = @hosts;

# The state of each host after each commit, in order: [t_start, t_end, state], state being
# "absent", "suspended:V" or "V" (active at version V). A record at version V has brand
# "HOST-V", customer limit "V.00" and access "vV".
my %timeline = map { $_ => [] } @hosts;
my %current;

sub record {
    my ($host, $v, $status) = @_;
    return { host => $host, brand => "$host-$v", customer_limit => "$v.00", access => ["v$v"],
             status => $status // 'active' };
}

sub state_of {
    my ($rec) = @_;
    return 'absent' unless $rec;
    my ($v) = $rec->{brand} =~ /-(\d+)$/;
    return $rec->{status} eq 'suspended' ? "suspended:$v" : $v;
}

sub note_commit {
    my ($t0, $t1) = @_;
    for my $h (@hosts) {
        push @{ $timeline{$h} }, [$t0, $t1, state_of($current{$h})];
    }
}

sub import_doc {
    my ($i) = @_;
    $current{$B} = record($B, $i);
    $current{$C} = record($C, $i, $i % 4 == 0 ? 'suspended' : 'active');
    $current{$D} = $i % 6 == 0 ? undef : record($D, $i);
    $current{$E} = record($E, $i);
    my @doc = map { $current{$_} } grep { $current{$_} } $A, $B, $C, $D, $E;
    my $file = $t->tmp . "/import-$i.json";
    PortalTest::spew($file, encode_json({ domains => \@doc }));
    return $file;
}

# version 0 of everything, before the load
$current{$A} = record($A, 0);
my $first = import_doc(0);
$t->ctl_ok('import', '--replace', $first);
note_commit(-1e18, -1e18);

$t->write_conf(<<'EOF2', workers => 2, log_level => 'info');
    server {
        listen 127.0.0.1:%%PORT%%;
        portal on;
        location / {
            proxy_pass http://%%UPSTREAM%%;
        }
    }
EOF2
$t->start;
my $master = $t->master_pid;
my @workers = $t->worker_pids;

# ---- the load ----
# wrk: keep-alive connections cycling over the six hosts; its script checks each 200 for a
# whole record and counts the statuses.
my $lua = $t->tmp . '/load.lua';
PortalTest::spew($lua, <<'LUA');
-- counts and mixed are globals: done() reads them with thread:get
local hosts = { "a", "b", "c", "d", "e", "u" }
local reqs = {}
local n = 0
counts = {}
mixed = 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  for i, h in ipairs(hosts) do
    reqs[i] = "GET /w HTTP/1.1\r\nHost: " .. h .. ".load.example\r\n\r\n"
  end
end

function request()
  n = n + 1
  return reqs[(n % #hosts) + 1]
end

function response(status, headers, body)
  local key = tostring(status)
  if status == 200 then
    local host = body:match("\nx%-portal%-host: ([^\n]*)")
    local brand = body:match("\nx%-portal%-brand: ([^\n]*)")
    local limit = body:match("\nx%-portal%-customer%-limit: ([^\n]*)")
    local access = body:match("\nx%-portal%-access: ([^\n]*)")
    local vb = brand and brand:match("%-(%d+)$")
    local vl = limit and limit:match("^(%d+)%.00$")
    local va = access and access:match("^v(%d+)$")
    if not (host and brand and brand == host .. "-" .. vb and vb == vl and vb == va) then
      mixed = mixed + 1
    end
  end
  counts[key] = (counts[key] or 0) + 1
end

function done(summary, latency, requests)
  local all = {}
  local mx = 0
  for _, thread in ipairs(threads) do
    local c = thread:get("counts")
    for k, v in pairs(c) do all[k] = (all[k] or 0) + v end
    mx = mx + thread:get("mixed")
  end
  local parts = {}
  for k, v in pairs(all) do table.insert(parts, k .. "=" .. v) end
  table.sort(parts)
  local e = summary.errors
  io.write(string.format("WRK requests=%d connect=%d read=%d write=%d timeout=%d mixed=%d statuses=%s\n",
    summary.requests, e.connect, e.read, e.write, e.timeout, mx, table.concat(parts, ",")))
end
LUA

my $wrk_out = $t->tmp . '/wrk.out';
my $wrk = fork // die "fork: $!";
if ($wrk == 0) {
    open STDIN, '<', '/dev/null';
    open STDOUT, '>', $wrk_out or POSIX::_exit(126);
    open STDERR, '>&', \*STDOUT;
    { no warnings 'exec'; exec 'wrk', '-t', '1', '-c', '8', '-d', '80s', '--timeout', '10s',
        '-s', $lua, 'http://127.0.0.1:' . $t->port . '/'; }
    POSIX::_exit(127);
}

# Two checking clients: one request at a time, Connection: close, the hosts in turn. One line
# per request: the time it was sent, the time the answer was read, host, status, then the
# x-portal-* headers the upstream saw.
my $stop = $t->tmp . '/stop';
my @clients;
for my $c (1 .. 2) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open my $fh, '>', $t->tmp . "/client$c.log" or POSIX::_exit(1);
        my $i = $c;
        my $deadline = time + 80;
        until (-e $stop || time > $deadline) {
            my $host = $hosts[$i++ % @hosts];
            my $s = time;
            my $res = eval { $t->get($host, '/c') } // { status => 0, body => '' };
            my $e = time;
            my $seen = $t->portal_headers($res);
            print $fh join("\t", sprintf('%.6f', $s), sprintf('%.6f', $e), $host, $res->{status},
                map { $seen->{"x-portal-$_"} // '' } qw(host brand customer-limit access status)),
                "\n";
        }
        close $fh;
        POSIX::_exit(0);
    }
    push @clients, $pid;
}

sleep 1;    # the load is on
my $t_begin = time;
my @commit_ms;
for my $i (1 .. $COMMITS) {
    my @cmd;
    if ($i % 2) {
        $current{$A} = record($A, $i);
        @cmd = ('domain', 'set', $A, '--brand', "$A-$i", '--customer-limit', $i,
                '--access', "v$i");
    } else {
        @cmd = ('import', '--replace', import_doc($i));
    }
    my $t0 = time;
    my ($rc, $out, $err) = $t->ctl(@cmd);
    my $t1 = time;
    die "commit $i: portalctl @cmd: exit $rc: $err" if $rc != 0;
    note_commit($t0, $t1);
    push @commit_ms, ($t1 - $t0) * 1000;
    sleep 0.03;
}
my $t_end = time;
sleep 1;    # the load goes on a little after the last commit
PortalTest::spew($stop, '');
waitpid $_, 0 for @clients;
kill 'INT', $wrk;
waitpid $wrk, 0;

# ---- the checks ----
my $wrk_text = PortalTest::slurp($wrk_out) // '';
my ($wrk_line) = $wrk_text =~ /^(WRK .*)$/m;
ok($wrk_line, 'wrk ran and reported') or diag $wrk_text;
$wrk_line //= '';
my %w = $wrk_line =~ /(\w+)=(\S+)/g;
my %wst = map { split /=/ } split /,/, $w{statuses} // '';
cmp_ok($w{requests} // 0, '>=', 2000, "wrk made 2000 requests or more ($wrk_line)");
is(join(' ', map { "$_=" . ($w{$_} // '?') } qw(connect read write timeout)),
   'connect=0 read=0 write=0 timeout=0', 'wrk: no socket error and no timeout');
is($w{mixed}, 0, 'wrk: every 200 carries one whole record');
is_deeply([grep { !/^(?:200|403|421)$/ } sort keys %wst], [], 'wrk: only 200, 403 and 421');

# Every state host H may show to a request in flight from S to E: the state of each commit
# that was visible at some moment of [S, E] (a commit is visible from some point of its own
# [t_start, t_end] until some point of the next one's).
sub possible {
    my ($host, $s, $e) = @_;
    my $tl = $timeline{$host};
    my %p;
    for my $k (0 .. $#$tl) {
        my $until = $k < $#$tl ? $tl->[$k + 1][1] : 9e18;
        $p{ $tl->[$k][2] } = 1 if $tl->[$k][0] <= $e && $until >= $s;
    }
    return \%p;
}

my (@lines, @bad);
for my $c (1 .. 2) {
    push @lines, map { [split /\t/, $_, -1] } split /\n/, PortalTest::slurp($t->tmp . "/client$c.log") // '';
}
my (%by_status, $during, %seen_versions);
for my $l (@lines) {
    my ($s, $e, $host, $status, $xhost, $brand, $limit, $access, $xstatus) = @$l;
    $by_status{$status}++;
    $during++ if $s >= $t_begin && $e <= $t_end;
    my $p = possible($host, $s, $e);
    my $why;
    if ($status == 200) {
        my ($v) = ($brand // '') =~ /^\Q$host\E-(\d+)$/;
        if (!defined $v) {
            $why = 'a 200 without the brand of this host';
        } elsif ($xhost ne $host || $limit ne "$v.00" || $access ne "v$v" || $xstatus ne 'active') {
            $why = 'headers of more than one record';
        } elsif (!$p->{$v}) {
            $why = "version $v was not current while the request was in flight";
        } else {
            $seen_versions{$host}{$v} = 1;
        }
    } elsif ($status == 403) {
        $why = 'a 403 while the host could not be suspended' unless grep { /^suspended:/ } keys %$p;
    } elsif ($status == 421) {
        $why = 'a 421 while the host could not be absent' unless $p->{absent};
    } else {
        $why = "status $status";
    }
    push @bad, "@$l: $why (possible: " . join(',', sort keys %$p) . ')' if $why;
}
cmp_ok(scalar @lines, '>=', 1000, 'the checking clients made 1000 requests or more');
cmp_ok($during // 0, '>=', 500, 'of which 500 or more while the commits ran');
is(scalar @bad, 0, 'every answer of the checking clients is explained by the data')
    or diag join "\n", @bad[0 .. ($#bad < 9 ? $#bad : 9)];
ok($by_status{403} && $by_status{421}, 'they saw the suspended domain (403) and the removed one (421)');
# the changing hosts were seen at many versions: the load really crossed the commits
cmp_ok(scalar(keys %{ $seen_versions{$A} // {} }), '>=', 10, "$A seen at 10 versions or more");
cmp_ok(scalar(keys %{ $seen_versions{$B} // {} }), '>=', 10, "$B seen at 10 versions or more");

my @sorted = sort { $a <=> $b } @commit_ms;
note sprintf('%d commits in %.1f s (portalctl %.0f ms median, %.0f ms max); wrk: %s; '
    . 'checking clients: %d requests (%s)', $COMMITS, $t_end - $t_begin, $sorted[@sorted / 2],
    $sorted[-1], $wrk_line, scalar @lines,
    join(', ', map { "$_: $by_status{$_}" } sort keys %by_status));

# ---- nginx ----
is($t->master_pid, $master, 'the same master');
is_deeply([$t->worker_pids], \@workers, 'the same workers: none died, nothing was reloaded');
is_deeply([grep { /exited on signal|core dumped|\[(?:alert|crit|emerg)\]/ } split /\n/, $t->error_log],
    [], 'error.log: no worker died, nothing at alert or above');
is_deeply([$t->crash_lines], [], 'no crash in error.log');
done_testing;
