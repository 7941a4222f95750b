# A change made with portalctl is seen by the very next request, on every worker, with no
# reload: the master and its workers stay the same processes and nginx gets no signal.
use strict;
use warnings;
no warnings "qw";    # comma lists (--access a,b) inside qw()
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use PortalTest;

my $t = PortalTest->new;
$t->start_upstream;
$t->ctl_ok('init');
$t->ctl_ok(qw(domain add portal.yourwebsite.com --brand Before --access cdr),
    qw(--customer-signup no --customer-limit 10));

$t->write_conf(<<'EOF2', workers => 2, log_level => 'info');
    server {
        listen 127.0.0.1:%%PORT%%;
        portal on;
        location / {
            proxy_pass http://%%UPSTREAM%%;
        }
        location /balance/ {
            portal_require_access balance;
            proxy_pass http://%%UPSTREAM%%;
        }
    }
EOF2
$t->start;
my $master = $t->master_pid;
my @workers = $t->worker_pids;
is(scalar @workers, 2, 'two workers');

# Requests go to either worker: ask several times, every answer must be the new one.
sub all_seen {
    my ($host, $path, $field) = @_;
    my %got;
    for (1 .. 12) {
        my $res = $t->get($host, $path);
        my $v = $field ? $t->seen($res)->{$field} // "status $res->{status}" : $res->{status};
        $got{$v}++;
    }
    return join ' | ', sort keys %got;
}

is(all_seen('portal.yourwebsite.com', '/', 'x-portal-brand'), 'Before', 'brand before');
is(all_seen('portal.yourwebsite.com', '/balance/x'), 403, 'balance not granted before');

$t->ctl_ok(qw(domain set portal.yourwebsite.com --brand After --access cdr,balance),
    qw(--customer-signup yes --customer-limit 250));
is(all_seen('portal.yourwebsite.com', '/', 'x-portal-brand'), 'After',
    'domain set: the next requests see the new brand');
is(all_seen('portal.yourwebsite.com', '/', 'x-portal-access'), 'balance,cdr',
    'domain set: and the new access');
is(all_seen('portal.yourwebsite.com', '/', 'x-portal-customer-signup'), '1',
    'domain set: and the new customer sign-up');
is(all_seen('portal.yourwebsite.com', '/', 'x-portal-customer-limit'), '250.00',
    'domain set: and the new customer limit');
is(all_seen('portal.yourwebsite.com', '/balance/x'), 200, 'domain set: the new section passes');

is(all_seen('new.yourwebsite.com', '/'), 421, 'a host not added yet: 421');
$t->ctl_ok(qw(domain add new.yourwebsite.com --brand New));
is(all_seen('new.yourwebsite.com', '/', 'x-portal-brand'), 'New', 'domain add: served at once');
$t->ctl_ok(qw(domain rm new.yourwebsite.com));
is(all_seen('new.yourwebsite.com', '/'), 421, 'domain rm: unknown at once');

is(PortalTest::slurp($t->tmp . '/nginx.pid') =~ s/\s+//r, $master,
    'the pid file still names the first master');
ok(kill(0, $master), 'that master is alive');
is_deeply([$t->worker_pids], \@workers, 'the same workers: nothing was reloaded');
is_deeply([grep { /signal \d+|reconfiguring/ } split /\n/, $t->error_log], [],
    'error.log: nginx received no signal');
is(scalar(() = $t->error_log =~ /start worker process \d+/g), 2,
    'error.log: no worker started after the first two');
is_deeply([$t->crash_lines], [], 'no crash in error.log');

done_testing;
