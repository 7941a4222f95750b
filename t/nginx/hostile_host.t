# Hostile Host values, sent byte for byte: each has one defined answer, nginx never crashes,
# and no request ever gets the context of a portal domain it does not name.
# Who answers: nginx itself refuses what HTTP forbids (400: empty host, "..", NUL, CR, two
# Host headers, HTTP/1.1 without Host); the module answers 400 for a bad port and treats a
# name that is not a valid hostname as an unknown host (421, portal_unknown_host's default).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use PortalTest;

my $t = PortalTest->new;
$t->start_upstream;
$t->ctl_ok('init');

my $known = 'portal.yourwebsite.com';
my $l63 = 'a' x 63;
my $name253 = join '.', 'a' x 63, 'b' x 63, 'c' x 63, 'd' x 61;    # the longest valid name
my $name254 = join '.', 'a' x 63, 'b' x 63, 'c' x 63, 'd' x 62;
is(length $name253, 253, '253-byte name');
is(length $name254, 254, '254-byte name');

$t->ctl_ok('domain', 'add', $known, '--brand', 'Portal');
$t->ctl_ok(qw(domain add other.example --brand Other));
$t->ctl_ok('domain', 'add', "$l63.example", '--brand', 'Long label');
$t->ctl_ok('domain', 'add', $name253, '--brand', 'Long name');
$t->ctl_ok(qw(domain add xn--e1afmkfd.example --brand IDN));    # пример.example

$t->write_conf(<<'EOF2');
    server {
        listen 127.0.0.1:%%PORT%%;
        portal on;
        location / {
            proxy_pass http://%%UPSTREAM%%;
        }
        location /open/ {
            portal_unknown_host off;
            proxy_pass http://%%UPSTREAM%%;
        }
    }
EOF2
$t->start;
my @workers = $t->worker_pids;

sub show { join '', map { /[^\x21-\x7e]/ ? sprintf('\\x%02x', ord) : $_ } split //, $_[0] }

# Host header value => expected status; 200 rows also name the brand the upstream must see.
my @hosts = (
    ['',                              400],            # nginx: empty host
    ['..a',                           400],            # nginx: ".."
    ['a..b',                          400],            # nginx: ".."
    ["$known..",                      400],            # nginx: ".."
    ["$known/x",                      400],            # nginx: a slash
    ["a\0b.example",                  400],            # nginx: NUL in a header
    ["$known\0",                      400],            # nginx: NUL after a known name
    ["a\rb.example",                  400],            # nginx: bare CR in a header
    ["$known\t",                      400],            # nginx: a control character
    ['a.com:99999',                   400],            # module: port out of range
    ["$known:99999",                  400],            # module: never the known domain
    ["$known:65536",                  400],
    ["$known:0",                      400],
    ["$known:abc",                    400],
    ["$known:65535",                  200, 'Portal'],  # the highest port is a port
    ['a.com:',                        421],            # an empty port is no port: a.com
    ["$known:",                       200, 'Portal'],
    ["$known:80:80",                  421],            # "portal...:80" is not a hostname
    [('a' x 64) . '.example',         421],            # a 64-byte label
    ["$l63.example",                  200, 'Long label'],
    [$name254,                        421],            # a 254-byte name
    ["$name253.",                     200, 'Long name'],  # 253 bytes and the root's dot
    [$name253,                        200, 'Long name'],
    ["\xd0\xbf\xd1\x80\xd0\xb8\xd0\xbc\xd0\xb5\xd1\x80.example", 421],  # raw UTF-8 (U-label)
    ['xn--e1afmkfd.example',          200, 'IDN'],     # its A-label, as browsers send it
    ["\xff\xfe.example",              421],            # bytes that are not even UTF-8
    ['%',                             421],
    ['%70ortal.yourwebsite.com',      421],            # no percent-decoding of a host
    ['_',                             421],
    ['portal_yourwebsite.com',        421],
    ['.portal.yourwebsite.com',       421],            # an empty first label
    ['-a.example',                    421],
    ['127.0.0.1',                     421],
    ['[::1]:80',                      421],
    ['localhost',                     421],
);

for my $h (@hosts) {
    my ($host, $want, $brand) = @$h;
    my $res = $t->raw("GET / HTTP/1.1\r\nHost: $host\r\nConnection: close\r\n\r\n");
    my $name = 'Host "' . show($host) . '" (' . length($host) . " bytes)";
    is($res->{status}, $want, "$name: $want");
    is($t->seen($res)->{'x-portal-brand'}, $brand, "$name: " . ($brand ? "brand $brand" : 'no context'))
        if $want == 200;
}

# With portal_unknown_host off, a bad port is still 400 and an invalid name passes with no
# portal context at all.
for my $h (grep { $_->[1] != 200 } @hosts) {
    my ($host, $want) = @$h;
    my $res = $t->raw("GET /open/ HTTP/1.1\r\nHost: $host\r\nConnection: close\r\n\r\n");
    my $name = 'Host "' . show($host) . '", portal_unknown_host off';
    if ($want == 421) {
        is_deeply($t->portal_headers($res), {}, "$name: passes, no context");
    } else {
        is($res->{status}, $want, "$name: $want");
    }
}

# Whole requests.
my @requests = (
    ["GET / HTTP/1.1\r\nHost: $known\r\nHost: other.example\r\nConnection: close\r\n\r\n",
     400, undef, 'two Host headers'],
    ["GET / HTTP/1.1\r\nHost: $known\r\nHost: $known\r\nConnection: close\r\n\r\n",
     400, undef, 'two identical Host headers'],
    ["GET / HTTP/1.1\r\nConnection: close\r\n\r\n", 400, undef, 'HTTP/1.1 without Host'],
    ["GET / HTTP/1.0\r\n\r\n", 421, undef, 'HTTP/1.0 without Host: unknown host'],
    ["GET / HTTP/1.0\r\nHost: $known\r\n\r\n", 200, 'Portal', 'HTTP/1.0 with Host'],
    # RFC 9112 3.2.2: the request line's host wins over the Host header
    ["GET http://other.example/ HTTP/1.1\r\nHost: $known\r\nConnection: close\r\n\r\n",
     200, 'Other', 'absolute form naming another portal domain: that domain'],
    ["GET http://unknown.example/ HTTP/1.1\r\nHost: $known\r\nConnection: close\r\n\r\n",
     421, undef, 'absolute form naming an unknown host: unknown, not the Host header\'s'],
    ["GET http://OTHER.Example./x HTTP/1.1\r\nHost: $known\r\nConnection: close\r\n\r\n",
     200, 'Other', 'absolute form, upper case and trailing dot'],
    ["GET http://other.example:99999/ HTTP/1.1\r\nHost: $known\r\nConnection: close\r\n\r\n",
     400, undef, 'absolute form with a bad port: 400, as in a Host header'],
    ["GET http://other.example:8080/ HTTP/1.1\r\nHost: $known\r\nConnection: close\r\n\r\n",
     200, 'Other', 'absolute form with a port'],
    ["GET http://a..b/ HTTP/1.1\r\nHost: $known\r\nConnection: close\r\n\r\n",
     400, undef, 'absolute form with ".."'],
    ["GET http://%/ HTTP/1.1\r\nHost: $known\r\nConnection: close\r\n\r\n",
     400, undef, 'absolute form with "%"'],
    ["GET http:/// HTTP/1.1\r\nHost: $known\r\nConnection: close\r\n\r\n",
     400, undef, 'absolute form with no host'],
    ["GET http://_/ HTTP/1.1\r\nHost: $known\r\nConnection: close\r\n\r\n",
     400, undef, 'absolute form with "_" (nginx: not allowed in the request line)'],
);

for my $r (@requests) {
    my ($req, $want, $brand, $name) = @$r;
    my $res = $t->raw($req);
    is($res->{status}, $want, "$name: $want");
    is($t->seen($res)->{'x-portal-brand'}, $brand, "$name: brand $brand") if $want == 200;
}

is_deeply([$t->worker_pids], \@workers, 'the same worker served everything: no crash');
is_deeply([$t->crash_lines], [], 'error.log: no process exited on a signal');
ok(kill(0, $t->master_pid), 'the master is alive');
is($t->get($known, '/')->{status}, 200, 'and still serves');

done_testing;
