# The backend receives the portal domain's context as X-Portal-* headers (portal_params).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use PortalTest;

my $t = PortalTest->new;
$t->start_upstream;
$t->ctl_ok('init');
$t->ctl_ok(qw(domain add portal.yourwebsite.com --brand), 'Your Website',
    qw(--customer-signup yes --carrier-signup no --customer-limit 100),
    '--access', 'rate_card,cdr,balance');
$t->ctl_ok(qw(domain add portal.other.example --brand), 'Other Co',
    qw(--customer-signup no --carrier-signup yes --customer-limit 2500.5
       --access carrier_portal));
$t->ctl_ok(qw(domain add bare.example --brand Bare));

$t->write_conf(<<'EOF2');
    server {
        listen 127.0.0.1:%%PORT%%;
        portal on;
        location / {
            proxy_pass http://%%UPSTREAM%%;
        }
    }
EOF2
$t->start;

is_deeply($t->portal_headers($t->get('portal.yourwebsite.com', '/dashboard')), {
    'x-portal-host'            => 'portal.yourwebsite.com',
    'x-portal-brand'           => 'Your Website',
    'x-portal-customer-signup' => '1',
    'x-portal-carrier-signup'  => '0',
    'x-portal-customer-limit'  => '100.00',
    'x-portal-access'          => 'balance,cdr,rate_card',
    'x-portal-status'          => 'active',
}, 'first domain: its brand, sign-up flags, limit and sorted access');

is_deeply($t->portal_headers($t->get('portal.other.example', '/')), {
    'x-portal-host'            => 'portal.other.example',
    'x-portal-brand'           => 'Other Co',
    'x-portal-customer-signup' => '0',
    'x-portal-carrier-signup'  => '1',
    'x-portal-customer-limit'  => '2500.50',
    'x-portal-access'          => 'carrier_portal',
    'x-portal-status'          => 'active',
}, 'second domain: its own context, not the first one\'s');

# defaults of "domain add": no sign-up, limit 0.00, no section (an empty value is not sent)
is_deeply($t->portal_headers($t->get('bare.example', '/')), {
    'x-portal-host'            => 'bare.example',
    'x-portal-brand'           => 'Bare',
    'x-portal-customer-signup' => '0',
    'x-portal-carrier-signup'  => '0',
    'x-portal-customer-limit'  => '0.00',
    'x-portal-status'          => 'active',
}, 'domain with defaults: no X-Portal-Access header for no section');

my $seen = $t->seen($t->get('portal.yourwebsite.com', '/a/b?c=d'));
is($seen->{':request'}, 'GET /a/b?c=d HTTP/1.0', 'the request reaches the upstream as sent');
is($seen->{host}, '127.0.0.1:' . (split /:/, $t->upstream)[1], 'upstream Host is proxy_pass\'s');

is_deeply([$t->crash_lines], [], 'no crash in error.log');

done_testing;
