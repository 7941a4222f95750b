# A portal domain's life with the ACME engine in nginx: issued; a forced renewal
# (portalctl acme renew) replaces the certificate while a client keeps handshaking, with no
# failed handshake; its CNAME cleared → moved, the certificate kept and served; a suspended
# domain is not renewed; with Pebble rejecting half of the good nonces, issuance still
# succeeds.
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

my ($dns, $p) = $acme->start_edge($t, pebble_env => { PEBBLE_WFE_NONCEREJECT => 50 },
                                   directives => ['portal_acme_dns_recheck 1s;']);
$t->start;
my $master = $t->master_pid;

sub handshake {
    my ($host) = @_;
    return $t->tls_handshake(port => $t->port2, sni => $host, ca => $p->{roots});
}

sub status_of {
    my ($host) = @_;
    my ($rc, $json) = $t->ctl(qw(status --json));
    return undef unless $rc == 0;
    my ($d) = grep { $_->{host} eq $host } @{ decode_json($json)->{domains} };
    return $d;
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

my $host = 'portal.yourwebsite.com';
$acme->point_here($host, 'edge.portal.test');
$t->ctl_ok('domain', 'add', $host, '--brand', 'Your Website');
my $first;
ok(wait_for(sub { ($first = handshake($host))->{ok} }, 15),
   'issued with Pebble rejecting half of the good nonces') or diag $t->error_log_tail(20);
ok(wait_for(sub { $t->error_log =~ /certificate issued by/ }, 5), 'the engine logged the issuance');

# Forced renewal while a client keeps handshaking: no failure, a new serial.
my ($handshakes, $failures, $new) = (0, 0, undef);
$t->ctl_ok('acme', 'renew', $host);
my $deadline = time + 15;
while (time < $deadline) {
    my $hs = handshake($host);
    $handshakes++;
    unless ($hs->{ok}) { $failures++; diag "failed: $hs->{error}"; next }
    if ($hs->{serial} ne $first->{serial}) { $new = $hs; last }
}
ok($new, "a forced renewal replaces the certificate ($handshakes handshakes meanwhile)");
is($failures, 0, 'zero failed handshakes during the renewal');
ok(wait_for(sub { $t->error_log =~ /"\Q$host\E": renewal asked by portalctl/ }, 3),
   'the engine logged the request');
is(status_of($host)->{state}, 'active', 'active again after the renewal');
is($t->master_pid, $master, 'no reload');

# The CNAME cleared: moved within the DNS recheck, the certificate still served.
$acme->point_away($host);
ok(wait_for(sub { (status_of($host) // {})->{state} eq 'moved' }, 10), 'CNAME cleared: moved')
    or diag explain status_of($host);
like(status_of($host)->{detail}, qr/DNS/, 'the detail says DNS');
my $hs = handshake($host);
ok($hs->{ok} && $hs->{serial} eq $new->{serial}, 'the certificate is kept and served');
my $orders = $acme->order_count;
$t->ctl_ok('acme', 'renew', $host);
sleep 2;
is($acme->order_count, $orders, 'a moved domain is not ordered, even when asked');
is(status_of($host)->{state}, 'moved', 'still moved');

# Back again: active.
$acme->point_here($host, 'edge.portal.test');
ok(wait_for(sub { (status_of($host) // {})->{state} eq 'active' }, 10), 'CNAME back: active');

# A suspended domain is not a wanted name: renewal asked for it is ignored.
$t->ctl_ok('domain', 'set', $host, '--status', 'suspended');
sleep 1;
$orders = $acme->order_count;
my ($rc, undef, $err) = $t->ctl('acme', 'renew', $host);
is($rc, 2, 'portalctl acme renew refuses a suspended domain');
like($err, qr/not an active portal domain/, 'and says why');
sleep 1;
is($acme->order_count, $orders, 'no order for a suspended domain');

$t->stop;
is_deeply([$t->crash_lines], [], 'no worker crashed');
done_testing;
