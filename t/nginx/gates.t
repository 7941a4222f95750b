# portal_require_access and portal_require_signup: 403 at the edge unless the portal domain
# grants the section / has the sign-up enabled; 200 (the upstream) when it does.
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
# "full" grants cdr and balance and has both sign-ups; "bare" has neither
$t->ctl_ok(qw(domain add full.example --brand Full --access cdr,balance),
    qw(--customer-signup yes --carrier-signup yes));
$t->ctl_ok(qw(domain add bare.example --brand Bare --access rate_card),
    qw(--customer-signup no --carrier-signup no));
$t->ctl_ok(qw(domain add customers.example --brand Customers --access cdr),
    qw(--customer-signup yes --carrier-signup no));

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
        location /both/ {
            portal_require_access cdr balance;
            proxy_pass http://%%UPSTREAM%%;
        }
        location /signup/customer/ {
            portal_require_signup customer;
            proxy_pass http://%%UPSTREAM%%;
        }
        location /signup/carrier/ {
            portal_require_signup carrier;
            proxy_pass http://%%UPSTREAM%%;
        }
        location /signup/any/ {
            portal_require_signup customer carrier;
            proxy_pass http://%%UPSTREAM%%;
        }
        location /open/cdr/ {
            portal_unknown_host off;
            portal_require_access cdr;
            proxy_pass http://%%UPSTREAM%%;
        }
        location /open/signup/ {
            portal_unknown_host off;
            portal_require_signup customer;
            proxy_pass http://%%UPSTREAM%%;
        }
    }
EOF2
$t->start;

my @cases = (
    # host, path, expected status
    ['full.example',      '/',                   200],
    ['bare.example',      '/',                   200],
    ['full.example',      '/cdr/calls',          200],
    ['bare.example',      '/cdr/calls',          403],
    ['customers.example', '/cdr/calls',          200],
    ['full.example',      '/both/x',             200],
    ['customers.example', '/both/x',             403],   # cdr only: every name is needed
    ['bare.example',      '/both/x',             403],
    ['full.example',      '/signup/customer/',   200],
    ['customers.example', '/signup/customer/',   200],
    ['bare.example',      '/signup/customer/',   403],
    ['full.example',      '/signup/carrier/',    200],
    ['customers.example', '/signup/carrier/',    403],
    ['bare.example',      '/signup/carrier/',    403],
    ['full.example',      '/signup/any/',        200],
    ['customers.example', '/signup/any/',        403],   # both are required
    ['unknown.example',   '/cdr/calls',          421],   # unknown before any gate
    # with portal_unknown_host off, a host that is no portal domain has no section
    ['full.example',      '/open/cdr/',          200],
    ['bare.example',      '/open/cdr/',          403],
    ['unknown.example',   '/open/cdr/',          403],
    ['full.example',      '/open/signup/',       200],
    ['unknown.example',   '/open/signup/',       403],
);

for my $c (@cases) {
    my ($host, $path, $want) = @$c;
    my $res = $t->get($host, $path);
    is($res->{status}, $want, "$host $path: $want");
    if ($want == 200) {
        is($t->seen($res)->{'x-portal-host'}, $host, "$host $path: reached the upstream");
    }
}

# a gate follows the data: grant the section, and the same request passes
$t->ctl_ok(qw(domain set bare.example --access rate_card,cdr --customer-signup yes));
is($t->get('bare.example', '/cdr/calls')->{status}, 200, 'section granted: 200');
is($t->get('bare.example', '/signup/customer/')->{status}, 200, 'sign-up enabled: 200');
$t->ctl_ok(qw(domain set bare.example --access rate_card --customer-signup no));
is($t->get('bare.example', '/cdr/calls')->{status}, 403, 'section revoked: 403 again');
is($t->get('bare.example', '/signup/customer/')->{status}, 403, 'sign-up disabled: 403 again');

like($t->error_log, qr/portal domain "bare\.example": no access to "cdr"/,
    'error.log says which section was refused');

is_deeply([$t->crash_lines], [], 'no crash in error.log');

done_testing;
