# nginx -t refuses every configuration mistake of the module with an [emerg] that names the
# configuration file and the line; the same configuration without the mistake passes.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use File::Path qw(make_path);
use Test::More;
use PortalTest;

my $t = PortalTest->new;
$t->ctl_ok('init');
my $tmp = $t->tmp;

my $server = <<'EOF2';
    server {
        listen 127.0.0.1:%%PORT%%;
        portal on;
        location / {
            return 204;
        }
        location /cdr/ {
            portal_require_access cdr balance;
            portal_require_signup customer;
            return 204;
        }
    }
EOF2

# Writes the configuration, runs nginx -t and checks that it fails with an [emerg] matching
# MESSAGE at the first line of the configuration that matches AT (or one of AT's patterns).
sub refused {
    my ($name, $http, $message, $at, %opt) = @_;
    my $file = $t->write_conf($http, %opt);
    my ($rc, $out) = $t->nginx_t;
    my $lines = join '|', map { $t->conf_line($_) } ref $at eq 'ARRAY' ? @$at : $at;
    isnt($rc, 0, "$name: nginx -t fails");
    like($out, qr/\[emerg\] .*$message.* in \Q$file\E:(?:$lines)$/m,
        "$name: [emerg] naming $file:$lines")
        or diag "configuration:\n" . PortalTest::slurp($file);
}

{
    $t->write_conf($server);
    my ($rc, $out) = $t->nginx_t;
    is($rc, 0, 'the valid configuration passes nginx -t') or diag $out;
    like($out, qr/test is successful/, 'nginx -t says so');
}

# portal_data
refused('portal_data: no such directory', $server,
    qr/portal data directory "\Q$tmp\E\/missing" cannot be opened/, qr/portal_data/,
    portal_data => "$tmp/missing");

make_path("$tmp/empty");
chown $t->worker_ids, "$tmp/empty";
refused('portal_data: a directory with no snapshot', $server,
    qr/portal data "\Q$tmp\E\/empty" has no snapshot/, qr/portal_data/,
    portal_data => "$tmp/empty");

PortalTest::spew("$tmp/a-file", "x\n");
refused('portal_data: a file, not a directory', $server, qr/is not a directory/,
    qr/portal_data/, portal_data => "$tmp/a-file");

refused('portal_data: twice', "    portal_data %%DATA%%;    # again\n$server",
    qr/"portal_data" directive is duplicate/, qr/# again/);

refused('"portal on" without portal_data', $server, qr/"portal on" needs "portal_data"/,
    qr/portal on;/, portal_data => undef);

SKIP: {
    skip 'needs root: the worker user differs from the file owner only then', 6 if $> != 0;

    # A copy of the data directory whose files the worker user ("nobody") cannot use.
    my $snap = $t->data . '/snapshot';
    make_path("$tmp/rootdata/snapshot");
    for my $f ('data.mdb', 'lock.mdb') {
        system('cp', '-p', "$snap/$f", "$tmp/rootdata/snapshot/$f") == 0 or die "cp $f";
    }
    chown $t->worker_ids, "$tmp/rootdata", "$tmp/rootdata/snapshot";
    chown 0, 0, "$tmp/rootdata/snapshot/data.mdb";
    chmod 0600, "$tmp/rootdata/snapshot/data.mdb";
    refused('snapshot data not readable by the worker user', $server,
        qr/(?=.*\bnobody\b).*"\Q$tmp\E\/rootdata\/snapshot\/data\.mdb"/,
        qr/portal_data/, portal_data => "$tmp/rootdata");

    chown $t->worker_ids, "$tmp/rootdata/snapshot/data.mdb";
    chmod 0640, "$tmp/rootdata/snapshot/data.mdb";
    chown 0, 0, "$tmp/rootdata/snapshot/lock.mdb";
    chmod 0644, "$tmp/rootdata/snapshot/lock.mdb";
    refused('snapshot lock file not writable by the worker user', $server,
        qr/(?=.*\bnobody\b).*"\Q$tmp\E\/rootdata\/snapshot\/lock\.mdb"/,
        qr/portal_data/, portal_data => "$tmp/rootdata");

    # the files are fine, but the worker user cannot enter the directory holding them
    chown $t->worker_ids, "$tmp/rootdata/snapshot/lock.mdb";
    chmod 0660, "$tmp/rootdata/snapshot/lock.mdb";
    chown 0, 0, "$tmp/rootdata";
    chmod 0700, "$tmp/rootdata";
    refused('data directory not searchable by the worker user', $server,
        qr/(?=.*\bnobody\b).*"\Q$tmp\E\/rootdata"/, qr/portal_data/,
        portal_data => "$tmp/rootdata");
}

# section names
for my $bad ('CDR', 'bad-name', 'a' x 33, 'café') {
    (my $http = $server) =~ s/portal_require_access cdr balance;/portal_require_access cdr $bad;/;
    refused("portal_require_access with \"$bad\"", $http, qr/invalid value "\Q$bad\E"/,
        qr/portal_require_access/);
}

# codes
for my $bad ('200', 'abc', '600', '399', '-1', '4O4') {
    refused("portal_unknown_host $bad (location)",
        $server =~ s/return 204;/portal_unknown_host $bad;\n            return 204;/r,
        qr/invalid value "\Q$bad\E"/, qr/portal_unknown_host/);
}
refused('portal_unknown_host abc (http)', "    portal_unknown_host abc;\n$server",
    qr/invalid value "abc"/, qr/portal_unknown_host/);

refused('portal_require_signup with "vendor"',
    $server =~ s/portal_require_signup customer;/portal_require_signup vendor;/r,
    qr/invalid value "vendor"/, qr/portal_require_signup/);

# gates where the portal is off: they would let everybody in
refused('portal_require_access without "portal on"', $server =~ s/portal on;/portal off;/r,
    qr/"portal_require_access" and "portal_require_signup" need "portal on"/,
    qr/portal_require_access/);    # the first gate of the location
refused('portal_require_signup without "portal on"',
    ($server =~ s/ {8}portal on;\n//r) =~ s/ *portal_require_access cdr balance;\n//r,
    qr/"portal_require_access" and "portal_require_signup" need "portal on"/,
    qr/portal_require_signup/);
refused('"portal off" in a location nested in a gated one',
    $server =~ s/(portal_require_signup customer;\n)/$1            location \/cdr\/free\/ {\n                portal off;\n            }\n/r,
    qr/"portal_require_access" and "portal_require_signup" need "portal on"/,
    qr/portal_require_access/);    # the gate it inherits

# contexts: nginx's own checks
refused('portal_data in a server block',
    $server =~ s/portal on;/portal on;\n        portal_data %%DATA%%;    # here/r,
    qr/"portal_data" directive is not allowed here/, qr/# here/);
refused('portal_require_access in a server block',
    $server =~ s/portal on;/portal on;\n        portal_require_access cdr;/r,
    qr/"portal_require_access" directive is not allowed here/, qr/^ {8}portal_require_access/);

done_testing;
