# portal_status: every portal domain with its lifecycle state and certificate, the engine and
# the snapshot, as JSON and as Prometheus text; request counters shared by all workers and
# kept across a reload; never key material; bad format 400, POST 405; nginx -t checks.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use JSON::PP;
use PortalTest;

my $t = PortalTest->new;
$t->start_upstream;
$t->ctl_ok('init');
$t->ctl_ok(qw(domain add portal.yourwebsite.com --brand), 'Your Website');
$t->ctl_ok(qw(domain add old.portal.example --brand Old --status suspended));
my $cert = $t->make_cert('portal.yourwebsite.com');
$t->import_cert('portal.yourwebsite.com', $cert);

$t->write_conf(<<'EOF2', workers => 2);
    server {
        listen 127.0.0.1:%%PORT%%;
        portal on;
        location / { proxy_pass http://%%UPSTREAM%%; }
    }
    server {
        listen 127.0.0.1:%%PORT2%%;
        location = /status { portal_status; }
    }
EOF2
$t->start;

sub status {
    my ($query) = @_;
    return $t->get_port($t->port2, 'admin.example', '/status' . ($query // ''));
}

# 5 requests for a portal domain, 3 for unknown names.
$t->get('portal.yourwebsite.com', '/') for 1 .. 5;
$t->get("unknown$_.example", '/') for 1 .. 3;

my $r = status();
is($r->{status}, 200, 'portal_status answers');
like($r->{headers}{'content-type'}, qr{^application/json}, 'JSON');
my $j = eval { decode_json($r->{body}) };
ok($j, 'it parses') or diag $r->{body};
is($j->{snapshot}{domains}, 2, 'snapshot: 2 domains');
is($j->{snapshot}{generation}, 2, 'snapshot: generation 2 (two commits)');
is($j->{engine}{running}, JSON::PP::false, 'engine: not running');
my %d = map { $_->{host} => $_ } @{ $j->{domains} };
is_deeply([sort keys %d], ['old.portal.example', 'portal.yourwebsite.com'], 'every portal domain');
is($d{'portal.yourwebsite.com'}{state}, 'active', 'a domain with a valid certificate: active');
is($d{'portal.yourwebsite.com'}{certificate}{source}, 'imported', 'its source');
like($d{'portal.yourwebsite.com'}{certificate}{issuer}, qr/Portal Test/, 'its issuer');
ok($d{'portal.yourwebsite.com'}{certificate}{days_left} >= 2, 'days left');
is($d{'old.portal.example'}{status}, 'suspended', 'the suspended domain says so');
is($d{'old.portal.example'}{certificate}, undef, 'and has no certificate');

my $p = status('?format=prometheus');
is($p->{status}, 200, 'Prometheus text');
like($p->{headers}{'content-type'}, qr{^text/plain; version=0\.0\.4}, 'with its content type');
like($p->{body}, qr/^portal_domains\{state="active"\} 1$/m, 'portal_domains{state="active"} 1');
like($p->{body}, qr/^portal_domains\{state="pending_dns"\} 1$/m, 'pending_dns 1');
like($p->{body}, qr/^portal_certificate_expiry_seconds\{host="portal\.yourwebsite\.com"\} (\d+)$/m,
     'the expiry of the certificate');
my ($expiry) = $p->{body} =~ /expiry_seconds\{host="portal\.yourwebsite\.com"\} (\d+)/;
ok(abs($expiry - (time + 3 * 86400)) < 2 * 86400, 'as a Unix time about 3 days ahead');
like($p->{body}, qr/^portal_acme_orders_total\{result="valid"\} 0$/m, 'portal_acme_orders_total');
like($p->{body}, qr/^portal_requests_total\{result="hit"\} 5$/m, '5 hits, from both workers');
like($p->{body}, qr/^portal_requests_total\{result="miss"\} 3$/m, "3 misses") or diag $p->{body};
like($p->{body}, qr/^# TYPE portal_requests_total counter$/m, 'typed');

for my $body ($r->{body}, $p->{body}) {
    unlike($body, qr/PRIVATE KEY|BEGIN/, 'no key material');
}

is(status('?format=xml')->{status}, 400, 'an unknown format: 400');
my $post = $t->raw("POST /status HTTP/1.1\r\nHost: admin.example\r\nContent-Length: 0\r\n"
                   . "Connection: close\r\n\r\n", port => $t->port2);
is($post->{status}, 405, 'POST: 405');

# The counters survive a reload.
my $master = $t->master_pid;
my @old = $t->worker_pids;
kill 'HUP', $master;
my $deadline = time + 10;
select(undef, undef, undef, 0.1) while time < $deadline && grep { PortalTest::slurp("/proc/$_/stat") } @old;
$t->get('portal.yourwebsite.com', '/');
like(status('?format=prometheus')->{body}, qr/^portal_requests_total\{result="hit"\} 6$/m,
     'after a reload the count goes on');
$t->stop;

# nginx -t: portal_status without portal_data.
$t->write_conf(<<'EOF2', portal_data => undef, params => 0);
    server {
        listen 127.0.0.1:%%PORT2%%;
        location = /status { portal_status; }
    }
EOF2
my ($rc, $out) = $t->nginx_t;
isnt($rc, 0, 'nginx -t refuses portal_status without portal_data');
like($out, qr/"portal_status" directive needs "portal_data" before it in the http block/, 'and says why');
done_testing;
