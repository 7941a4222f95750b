# The data directory damaged, at start and while nginx runs.
#
# At start: missing, or closed to the worker user: `nginx -t` and nginx itself refuse the
# configuration, naming the directory. A truncated snapshot or state store: see the TODO
# blocks below (a bug: workers die of SIGBUS).
#
# At run time: the data directory renamed, closed (chmod 000) or removed: the workers keep
# the environments they opened and serve the last good data; a worker started meanwhile (one
# killed) answers with the documented error (500; the fallback certificate) and an alert,
# and recovers by itself once the directory is back. data.mdb truncated under running
# workers: TODO, workers die of SIGBUS (reported as a bug).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use Time::HiRes qw(sleep time);
use File::Copy qw(copy);
use POSIX ();
use PortalTest;

# A write to a connection that nginx closed (a worker killed) fails; it does not kill the test
# or its clients.
$SIG{PIPE} = 'IGNORE';

my $HOST = 'portal.data.example';

# A fresh instance: data directory with one domain (brand Data) and its certificate, nginx
# configured (2 workers, HTTP on PORT, HTTPS with portal_ssl on PORT2) but not started.
sub fresh {
    my $t = PortalTest->new;
    $t->start_upstream;
    $t->ctl_ok('init');
    $t->ctl_ok('domain', 'add', $HOST, '--brand', 'Data');
    # 200 more, so that the snapshot spans more pages than the two meta pages
    PortalTest::spew($t->tmp . '/more.json', '{"domains":[' . join(',',
        map { qq({"host":"$_.data.example","brand":"B$_"}) } 1 .. 200) . ']}');
    $t->ctl_ok('import', $t->tmp . '/more.json');
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
    return ($t, $cert, $fallback);
}

# What N requests for HOST got: "200 Data" for the domain's own answer, else the status;
# joined as "answer xCOUNT" (sorted).
# With UNTIL (a status), goes on after N, up to 10 times N, until one answer had it (the
# connections go to either worker: the one a test is about may need a few more).
sub answers {
    my ($t, $n, $host, $until) = @_;
    my %seen;
    for my $i (1 .. ($until ? 10 * $n : $n)) {
        last if $until && $i > $n && $seen{$until};
        my $req = "GET / HTTP/1.1\r\nHost: " . ($host // $HOST) . "\r\nConnection: close\r\n\r\n";
        my $r = eval { $t->raw($req, timeout => 2) } // { status => 0, body => '' };
        my $brand = $t->seen($r)->{'x-portal-brand'};
        $seen{ $r->{status} == 200 && $brand ? "200 $brand" : $r->{status} }++;
    }
    return join ', ', map { "$_ x$seen{$_}" } sort keys %seen;
}

# The same for N handshakes: "domain" (its certificate), "fallback", or "failed".
sub handshakes {
    my ($t, $n, $cert, $fallback) = @_;
    my %seen;
    for (1 .. $n) {
        my $hs = $t->tls_handshake(port => $t->port2, sni => $HOST);
        my $what = !$hs->{ok} ? 'failed'
            : $hs->{serial} eq $cert->{serial} ? 'domain'
            : $hs->{serial} eq $fallback->{serial} ? 'fallback' : "serial $hs->{serial}";
        $seen{$what}++;
    }
    return join ', ', map { "$_ x$seen{$_}" } sort keys %seen;
}

sub deaths {
    my ($t, $from) = @_;
    return grep { /exited on signal|core dumped/ } split /\n/, substr($t->error_log, $from // 0);
}

# Writes the content of FROM over TO in place (the same inode, which workers have mapped).
sub write_in_place {
    my ($from, $to) = @_;
    my $bytes = PortalTest::slurp($from) // die "$from: $!";
    open my $fh, '+<:raw', $to or die "$to: $!";
    print {$fh} $bytes;
    close $fh or die "$to: $!";
}

sub wait_workers {
    my ($t, $gone) = @_;
    my $deadline = time + 10;
    sleep 0.01 until ($t->worker_pids == 2 && !grep { $_ == $gone } $t->worker_pids)
        || time > $deadline;
}

# Starts nginx without waiting for it to answer (its workers may die as they start), as
# PortalTest::start does otherwise (the harness then stops it as usual), and waits SECS.
sub start_nowait {
    my ($t, $secs) = @_;
    my $tmp = $t->tmp;
    unlink "$tmp/nginx.pid";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$tmp/nginx.out";
        open STDERR, '>&', \*STDOUT;
        { no warnings 'exec'; exec $t->{nginx}, '-p', "$tmp/", '-c', $t->conf_file; }
        POSIX::_exit(127);
    }
    $t->{master} = $pid;    # PortalTest's own record of the master it started
    sleep $secs;
    return $pid;
}

# ---- at start ------------------------------------------------------------------------------

{
    my ($t, $cert, $fallback) = fresh();
    my $data = $t->data;
    my $tmp = $t->tmp;

    # missing
    rename $data, "$tmp/away" or die "rename: $!";
    my ($rc, $out) = $t->nginx_t;
    isnt($rc, 0, 'data directory missing: nginx -t fails');
    like($out, qr/\[emerg\] \d+#\d+: portal data directory "\Q$data\E" cannot be opened.*No such file/,
        'and says which directory, and why');
    my $err = eval { $t->start; '' } // $@;
    like($err, qr/nginx exited at start.*portal data directory "\Q$data\E" cannot be opened/s,
        'nginx refuses to start, with the same message');
    rename "$tmp/away", $data or die "rename: $!";

    # closed to the worker user
    chmod 0000, $data or die "chmod: $!";
    ($rc, $out) = $t->nginx_t;
    isnt($rc, 0, 'data directory mode 000: nginx -t fails');
    like($out, qr/\[emerg\] \d+#\d+: portal data "\Q$data\E": the worker user "nobody" cannot enter "\Q$data\E"/,
        'and says that the worker user cannot enter it') or diag $out;
    $err = eval { $t->start; '' } // $@;
    like($err, qr/nginx exited at start.*cannot enter/s, 'nginx refuses to start');
    chmod 0755, $data or die "chmod: $!";

    ($rc, $out) = $t->nginx_t;
    is($rc, 0, 'repaired: nginx -t passes') or diag $out;

    # truncated snapshot: nginx -t does not open the snapshot (documented), so it passes.
    # Then a worker either cannot open it (an alert that does not say why, and the
    # documented 500) or dies of SIGBUS as it reads it, again and again (see the report).
    my $snap = "$data/snapshot/data.mdb";
    copy($snap, "$tmp/snapshot.good") or die "copy: $!";
    for my $size (0, 8192, int((-s $snap) / 2)) {
        truncate $snap, $size or die "truncate: $!";
        ($rc, $out) = $t->nginx_t;
        TODO: {
            local $TODO = 'nginx -t does not check that the snapshot can be read';
            isnt($rc, 0, "snapshot truncated to $size bytes: nginx -t fails");
        }
        my $from = length $t->error_log;
        start_nowait($t, 0.8);
        # no request while workers die: it would only wait
        my $got = deaths($t, $from) ? 'not asked: workers dying' : answers($t, 4);
        $t->stop;
        my @deaths = deaths($t, $from);
        my @why = grep { /\[(?:alert|emerg)\].*portal/ } split /\n/, substr($t->error_log, $from);
        TODO: {
            local $TODO = $size == 8192 ? 'workers die of SIGBUS reading a snapshot truncated '
                . 'after its meta pages, and every new worker too (a crash loop)' : undef;
            is(scalar @deaths, 0, "snapshot truncated to $size bytes: no worker dies")
                or diag scalar(@deaths) . " deaths in about a second, such as: $deaths[0]";
            is($got, '500 x4', "requests get 500 (snapshot unavailable)");
        }
        note "snapshot truncated to $size bytes: nginx -t exit $rc; answers: $got; "
            . scalar(@deaths) . ' worker deaths; ' . ($why[0] // 'no portal alert');
        copy("$tmp/snapshot.good", $snap) or die "copy: $!";
    }

    # truncated state store: nginx -t does not read it (documented); handshakes should get
    # the fallback certificate, with an alert
    my $state = "$data/state/data.mdb";
    copy($state, "$tmp/state.good") or die "copy: $!";
    truncate $state, 8192 or die "truncate: $!";
    my $from = length $t->error_log;
    start_nowait($t, 0.8);
    my $hs = handshakes($t, 2, $cert, $fallback);
    my $got = answers($t, 2);
    $t->stop;
    my @deaths = deaths($t, $from);
    TODO: {
        local $TODO = 'workers die of SIGBUS opening a state store truncated after its meta '
            . 'pages (they open it at start), and every new worker too (a crash loop)';
        is($hs, 'fallback x2', 'state store truncated to 8192 bytes at start: handshakes get the '
            . 'fallback');
        is(scalar @deaths, 0, 'and no worker dies')
            or diag scalar(@deaths) . " deaths in about a second, such as: $deaths[0]";
    }
    note "state store truncated to 8192 bytes: handshakes: $hs; plain HTTP requests: $got; ". scalar(@deaths) . ' worker deaths';
    copy("$tmp/state.good", $state) or die "copy: $!";
    $t->cleanup;
}

# ---- at run time ---------------------------------------------------------------------------

my ($t, $cert, $fallback) = fresh();
my $data = $t->data;
my $tmp = $t->tmp;
$t->start;
my $master = $t->master_pid;
is(answers($t, 10), '200 Data x10', 'running: the domain is served');
is(handshakes($t, 6, $cert, $fallback), 'domain x6', 'with its certificate');

# A reload: new workers, which open the environments afresh.
sub reload {
    my @old = $t->worker_pids;
    kill 'HUP', $master;
    my $deadline = time + 10;
    until (time > $deadline) {
        my @now = $t->worker_pids;
        last if @now == 2 && !grep { my $o = $_; grep { $_ == $o } @now } @old;
        sleep 0.02;
    }
}

# renamed: the workers keep what they opened
rename $data, "$tmp/renamed" or die "rename: $!";
is(answers($t, 10), '200 Data x10', 'data directory renamed: the last good data is still served');
is(handshakes($t, 6, $cert, $fallback), 'domain x6', 'and the certificate');
my ($rc, undef, $err) = $t->ctl('domain', 'set', $HOST, '--brand', 'Other');
is($rc, 1, 'portalctl domain set on the missing directory: exit 1');
like($err, qr/portalctl: .*\Q$data\E/, 'naming the directory') or diag $err;
rename "$tmp/renamed", $data or die "rename: $!";
$t->ctl_ok('domain', 'set', $HOST, '--brand', 'Back');
is(answers($t, 10), '200 Back x10', 'renamed back: a new commit is served at once');

# removed: rm -rf of the data directory (a copy kept); the unlinked files stay open in the
# workers, which go on serving them
my $from = length $t->error_log;
system('cp', '-a', $data, "$tmp/copy") == 0 or die 'cp -a';
system('rm', '-rf', $data) == 0 or die 'rm -rf';
is(answers($t, 10), '200 Back x10', 'data directory removed: the last good data is still served');
is(handshakes($t, 6, $cert, $fallback), 'domain x6', 'and the certificate');
# a worker started now cannot open the environments: the documented 500 and fallback
my ($victim) = $t->worker_pids;
kill 'KILL', $victim;
wait_workers($t, $victim);
my $a = answers($t, 20, undef, 500);
like($a, qr/^(?:200 Back x\d+, )?500 x\d+$/,
    "a worker started meanwhile answers 500, the other one still serves ($a)");
my $h = handshakes($t, 10, $cert, $fallback);
like($h, qr/^(?:domain x\d+, )?fallback x\d+$|^domain x10$/,
    "handshakes: the domain's certificate, or the fallback from the new worker ($h)");
like(substr($t->error_log, $from), qr/\[alert\] .*portal snapshot unavailable: .*No such file/,
    'the new worker logs an alert: snapshot unavailable, no such file');
# back from the copy (new files): the worker that failed opens them within a second; the
# other one keeps the removed files it has open (files replaced behind running workers are
# not seen: a documented limitation)
system('cp', '-a', "$tmp/copy", $data) == 0 or die 'cp -a';
sleep 1.1;
is(answers($t, 10), '200 Back x10', 'restored from a copy: served by every worker');
is_deeply([grep { !/exited on signal 9/ } deaths($t, $from)], [], 'no crash but the kill');
reload();    # every worker opens the restored files
$t->ctl_ok('domain', 'set', $HOST, '--brand', 'Restored');
is(answers($t, 10), '200 Restored x10', 'after a reload, a new commit is seen by every worker');

# closed: chmod 000 on the data directory
$from = length $t->error_log;
chmod 0000, $data or die "chmod: $!";
is(answers($t, 10), '200 Restored x10', 'data directory mode 000: the last good data is still served');
is(handshakes($t, 6, $cert, $fallback), 'domain x6', 'and the certificate');
($victim) = $t->worker_pids;
kill 'KILL', $victim;
wait_workers($t, $victim);
$a = answers($t, 20, undef, 500);
like($a, qr/^(?:200 Restored x\d+, )?500 x\d+$/,
    "a worker started meanwhile answers 500, the other one still serves ($a)");
$h = handshakes($t, 10, $cert, $fallback);
like($h, qr/^(?:domain x\d+, )?fallback x\d+$|^domain x10$/,
    "handshakes: the domain's certificate, or the fallback from the new worker ($h)");
like(substr($t->error_log, $from), qr/\[alert\] .*portal snapshot unavailable: .*Permission denied/,
    'the new worker logs an alert: snapshot unavailable, permission denied');
chmod 0755, $data or die "chmod: $!";
sleep 1.1;    # reopened at most once per second
is(answers($t, 10), '200 Restored x10', 'mode restored: every worker serves again within a second');
is_deeply([grep { !/exited on signal 9/ } deaths($t, $from)], [], 'no crash but the kill');
reload();
is(handshakes($t, 6, $cert, $fallback), 'domain x6', 'after a reload, the certificate');

# truncated under running workers: LMDB's map now reaches past the end of the file. The
# file is made whole again at once (in place: the workers have it mapped), to end the
# crash loop.
$from = length $t->error_log;
my $snap = "$data/snapshot/data.mdb";
copy($snap, "$tmp/snapshot.good") or die "copy: $!";
truncate $snap, 8192 or die "truncate: $!";
$a = answers($t, 2);
my $a2 = answers($t, 2, '7.data.example');
write_in_place("$tmp/snapshot.good", $snap);
sleep 0.3;    # the master logs its workers' deaths
my @deaths = deaths($t, $from);
TODO: {
    local $TODO = 'data.mdb truncated under running workers: they die of SIGBUS, and every new '
        . 'worker dies at start (a crash loop) until the file is whole again';
    like("$a, $a2", qr/^(?:200 \S+|500) x\d+(?:, (?:200 \S+|500) x\d+)*$/,
        "snapshot truncated while running: the last good data or 500 ($a; $a2)");
    is(scalar @deaths, 0, 'snapshot truncated while running: no worker dies')
        or diag scalar(@deaths) . " deaths, such as: $deaths[0]";
}
note "snapshot truncated while running: answers $a; $a2; " . scalar(@deaths) . ' worker deaths';
sleep 1.1;
is(answers($t, 10), '200 Restored x10', 'the file whole again: served again');

$from = length $t->error_log;
my $state = "$data/state/data.mdb";
copy($state, "$tmp/state.good") or die "copy: $!";
truncate $state, 8192 or die "truncate: $!";
$h = handshakes($t, 2, $cert, $fallback);
write_in_place("$tmp/state.good", $state);
sleep 0.3;    # the master logs its workers' deaths
@deaths = deaths($t, $from);
TODO: {
    local $TODO = 'state/data.mdb truncated under running workers: they die of SIGBUS at the '
        . 'next handshake, and every new worker dies at start (a crash loop)';
    like($h, qr/^(?:domain|fallback) x\d+(?:, fallback x\d+)?$/,
        "state store truncated while running: the certificate or the fallback ($h)");
    is(scalar @deaths, 0, 'state store truncated while running: no worker dies')
        or diag scalar(@deaths) . " deaths, such as: $deaths[0]";
}
note "state store truncated while running: handshakes $h; " . scalar(@deaths) . ' worker deaths';
sleep 1.1;
is(handshakes($t, 6, $cert, $fallback), 'domain x6', 'the file whole again: the certificate again');
is(answers($t, 10), '200 Restored x10', 'and the domain');
ok(kill(0, $master), 'the master is alive throughout');
$t->stop;
done_testing;
