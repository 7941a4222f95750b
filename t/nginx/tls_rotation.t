# A certificate replaced with portalctl while clients keep connecting: no handshake fails,
# each presents the old or the new certificate and nothing else, every handshake that starts
# after the import presents the new one, and nginx is not reloaded. A certificate removed
# gives way to the fallback from the next handshake.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use Time::HiRes qw(sleep time);
use PortalTest;

my $t = PortalTest->new;
$t->start_upstream;
$t->ctl_ok('init');
$t->ctl_ok(qw(domain add portal.rotate.example --brand Rotate));

my $fallback = $t->make_cert('fallback.invalid', self_signed => 1);
my $old = $t->make_cert('portal.rotate.example');
my $new = $t->make_cert('portal.rotate.example');    # a new key and a new serial
isnt($new->{serial}, $old->{serial}, 'the two certificates have different serials');
$t->import_cert('portal.rotate.example', $old);

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
is(scalar @workers, 2, 'two workers');

# Serials seen over N handshakes, each on a new connection: "serial" or "serial xN" joined.
sub serials {
    my ($n) = @_;
    my %seen;
    for (1 .. $n) {
        my $hs = $t->tls_handshake(sni => 'portal.rotate.example');
        $seen{ $hs->{ok} ? $hs->{serial} : "failed: $hs->{error}" }++;
    }
    return join ', ', map { $seen{$_} == $n ? $_ : "$_ x$seen{$_}" } sort keys %seen;
}
is(serials(10), $old->{serial}, 'before: the first certificate, 10 handshakes out of 10');

# The client: one handshake after another, each on a new connection, until told to stop.
# One line per handshake: the time it started, then the serial or "failed" and why.
my $log = $t->tmp . '/handshakes';
my $stop = $t->tmp . '/stop';
my $client = fork // die "fork: $!";
if ($client == 0) {
    open my $fh, '>', $log or POSIX::_exit(1);
    $fh->autoflush(1);
    my $deadline = time + 60;
    until (-e $stop || time > $deadline) {
        my $start = time;
        my $hs = $t->tls_handshake(sni => 'portal.rotate.example');
        printf $fh "%.6f %s %d %s\n", $start, $hs->{ok} ? $hs->{serial} : 'failed',
            $hs->{reused} // 0, $hs->{ok} ? '' : $hs->{error} =~ s/\s+/ /gr;
    }
    close $fh;
    POSIX::_exit(0);
}

sub handshakes {
    my @lines = split /\n/, PortalTest::slurp($log) // '';
    pop @lines if @lines && !defined $lines[-1];
    return map { [split / /, $_, 4] } @lines;
}
sub wait_for {
    my ($what, $cond) = @_;
    my $deadline = time + 30;
    sleep 0.05 until $cond->() || time > $deadline;
    $cond->() or die "timeout waiting for $what\n";
}

wait_for('150 handshakes', sub { handshakes() >= 150 });
my $import_started = time;
$t->import_cert('portal.rotate.example', $new);
my $imported = time;
wait_for('150 handshakes after the import',
    sub { (grep { $_->[0] > $imported } handshakes()) >= 150 });
PortalTest::spew($stop, '');
waitpid $client, 0;

my @all = handshakes();
my @failed = grep { $_->[1] eq 'failed' } @all;
my @after = grep { $_->[0] > $imported } @all;
my $span = @all ? $all[-1][0] - $all[0][0] : 0;
cmp_ok(scalar @all, '>=', 300, 'the client made 300 handshakes or more')
    and note sprintf '%d handshakes in %.1f s, import took %.3f s', scalar @all, $span,
        $imported - $import_started;
is(scalar @failed, 0, 'no handshake failed') or diag join "\n", map { "@$_" } grep { defined } @failed[0 .. 4];
is(scalar(grep { $_->[2] } @all), 0, 'every handshake was a full one (no resumption)');
my %expected = map { $_ => 1 } $old->{serial}, $new->{serial}, 'failed';
is_deeply([map { "@$_" } grep { !$expected{ $_->[1] } } @all], [],
    'never a certificate other than the old or the new one');
cmp_ok(scalar(grep { $_->[1] eq $old->{serial} } @all), '>=', 150,
    'the old certificate before the import');
is_deeply([map { "@$_" } grep { $_->[1] ne $new->{serial} } @after], [],
    'every handshake started after the import presents the new certificate');

is(serials(20), $new->{serial}, 'after: the new certificate, 20 handshakes out of 20');
{
    my ($rc, $out, $err) = $t->curl('--cacert', $t->test_ca->{root}, '--resolve',
        'portal.rotate.example:' . $t->port . ':127.0.0.1',
        'https://portal.rotate.example:' . $t->port . '/');
    like($out, qr/^x-portal-brand: Rotate$/m, 'the new certificate verifies: curl gets the portal')
        or diag $err;
}

# removed: the fallback from the next handshake; imported again: served again
$t->ctl_ok(qw(cert rm portal.rotate.example));
is(serials(20), $fallback->{serial}, 'cert rm: the fallback certificate, 20 handshakes out of 20');
my $again = $t->make_cert('portal.rotate.example');
$t->import_cert('portal.rotate.example', $again);
is(serials(20), $again->{serial}, 'imported again: served at once, 20 handshakes out of 20');

is(PortalTest::slurp($t->tmp . '/nginx.pid') =~ s/\s+//r, $master,
    'the pid file still names the first master');
ok(kill(0, $master), 'that master is alive');
is_deeply([$t->worker_pids], \@workers, 'the same workers: nothing was reloaded');
is_deeply([grep { /signal \d+|reconfiguring/ } split /\n/, $t->error_log], [],
    'error.log: nginx received no signal');
is_deeply([$t->crash_lines], [], 'no crash in error.log');

done_testing;
