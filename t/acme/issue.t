# The ACME engine inside nginx against Pebble: a portal domain whose CNAME reaches the portal
# target is served over HTTPS with a certificate that verifies against Pebble's root, within
# 10 s of `portalctl domain add`, with no reload; a domain without the CNAME stays
# pending_dns and no order reaches Pebble; the engine runs in one worker only; its log lines
# reach error.log naming the domain and the order.
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

my ($dns, $p) = $acme->start_edge($t, directives => ['portal_acme_contact mailto:ops@portal.example;']);
my ($rc, $out) = $t->nginx_t;
is($rc, 0, 'nginx -t accepts the ACME configuration') or diag $out;
$t->start;
my $master = $t->master_pid;

# Wait until the engine runs in one of the two workers.
my $deadline = time + 10;
sleep 0.1 until $t->error_log =~ /this worker runs the ACME engine/ || time > $deadline;
my @runs = $t->error_log =~ /this worker runs the ACME engine/g;
is(scalar @runs, 1, 'one worker runs the ACME engine');

sub https_ok {
    my ($host) = @_;
    my $hs = $t->tls_handshake(port => $t->port2, sni => $host, ca => $p->{roots});
    return $hs->{ok} ? $hs : undef;
}

# A domain whose CNAME is set: served with Pebble's certificate within 10 s of the add.
$acme->point_here('portal.yourwebsite.com', 'edge.portal.test');
my $t0 = time;
$t->ctl_ok(qw(domain add portal.yourwebsite.com --brand), 'Your Website');
my $hs;
until (($hs = https_ok('portal.yourwebsite.com')) || time - $t0 > 10) { sleep 0.1 }
ok($hs, sprintf('portal.yourwebsite.com is served with a certificate that verifies against '
                . "Pebble's root, %.1f s after domain add", time - $t0))
    or diag $t->error_log_tail(30);
like($hs->{issuer} // '', qr/Pebble/i, 'issued by Pebble') if $hs;
is($t->master_pid, $master, 'no reload');

# The request through the portal, over HTTPS, with curl verifying the chain.
my ($crc, $body) = $t->run('curl', '-sS', '--cacert', $p->{roots}, '--resolve',
    'portal.yourwebsite.com:' . $t->port2 . ':127.0.0.1',
    'https://portal.yourwebsite.com:' . $t->port2 . '/cdr');
is($crc, 0, 'curl verifies the portal over HTTPS') or diag $body;
like($body, qr/^x-portal-brand: Your Website$/m, 'the backend gets the brand');

# A domain without the CNAME: pending_dns, and no order reaches Pebble.
my $orders = $acme->order_count;
$t->ctl_ok(qw(domain add portal.elsewhere.example --brand Elsewhere));
$deadline = time + 5;
my $st;
while (time < $deadline) {
    my ($src, $json) = $t->ctl(qw(status --json));
    $st = { map { $_->{host} => $_ } @{ decode_json($json)->{domains} } } if $src == 0;
    last if $st && $st->{'portal.elsewhere.example'}{state} eq 'pending_dns'
        && $st->{'portal.elsewhere.example'}{detail} =~ /DNS/;
    sleep 0.2;
}
is($st->{'portal.elsewhere.example'}{state}, 'pending_dns', 'without the CNAME: pending_dns');
like($st->{'portal.elsewhere.example'}{detail}, qr/no A\/AAAA\/CNAME/, 'status says why');
sleep 2;
is($acme->order_count, $orders, 'no order reached Pebble for it');

is($st->{'portal.yourwebsite.com'}{state}, 'active', 'the other one is active');
like($st->{'portal.yourwebsite.com'}{certificate}{issuer}, qr/Pebble/, 'status shows the issuer');
is($st->{'portal.yourwebsite.com'}{certificate}{source}, 'acme', 'source acme');

# The status table and the log.
my (undef, $table) = $t->ctl('status');
like($table, qr/^engine: running, pid \d+ nginx worker \d+$/m, 'status names the engine');
like($table, qr/^portal\.yourwebsite\.com\s+active\s/m, 'the table shows active');
like($t->error_log, qr/portal: acme: portal domain "portal\.yourwebsite\.com": order https:\S+ created/,
     'error.log names the domain and the order');
like($t->error_log, qr/certificate issued by "Pebble Intermediate CA [^"]*", valid until/,
     'error.log says the certificate was issued');
unlike($t->error_log, qr/PRIVATE KEY/, 'no key material in error.log');

# Later: the CNAME is set and the domain gets its certificate without anything else.
$acme->point_here('portal.elsewhere.example', 'edge.portal.test');
$t0 = time;
until (($hs = https_ok('portal.elsewhere.example')) || time - $t0 > 10) { sleep 0.1 }
ok($hs, sprintf('once its CNAME is set, the second domain is served too (%.1f s)', time - $t0));

$t->stop;
is_deeply([$t->crash_lines], [], 'no worker crashed');
like($t->error_log, qr/acme: engine stopped/, 'the engine stopped with nginx');
done_testing;
