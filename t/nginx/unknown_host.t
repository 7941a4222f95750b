# A host that is not a portal domain: 421 by default, or the code portal_unknown_host gives,
# or passed through without any portal context with "portal_unknown_host off".
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use PortalTest;

my $t = PortalTest->new;
$t->start_upstream;
$t->ctl_ok('init');
$t->ctl_ok(qw(domain add portal.yourwebsite.com --brand Known --access cdr));

$t->write_conf(<<'EOF2');
    server {
        listen 127.0.0.1:%%PORT%%;
        portal on;

        location / {
            proxy_pass http://%%UPSTREAM%%;
        }
        location /code404/ {
            portal_unknown_host 404;
            proxy_pass http://%%UPSTREAM%%;
        }
        location /off/ {
            portal_unknown_host off;
            proxy_pass http://%%UPSTREAM%%;
        }
    }

    server {
        listen 127.0.0.1:%%PORT%%;
        server_name server-level.example;
        portal on;
        portal_unknown_host 410;

        location / {
            proxy_pass http://%%UPSTREAM%%;
        }
    }
EOF2
$t->start;

is($t->get('unknown.example', '/')->{status}, 421, 'unknown host: 421 by default');
is($t->get('portal.yourwebsite.com', '/')->{status}, 200, 'known host: 200');
ok(!PortalTest::from_upstream($t->get('unknown.example', '/')),
    'unknown host: the request does not reach the upstream');

is($t->get('unknown.example', '/code404/x')->{status}, 404,
    'portal_unknown_host 404 in a location');
is($t->get('portal.yourwebsite.com', '/code404/x')->{status}, 200,
    'portal_unknown_host 404: a known host still passes');

my $off = $t->get('unknown.example', '/off/x');
is($off->{status}, 200, 'portal_unknown_host off: an unknown host passes through');
is_deeply($t->portal_headers($off), {}, 'portal_unknown_host off: no X-Portal-* header sent');
is_deeply($t->portal_headers($t->get('portal.yourwebsite.com', '/off/x')), {
    'x-portal-host' => 'portal.yourwebsite.com', 'x-portal-brand' => 'Known',
    'x-portal-customer-signup' => '0', 'x-portal-carrier-signup' => '0',
    'x-portal-customer-limit' => '0.00', 'x-portal-access' => 'cdr',
    'x-portal-status' => 'active',
}, 'portal_unknown_host off: a known host still gets its context');

is($t->raw("GET / HTTP/1.1\r\nHost: server-level.example\r\nConnection: close\r\n\r\n")
    ->{status}, 410, 'portal_unknown_host at server level');

is_deeply([$t->crash_lines], [], 'no crash in error.log');

done_testing;
