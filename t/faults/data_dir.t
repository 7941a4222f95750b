# The data directory damaged, at start and while nginx runs.
#
# At start: missing, or closed to the worker user, or a data file empty or truncated:
# `nginx -t` and nginx itself refuse the configuration, naming the directory or the file;
# portalctl refuses a damaged file too and writes nothing.
#
# At run time: the data directory renamed, closed (chmod 000) or removed: the workers keep
# the environments they opened and serve the last good data; a worker started meanwhile (one
# killed) answers with the documented error (500; the fallback certificate) and an alert,
# and recovers by itself once the directory is back. data.mdb truncated under running
# workers: the reads that meet its end get the same error (500, fallback certificate), no
# worker dies, and all is served again once the file is whole.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use Time::HiRes qw(sleep time);
use File::Copy qw(copy);
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

    # truncated or emptied snapshot, as a bad copy or restore leaves it: nginx -t and the
    # start refuse it, naming the file
    my $snap = "$data/snapshot/data.mdb";
    copy($snap, "$tmp/snapshot.good") or die "copy: $!";
    for my $size (0, 8192, int((-s $snap) / 2)) {
        truncate $snap, $size or die "truncate: $!";
        my $why = $size ? qr/"\Q$snap\E" is truncated: $size bytes, where its data takes \d+; restore it from a backup/
            : qr/the snapshot file "\Q$snap\E" is empty \(0 bytes\): restore it from a backup/;
        ($rc, $out) = $t->nginx_t;
        isnt($rc, 0, "snapshot truncated to $size bytes: nginx -t fails");
        like($out, qr/\[emerg\] \d+#\d+: portal data "\Q$data\E": $why/, 'and says why') or diag $out;
        my $from = length $t->error_log;
        $err = eval { $t->start; '' } // $@;
        like($err, qr/nginx exited at start.*$why/s, 'nginx refuses to start, with the same message');
        is(scalar deaths($t, $from), 0, 'no process died of a signal');
        copy("$tmp/snapshot.good", $snap) or die "copy: $!";
    }

    # the same for the state store (read by portal_ssl)
    my $state = "$data/state/data.mdb";
    copy($state, "$tmp/state.good") or die "copy: $!";
    truncate $state, 8192 or die "truncate: $!";
    ($rc, $out) = $t->nginx_t;
    isnt($rc, 0, 'state store truncated to 8192 bytes: nginx -t fails');
    like($out, qr/\[emerg\] \d+#\d+: portal data "\Q$data\E": "\Q$state\E" is truncated: 8192 bytes/,
        'and says why') or diag $out;
    $err = eval { $t->start; '' } // $@;
    like($err, qr/nginx exited at start.*"\Q$state\E" is truncated/s, 'nginx refuses to start');
    copy("$tmp/state.good", $state) or die "copy: $!";

    # portalctl refuses it too, and writes nothing (LMDB would start an empty file afresh)
    truncate $snap, 0 or die "truncate: $!";
    my ($crc, undef, $cerr) = $t->ctl('domain', 'set', $HOST, '--brand', 'Other');
    is($crc, 1, 'portalctl domain set on an empty snapshot file: exit 1');
    like($cerr, qr/portalctl: the snapshot file "\Q$snap\E" is empty/, 'saying so') or diag $cerr;
    is(-s $snap, 0, 'and the file is left as it was');
    truncate $snap, 8192 or die "truncate: $!";
    ($crc, undef, $cerr) = $t->ctl('domain', 'list');
    is($crc, 1, 'portalctl domain list on a truncated snapshot: exit 1, no crash');
    like($cerr, qr/portalctl: (?:"\Q$snap\E" is truncated: 8192 bytes|the snapshot file "\Q$snap\E" \(8192 bytes\) is damaged or truncated)/,
        'saying so') or diag $cerr;
    copy("$tmp/snapshot.good", $snap) or die "copy: $!";
    ($rc, $out) = $t->nginx_t;
    is($rc, 0, 'restored: nginx -t passes') or diag $out;
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
# reads that meet the end are caught (the store's SIGBUS guard): 500 and an alert, or the
# last good data from pages still in the file, never a dead worker. A worker started
# meanwhile refuses the file. Made whole again in place, it is served again.
$from = length $t->error_log;
my $snap = "$data/snapshot/data.mdb";
copy($snap, "$tmp/snapshot.good") or die "copy: $!";
truncate $snap, 8192 or die "truncate: $!";
$a = answers($t, 4);
my $a2 = answers($t, 4, '7.data.example');
like("$a, $a2", qr/^(?:200 \S+|500) x\d+(?:, (?:200 \S+|500) x\d+)*$/,
    "snapshot truncated while running: the last good data or 500 ($a; $a2)");
like(substr($t->error_log, $from), qr/\[alert\] .*portal domain "[^"]+": lookup failed: .*"\Q$data\E\/snapshot": the data file ends before the data it holds \(truncated\?\)/,
    'an alert says the data file is truncated');
($victim) = $t->worker_pids;
kill 'KILL', $victim;
wait_workers($t, $victim);
$a = answers($t, 10, '7.data.example');
like($a, qr/^(?:200 \S+ x\d+, )?500 x\d+$/, "a worker started meanwhile answers 500 ($a)");
like(substr($t->error_log, $from), qr/\[alert\] .*portal snapshot unavailable: "\Q$snap\E" is truncated: 8192 bytes/,
    'and logs why');
write_in_place("$tmp/snapshot.good", $snap);
sleep 1.1;    # reopened at most once per second
is(answers($t, 10), '200 Restored x10', 'the file whole again: served again by every worker');
is_deeply([grep { !/exited on signal 9/ } deaths($t, $from)], [], 'no crash but the kill');

$from = length $t->error_log;
my $state = "$data/state/data.mdb";
copy($state, "$tmp/state.good") or die "copy: $!";
truncate $state, 8192 or die "truncate: $!";
$h = handshakes($t, 4, $cert, $fallback);
like($h, qr/^(?:domain|fallback) x\d+(?:, fallback x\d+)?$/,
    "state store truncated while running: the certificate or the fallback ($h)");
write_in_place("$tmp/state.good", $state);
sleep 1.1;
is(handshakes($t, 6, $cert, $fallback), 'domain x6', 'the file whole again: the certificate again');
is(answers($t, 10), '200 Restored x10', 'and the domain');
is_deeply([deaths($t, $from)], [], 'no worker died');
ok(kill(0, $master), 'the master is alive throughout');
$t->stop;
done_testing;
