# A suspended portal domain gets 403, everywhere, and is back at once when made active.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use PortalTest;

my $t = PortalTest->new;
$t->start_upstream;
$t->ctl_ok('init');
$t->ctl_ok(qw(domain add paused.example --brand Paused --access cdr --status suspended),
    qw(--customer-signup yes));
$t->ctl_ok(qw(domain add running.example --brand Running --access cdr));

$t->write_conf(<<'EOF2');
    server {
        listen 127.0.0.1:%%PORT%%;
        portal on;

        location / {
            proxy_pass http://%%UPSTREAM%%;
        }
        location /cdr/ {
            portal_require_access cdr;
            proxy_pass http://%%UPSTREAM%%;
        }
        location /signup/ {
            portal_require_signup customer;
            proxy_pass http://%%UPSTREAM%%;
        }
        location /open/ {
            portal_unknown_host off;
            proxy_pass http://%%UPSTREAM%%;
        }
    }
EOF2
$t->start;

for my $path ('/', '/cdr/x', '/signup/', '/open/') {
    my $res = $t->get('paused.example', $path);
    is($res->{status}, 403, "suspended domain, $path: 403");
    ok(!PortalTest::from_upstream($res), "suspended domain, $path: not at the upstream");
}
is($t->get('running.example', '/')->{status}, 200, 'an active domain next to it: 200');
like($t->error_log, qr/portal domain "paused\.example" is suspended/,
    'error.log says the domain is suspended');

$t->ctl_ok(qw(domain set paused.example --status active));
my $res = $t->get('paused.example', '/cdr/x');
is($res->{status}, 200, 'made active: 200 at the next request');
is($t->seen($res)->{'x-portal-status'}, 'active', 'X-Portal-Status: active');

$t->ctl_ok(qw(domain set running.example --status suspended));
is($t->get('running.example', '/')->{status}, 403, 'suspended with portalctl: 403 at once');

is_deeply([$t->crash_lines], [], 'no crash in error.log');

done_testing;
