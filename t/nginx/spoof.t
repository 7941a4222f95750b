# A client's own X-Portal-* headers (any spelling) never reach the upstream: not for a portal
# domain, not for a domain whose value is empty, not for an unknown host passed through with
# "portal_unknown_host off". The client's other headers still do.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use PortalTest;

my $t = PortalTest->new;
$t->start_upstream;
$t->ctl_ok('init');
$t->ctl_ok(qw(domain add portal.yourwebsite.com --brand Real --access cdr),
    qw(--customer-limit 5));
$t->ctl_ok(qw(domain add noaccess.example --brand Plain));   # no section: no X-Portal-Access

$t->write_conf(<<'EOF2');
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
        location /open/ {
            portal_unknown_host off;
            proxy_pass http://%%UPSTREAM%%;
        }
        location /public/ {
            portal off;
            proxy_pass http://%%UPSTREAM%%;
        }
    }
    server {
        listen 127.0.0.1:%%PORT2%%;
        underscores_in_headers on;
        portal on;
        location / {
            proxy_pass http://%%UPSTREAM%%;
        }
    }
EOF2
$t->start;

my @spoof = (
    'X-Portal-Brand: Evil',
    'x-portal-evil: 1',
    'X-PORTAL-ACCESS: balance,carrier_portal,cdr,rate_card',
    'X-Portal-Host: portal.other.example',
    'x-pOrTaL-customer-signup: 1',
    'X-Portal-Customer-Limit: 999999.00',
    'X-Portal-Status: active',
    'X-Portal-: empty suffix',
);
my @other = ('X-Keep-Me: yes', 'Cookie: session=abc', 'X-Portalish: not ours');

my $res = $t->get('portal.yourwebsite.com', '/', @spoof, @other);
is_deeply($t->portal_headers($res), {
    'x-portal-host' => 'portal.yourwebsite.com', 'x-portal-brand' => 'Real',
    'x-portal-customer-signup' => '0', 'x-portal-carrier-signup' => '0',
    'x-portal-customer-limit' => '5.00', 'x-portal-access' => 'cdr',
    'x-portal-status' => 'active',
}, 'portal domain: only the module\'s X-Portal-* headers, with the real values');
my $seen = $t->seen($res);
is_deeply([@$seen{qw(x-keep-me cookie x-portalish)}], ['yes', 'session=abc', 'not ours'],
    'the client\'s other headers still reach the upstream');

is_deeply($t->portal_headers($t->get('noaccess.example', '/', @spoof)), {
    'x-portal-host' => 'noaccess.example', 'x-portal-brand' => 'Plain',
    'x-portal-customer-signup' => '0', 'x-portal-carrier-signup' => '0',
    'x-portal-customer-limit' => '0.00', 'x-portal-status' => 'active',
}, 'domain with no section: the client\'s X-Portal-Access does not fill the gap');

is($t->get('portal.yourwebsite.com', '/balance/x', 'X-Portal-Access: balance')->{status}, 403,
    'a spoofed X-Portal-Access does not open a gate');

is_deeply($t->portal_headers($t->get('unknown.example', '/open/', @spoof)), {},
    'unknown host with portal_unknown_host off: no X-Portal-* header at all');

is_deeply($t->portal_headers($t->get('unknown.example', '/public/', @spoof)), {},
    'a location with portal off: no client X-Portal-* header either');
is_deeply($t->portal_headers($t->get('portal.yourwebsite.com', '/public/', @spoof)), {},
    'a location with portal off on a portal domain: no X-Portal-* header (portal_headers '
    . 'passes on what "portal on" found)');

$res = $t->get_port($t->port2, 'portal.yourwebsite.com', '/',
    'X_Portal_Brand: Evil', 'x_portal_evil: 1', 'X-Keep-Me: yes');
$seen = $t->seen($res);
is_deeply([grep { /^x[-_]portal[-_]/ && !/^x-portal-/ } keys %$seen], [],
    'underscores_in_headers on: X_Portal_* spellings are dropped too');
is($seen->{'x-portal-brand'}, 'Real', 'underscores_in_headers on: the real brand is sent');
is($seen->{'x-keep-me'}, 'yes', 'underscores_in_headers on: other headers still pass');

# more headers than nginx's first header list block holds (20), spoofed ones at both ends
my @many = (@spoof, map({ "X-Filler-$_: $_" } 1 .. 30), @spoof);
$res = $t->get('unknown.example', '/open/', @many);
is_deeply($t->portal_headers($res), {}, '46 headers: no X-Portal-* header gets through');
is(scalar(grep { /^x-filler-/ } keys %{ $t->seen($res) }), 30, '46 headers: the 30 others do');

is_deeply([$t->crash_lines], [], 'no crash in error.log');

done_testing;
