# Spellings of one host that name the same portal domain: upper case, a trailing dot, the
# default port, in the Host header or in an absolute-form request line.
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
    qw(--access cdr --customer-limit 100));
$t->ctl_ok(qw(domain add portal.other.example --brand Other));

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
    }
EOF2
$t->start;

my %want = (
    'x-portal-host' => 'portal.yourwebsite.com', 'x-portal-brand' => 'Your Website',
    'x-portal-customer-signup' => '0', 'x-portal-carrier-signup' => '0',
    'x-portal-customer-limit' => '100.00', 'x-portal-access' => 'cdr',
    'x-portal-status' => 'active',
);

for my $host ('portal.yourwebsite.com', 'PORTAL.yourwebsite.com', 'Portal.YourWebsite.COM',
              'portal.yourwebsite.com.', 'portal.yourwebsite.com:80',
              'PORTAL.YOURWEBSITE.COM.:80', 'portal.yourwebsite.com:')
{
    is_deeply($t->portal_headers($t->get($host, '/cdr/x')), \%want,
        "Host: $host is portal.yourwebsite.com");
}

for my $target ('http://PORTAL.yourwebsite.com/cdr/x', 'http://portal.yourwebsite.com.:80/cdr/x') {
    my $res = $t->raw("GET $target HTTP/1.1\r\nHost: portal.other.example\r\n"
        . "Connection: close\r\n\r\n");
    is_deeply($t->portal_headers($res), \%want, "absolute form $target is portal.yourwebsite.com");
}

is_deeply([$t->crash_lines], [], 'no crash in error.log');

done_testing;
