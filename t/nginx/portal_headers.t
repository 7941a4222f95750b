# portal_headers (what portal_params turns on): the X-Portal-* headers reach the backend
# where "portal on" found the domain, whatever else the location sets: a location's own
# proxy_set_header does not drop them (as it drops inherited proxy_set_header lines), one of
# the same name replaces one of them, an internal redirect does not add them twice, the
# auth_request subrequest and a non-proxy backend (SCGI, as HTTP_X_PORTAL_*) get them too,
# and "portal_headers off" or "portal off" sends none.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use IO::Socket::INET;
use IO::Select;
use POSIX ();
use PortalTest;

my $t = PortalTest->new;
$t->start_upstream;
$t->ctl_ok('init');
$t->ctl_ok(qw(domain add portal.yourwebsite.com --brand), 'Your Website',
    qw(--customer-signup yes --customer-limit 100 --access cdr));

# A backend of this test: ANSWER gets the request as read (up to the end of its head, or of
# its SCGI netstring) and returns the response to send.
sub backend {
    my ($answer) = @_;
    my $listen = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
        Proto => 'tcp', Listen => 16, ReuseAddr => 1) or die "listen: $!";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        $SIG{ALRM} = $SIG{TERM} = sub { POSIX::_exit(0) };
        alarm 300;
        while (1) {
            my $c = $listen->accept or next;
            my $buf = '';
            my $sel = IO::Select->new($c);
            until ($buf =~ /\r\n\r\n/ || ($buf =~ /^(\d+):/ && length($buf) >= length($1) + $1 + 2)) {
                last unless $sel->can_read(10) && sysread($c, $buf, 65536, length $buf);
            }
            print $c $answer->($buf);
            close $c;
        }
    }
    push @{ $t->{upstream_pids} }, $pid;    # stopped with the test's upstream
    my $addr = '127.0.0.1:' . $listen->sockport;
    close $listen;
    return $addr;
}

# SCGI (scgi_pass): a netstring of NUL-separated names and values; the answer lists them.
my $scgi = backend(sub {
    my ($len) = $_[0] =~ /^(\d+):/;
    my %env = split /\0/, substr($_[0], length($len) + 1, $len), -1;
    return "Status: 200 OK\r\nContent-Type: text/plain\r\n\r\n"
        . join('', map { "$_=$env{$_}\n" } sort keys %env);
});

# auth_request's backend: 204 only when the subrequest carries the domain's context
my $auth = backend(sub {
    my $ok = $_[0] =~ /^X-Portal-Brand: Your Website\r$/mi && $_[0] =~ /^X-Portal-Access: cdr\r$/mi;
    return ($ok ? "HTTP/1.1 204 No Content\r\n" : "HTTP/1.1 403 Forbidden\r\n")
        . "Content-Length: 0\r\nConnection: close\r\n\r\n";
});

$t->write_conf(<<"EOF2");
    server {
        listen 127.0.0.1:%%PORT%%;
        portal on;

        location / {
            proxy_pass http://%%UPSTREAM%%;
        }
        location /own/ {
            # nginx inherits proxy_set_header lines only into a level that sets none
            proxy_set_header X-Own yes;
            proxy_pass http://%%UPSTREAM%%;
        }
        location /replaced/ {
            proxy_set_header X-Portal-Brand "edge: \$portal_brand";
            proxy_pass http://%%UPSTREAM%%;
        }
        location /variables/ {
            portal_headers off;
            proxy_set_header X-Tenant "\$portal_brand (\$portal_customer_limit)";
            proxy_pass http://%%UPSTREAM%%;
        }
        location /redirected/ {
            error_page 404 = \@named;
            return 404;
        }
        location \@named {
            proxy_pass http://%%UPSTREAM%%;
        }
        location /tried/ {
            try_files /nonexistent \@named;
        }
        location /auth/ {
            auth_request /check;
            proxy_pass http://%%UPSTREAM%%;
        }
        location /auth-without/ {
            auth_request /check;
            portal_headers off;
            proxy_pass http://%%UPSTREAM%%;
        }
        location = /check {
            internal;
            proxy_pass_request_body off;
            proxy_pass http://$auth;
        }
        location /scgi/ {
            include /etc/nginx/scgi_params;
            scgi_pass $scgi;
        }
        location /public/ {
            portal off;
            proxy_pass http://%%UPSTREAM%%;
        }
    }
EOF2
$t->start;

my %all = (
    'x-portal-host'            => 'portal.yourwebsite.com',
    'x-portal-brand'           => 'Your Website',
    'x-portal-customer-signup' => '1',
    'x-portal-carrier-signup'  => '0',
    'x-portal-customer-limit'  => '100.00',
    'x-portal-access'          => 'cdr',
    'x-portal-status'          => 'active',
);
my $host = 'portal.yourwebsite.com';

is_deeply($t->portal_headers($t->get($host, '/')), \%all, 'the seven headers');

my $res = $t->get($host, '/own/');
is_deeply($t->portal_headers($res), \%all,
    'a location with its own proxy_set_header still sends them');
is($t->seen($res)->{'x-own'}, 'yes', 'next to its own header');

is_deeply($t->portal_headers($t->get($host, '/replaced/', 'X-Portal-Brand: Evil')),
    { %all, 'x-portal-brand' => 'edge: Your Website' },
    'a proxy_set_header of the same name replaces one (and the client\'s is still dropped)');

$res = $t->get($host, '/variables/', 'X-Portal-Brand: Evil');
is_deeply($t->portal_headers($res), {}, 'portal_headers off: none, not even the client\'s');
is($t->seen($res)->{'x-tenant'}, 'Your Website (100.00)', 'the variables still work there');

for my $path ('/redirected/', '/tried/') {
    is_deeply($t->portal_headers($t->get($host, $path)), \%all,
        "an internal redirect ($path to a named location): each header once");
}

is($t->get($host, '/auth/')->{status}, 200,
    'auth_request: the subrequest carries them (its backend says 204)');
is($t->get($host, '/auth-without/')->{status}, 403,
    'auth_request with portal_headers off: its backend sees no context and says 403');
is_deeply($t->portal_headers($t->get($host, '/auth/')), \%all, 'and the request itself too');

$res = $t->get($host, '/scgi/', 'X-Portal-Brand: Evil', 'X-Keep: yes');
is($res->{status}, 200, 'scgi_pass answers');
my %cgi = $res->{body} =~ /^(HTTP_X_[A-Z_]+)=(.*)$/mg;
is_deeply(\%cgi, {
    HTTP_X_PORTAL_HOST => 'portal.yourwebsite.com', HTTP_X_PORTAL_BRAND => 'Your Website',
    HTTP_X_PORTAL_CUSTOMER_SIGNUP => '1', HTTP_X_PORTAL_CARRIER_SIGNUP => '0',
    HTTP_X_PORTAL_CUSTOMER_LIMIT => '100.00', HTTP_X_PORTAL_ACCESS => 'cdr',
    HTTP_X_PORTAL_STATUS => 'active', HTTP_X_KEEP => 'yes',
}, 'an SCGI backend gets them as HTTP_X_PORTAL_* (and the client\'s own is dropped)');

# the request's header list: room for the seven after 25 headers; none left after 40 of which
# the module dropped the client's own X-Portal-* (the list is rebuilt to the exact size)
my @many = map { "X-Filler-$_: $_" } 1 .. 25;
$res = $t->get($host, '/', @many);
is_deeply($t->portal_headers($res), \%all, 'after 25 headers: the seven, once each');
is(scalar(grep { /^x-filler-/ } keys %{ $t->seen($res) }), 25, 'and the 25');
@many = (map({ "X-Filler-$_: $_" } 1 .. 36), map { "X-Portal-Evil$_: 1" } 1 .. 4);
$res = $t->get($host, '/', @many);
is_deeply($t->portal_headers($res), \%all, 'after 40 headers, 4 of them spoofed: the seven');
is(scalar(grep { /^x-filler-/ } keys %{ $t->seen($res) }), 36, 'and the 36 others');

is_deeply($t->portal_headers($t->get($host, '/public/', 'X-Portal-Brand: Evil')), {},
    'portal off: none');
is_deeply($t->portal_headers($t->get('unknown.example', '/public/')), {},
    'portal off, unknown host: none');

is_deeply([$t->crash_lines], [], 'no crash in error.log');

done_testing;
