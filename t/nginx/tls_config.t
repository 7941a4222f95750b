# nginx -t refuses every mistake with portal_ssl, portal_ssl_unknown and portal_ssl_cache
# with an [emerg] that names the configuration file and the line; the same configuration
# without the mistake passes.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use PortalTest;

my $t = PortalTest->new;
$t->ctl_ok('init');
my $fallback = $t->make_cert('fallback.invalid', self_signed => 1);

my $server = <<"EOF2";
    server {
        listen 127.0.0.1:%%PORT%% ssl default_server;
        ssl_certificate $fallback->{cert};
        ssl_certificate_key $fallback->{key};
        portal_ssl on;
        portal_ssl_unknown reject;
        portal on;
        location / {
            return 204;
        }
    }
EOF2
my $cache = "    portal_ssl_cache 500;\n";

# Writes the configuration, runs nginx -t and checks that it fails with an [emerg] matching
# MESSAGE at the first line of the configuration that matches AT.
sub refused {
    my ($name, $http, $message, $at, %opt) = @_;
    my $file = $t->write_conf($http, %opt);
    my ($rc, $out) = $t->nginx_t;
    my $line = $t->conf_line($at);
    isnt($rc, 0, "$name: nginx -t fails");
    like($out, qr/\[emerg\] .*$message.* in \Q$file\E:$line$/m, "$name: [emerg] naming $file:$line")
        or diag "configuration:\n" . PortalTest::slurp($file);
}

{
    $t->write_conf($cache . $server);
    my ($rc, $out) = $t->nginx_t;
    is($rc, 0, 'the valid configuration passes nginx -t') or diag $out;
    like($out, qr/test is successful/, 'nginx -t says so');
}

# what portal_ssl needs
refused('portal_ssl on, no ssl listener, no ssl_certificate',
    ($server =~ s/ ssl default_server;/;/r) =~ s/ +ssl_certificate.*\n//gr,
    qr/"portal_ssl on" needs an ssl listener and an "ssl_certificate" \(the fallback\)/,
    qr/portal_ssl on;/);
refused('portal_ssl on, an ssl listener, no ssl_certificate',
    $server =~ s/ +ssl_certificate.*\n//gr,
    qr/"portal_ssl on" needs an ssl listener and an "ssl_certificate" \(the fallback\)/,
    qr/portal_ssl on;/);
refused('portal_ssl on, ssl_certificate, but no ssl listener',
    $server =~ s/ ssl default_server;/;/r,
    qr/"portal_ssl on" needs an ssl listener/, qr/portal_ssl on;/);
refused('portal_ssl on without portal_data', $server =~ s/ +portal on;\n//r,
    qr/"portal_ssl on" needs "portal_data" in the http block/, qr/portal_ssl on;/,
    portal_data => undef);
refused('portal_ssl on and ssl_certificate with variables',
    $server =~ s/ssl_certificate \S+;/ssl_certificate %%TMP%%\/\$ssl_server_name.crt;/r
        =~ s/ssl_certificate_key \S+;/ssl_certificate_key %%TMP%%\/\$ssl_server_name.key;/r,
    qr/"portal_ssl on" and variables in "ssl_certificate" both pick certificates/,
    qr/portal_ssl on;/);

# values
refused('portal_ssl maybe', $server =~ s/portal_ssl on;/portal_ssl maybe;/r,
    qr/invalid value "maybe" in "portal_ssl" directive, it must be "on" or "off"/,
    qr/portal_ssl maybe;/);
refused('portal_ssl_unknown maybe',
    $server =~ s/portal_ssl_unknown reject;/portal_ssl_unknown maybe;/r,
    qr/invalid value "maybe"/, qr/portal_ssl_unknown/);
refused('portal_ssl_unknown with two values',
    $server =~ s/portal_ssl_unknown reject;/portal_ssl_unknown reject fallback;/r,
    qr/invalid number of arguments in "portal_ssl_unknown" directive/, qr/portal_ssl_unknown/);
for my $bad ('abc', '-1', '10k') {
    refused("portal_ssl_cache $bad", "    portal_ssl_cache $bad;\n$server",
        qr/"portal_ssl_cache" directive invalid number/, qr/portal_ssl_cache/);
}
refused('portal_ssl_cache 0', "    portal_ssl_cache 0;\n$server",
    qr/value must be between 1 and/, qr/portal_ssl_cache/);
refused('portal_cache -1', "    portal_cache -1;\n$server",
    qr/"portal_cache" directive invalid number/, qr/portal_cache/);

# the state store, where the workers read certificates and keys
SKIP: {
    skip 'needs root: the worker user differs from the file owner only then', 2 if $> != 0;
    my $state = $t->data . '/state';
    my @st = stat "$state/data.mdb";
    chown 0, 0, "$state/data.mdb" or die "chown: $!";
    $t->write_conf($server);
    my ($rc, $out) = $t->nginx_t;
    chown $st[4], $st[5], "$state/data.mdb";
    isnt($rc, 0, 'state/data.mdb not readable by the worker user: nginx -t fails');
    like($out, qr/\[emerg\] .*\bnobody\b.*\Q$state\E.* in \S+:\d+$/m,
        'an [emerg] names the worker user, the state store and the portal_ssl line');
}

# contexts
refused('portal_ssl in the http block', "    portal_ssl on;\n$server",
    qr/"portal_ssl" directive is not allowed here/, qr/^ {4}portal_ssl on;/);
refused('portal_ssl in a location', $server =~ s/return 204;/portal_ssl on;\n            return 204;/r,
    qr/"portal_ssl" directive is not allowed here/, qr/^ {12}portal_ssl on;/);
refused('portal_ssl_unknown in the http block', "    portal_ssl_unknown reject;\n$server",
    qr/"portal_ssl_unknown" directive is not allowed here/, qr/portal_ssl_unknown/);
refused('portal_ssl_cache in a server block',
    $server =~ s/portal_ssl on;/portal_ssl on;\n        portal_ssl_cache 5;/r,
    qr/"portal_ssl_cache" directive is not allowed here/, qr/portal_ssl_cache/);
refused('portal_ssl twice', $server =~ s/portal_ssl on;/portal_ssl on;\n        portal_ssl off;/r,
    qr/"portal_ssl" directive is duplicate/, qr/portal_ssl off;/);

done_testing;
