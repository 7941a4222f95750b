# The Debian package, installed on this machine: its files, its dependency on the nginx ABI,
# a request through Debian's packaged nginx with the module loaded by the package's
# modules-enabled link, then a remove that keeps the tenants' data.
#
# Needs root, dpkg and apt-get. It installs and removes the package libnginx-mod-http-portal:
# do not run it where that package is in use. It builds the package with scripts/package, or
# takes PORTAL_DEB (a .deb). The test's nginx is /usr/sbin/nginx with a configuration of its
# own on 127.0.0.1; the test never starts or stops the system's nginx (installing and removing
# the package ask a running one to reload, through nginx's trigger, as Debian's modules do).
# A copy of the package already here (installed, or removed with its configuration kept) is
# purged first, so that the test starts from a fresh install, unless /var/lib/nginx-portal
# holds portal domains or certificates (other than the test's own): then the test is skipped.
# At the end, the package is purged too when the data directory holds nothing of anyone's
# (else only removed): the machine is left as it was.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use File::Copy qw(copy);
use File::Temp qw(tempdir);
use JSON::PP qw(decode_json);
use POSIX qw(WNOHANG);
use Test::More;
use Time::HiRes qw(sleep time);

plan skip_all => 'installs a package: run as root' if $> != 0;
plan skip_all => 'needs dpkg and apt-get' unless -x '/usr/bin/dpkg' && -x '/usr/bin/apt-get';

use PortalTest;

my $PKG      = 'libnginx-mod-http-portal';
my $DATA     = '/var/lib/nginx-portal';
my $ENABLED  = '/etc/nginx/modules-enabled/50-mod-http-portal.conf';
my $MODULE   = '/usr/lib/nginx/modules/ngx_http_portal_module.so';
my $LOADFILE = '/usr/share/nginx/modules-available/mod-http-portal.conf';
my $CTL      = '/usr/bin/portalctl';
my $HOST     = 'pkg-test.portal.example';

my $work = tempdir('portal-pkg-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0755, $work;    # apt's _apt user reads the .deb from here

# Runs a command, its output into a log: (exit status, output).
my $n = 0;
sub sh {
    my (@cmd) = @_;
    my $log = "$work/cmd" . ++$n . ".log";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $log or POSIX::_exit(126);
        open STDERR, '>&', \*STDOUT;
        $ENV{DEBIAN_FRONTEND} = 'noninteractive';
        { no warnings 'exec'; exec { $cmd[0] } @cmd; }
        POSIX::_exit(127);
    }
    waitpid $pid, 0;
    my $rc = $? & 127 ? 128 + ($? & 127) : $? >> 8;
    return ($rc, PortalTest::slurp($log) // '');
}

sub sh_ok {
    my ($name, @cmd) = @_;
    my ($rc, $out) = sh(@cmd);
    ok($rc == 0, $name) or diag("@cmd: exit $rc\n$out");
    return $out;
}

sub pkg_status {
    my ($rc, $out) = sh('dpkg-query', '-W', '-f=${Status}', $PKG);
    return $rc == 0 ? $out : '';
}

# apt-get installs (it resolves the dependencies); dpkg removes and purges, as apt-get would
# (nothing depends on the package), in a second instead of apt's ten (it reloads its cache).
my @apt = ('apt-get', '-y', '-q', '-o', 'DPkg::Lock::Timeout=120');
my @dpkg = ('dpkg', '--force-confdef', '--force-confold');

# ---- the package ---------------------------------------------------------------------------

my $deb = $ENV{PORTAL_DEB};
unless ($deb) {
    my ($rc, $out) = sh("$PortalTest::ROOT/scripts/package");
    ($deb) = $out =~ m{^(/\S+\.deb)\s*\z}m;
    BAIL_OUT("scripts/package failed (exit $rc):\n$out") if $rc != 0 || !$deb;
}
copy($deb, "$work/pkg.deb") or BAIL_OUT("copy $deb: $!");
chmod 0644, "$work/pkg.deb";
my ($rc, $out) = sh('dpkg-deb', '-x', "$work/pkg.deb", "$work/root");
BAIL_OUT("dpkg-deb -x $deb: exit $rc\n$out") if $rc != 0;

# Whether DATA holds nothing but what this test makes (no data directory, or a store with no
# portal domain but the test's and no certificate), asked with the package's own portalctl.
sub data_is_ours {
    return 1 unless -e $DATA;
    my @ctl = ("$work/root$CTL", '--data', $DATA, '--json');
    my ($rc1, $domains) = sh(@ctl, 'domain', 'list');
    my ($rc2, $certs) = sh(@ctl, 'cert', 'list');
    return 0 if $rc1 != 0 || $rc2 != 0;
    my $d = eval { decode_json($domains) } // [{}];
    my $c = eval { decode_json($certs) } // [{}];
    return !(grep { ($_->{host} // '') ne $HOST } @$d) && !@$c;
}

# A copy from before (such as a run of this test that stopped half-way) is purged first.
my $before = pkg_status();
plan skip_all => "$PKG is in use here: $DATA holds portal domains or certificates"
    if $before =~ /\S/ && !data_is_ours();

ok(-f $deb, "the package: $deb");
my $info = sh_ok('dpkg-deb --info', 'dpkg-deb', '--info', "$work/pkg.deb");
my ($depends) = $info =~ /^ Depends: (.*)$/m;
my ($abi) = `dpkg-query -W -f='\${Provides}' nginx` =~ /(nginx-abi-[^\s,]+)/;
ok($abi, "the installed nginx provides an ABI: " . ($abi // 'none'));
like($depends // '', qr/(?:^|, )\Q$abi\E(?:,|$)/, "Depends names $abi")
    or diag($info);
like($info, qr/^ Package: \Q$PKG\E$/m, "package name $PKG");

# ---- install -------------------------------------------------------------------------------

sh_ok("the copy already here ($before) purged first", @dpkg, '--purge', $PKG) if $before =~ /\S/;
my $data_before = -e $DATA;
my $installed = 1;
END {
    my $status = $?;
    if ($installed && pkg_status() =~ /installed/) {    # a test that stopped half-way
        sh(@dpkg, '--remove', $PKG);
    }
    $? = $status;
}
sh_ok('apt-get install ./the.deb', @apt, 'install', "$work/pkg.deb");
like(pkg_status(), qr/install ok installed/, 'dpkg: installed');

my $status = sh_ok('dpkg -s', 'dpkg', '-s', $PKG);
like(($status =~ /^Depends: (.*)$/m)[0] // '', qr/(?:^|, )\Q$abi\E(?:,|$)/,
    "dpkg -s: Depends names $abi");

ok(-f $MODULE, "module in nginx's modules directory");
is(PortalTest::slurp($LOADFILE), "load_module modules/ngx_http_portal_module.so;\n",
    "load file in $LOADFILE");
is(readlink($ENABLED), $LOADFILE, "enabled: $ENABLED -> the load file");
ok(-f '/etc/nginx/modules-available/mod-http-portal.conf'
    && readlink('/etc/nginx/modules-available/mod-http-portal.conf') eq $LOADFILE,
    '/etc/nginx/modules-available/mod-http-portal.conf: the same load file');
ok(-f '/etc/nginx/portal_params', '/etc/nginx/portal_params');
like(PortalTest::slurp("/var/lib/dpkg/info/$PKG.conffiles") // '',
    qr{^/etc/nginx/portal_params$}m, 'portal_params is a conffile');
ok(-x $CTL, "portalctl in /usr/bin");
ok(-f "/usr/share/doc/$PKG/README.md", "docs in /usr/share/doc/$PKG");

my @st = stat $DATA;
my $www = getpwnam('www-data');
ok(@st && -d _, "data directory $DATA");
is($st[4], $www, 'owned by www-data') if @st;
is(sprintf('%04o', $st[2] & 07777), '0755', 'mode 0755') if @st;
ok(-f "$DATA/snapshot/data.mdb" && -f "$DATA/state/data.mdb", 'with a store');
is((stat "$DATA/state/data.mdb")[4], $www, 'the store owned by www-data');

like(PortalTest::slurp('/etc/nginx/nginx.conf') // '',
    qr{^\s*include\s+/etc/nginx/modules-enabled/\*\.conf;}m,
    "Debian's nginx.conf loads modules-enabled/*.conf");
sh_ok("nginx -t: Debian's own configuration, with the module enabled", '/usr/sbin/nginx', '-t');

# ---- a request through the packaged nginx --------------------------------------------------

local $ENV{PORTAL_MODULE} = $MODULE;
local $ENV{PORTALCTL} = $CTL;
my $t = PortalTest->new;
my $tmp = $t->tmp;
my $upstream = $t->start_upstream;

sh($CTL, '--data', $DATA, 'domain', 'rm', $HOST);    # from a run that stopped half-way
sh_ok('portalctl domain add (the installed portalctl, the packaged data directory)',
    $CTL, '--data', $DATA, 'domain', 'add', $HOST, '--brand', 'Packaged Brand',
    '--access', 'cdr');
is((stat "$DATA/snapshot/data.mdb")[4], $www, 'the store still owned by www-data');

# The main context as in /etc/nginx/nginx.conf (user, modules-enabled), files in TMP.
my $port = $t->port;
my $conf = "$tmp/nginx.conf";
PortalTest::spew($conf, <<"EOF");
user www-data;
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/error.log info;
include /etc/nginx/modules-enabled/*.conf;

events {
    worker_connections 64;
}

http {
    access_log $tmp/access.log;
    client_body_temp_path $tmp/client_body_temp;
    proxy_temp_path $tmp/proxy_temp;
    fastcgi_temp_path $tmp/fastcgi_temp;
    uwsgi_temp_path $tmp/uwsgi_temp;
    scgi_temp_path $tmp/scgi_temp;

    portal_data $DATA;

    server {
        listen 127.0.0.1:$port default_server;
        portal on;
        location / {
            include /etc/nginx/portal_params;
            proxy_pass http://$upstream;
        }
        location = /brand {
            return 200 "\$portal_brand\\n";
        }
    }
}
EOF

my @nginx = ('/usr/sbin/nginx', '-c', $conf, '-e', "$tmp/error.log");
sh_ok('nginx -t on the test configuration', @nginx, '-t');

my $master = fork // die "fork: $!";
if ($master == 0) {
    open STDIN, '<', '/dev/null';
    open STDOUT, '>>', "$tmp/nginx.out";
    open STDERR, '>&', \*STDOUT;
    { no warnings 'exec'; exec @nginx, '-g', 'daemon off;'; }
    POSIX::_exit(127);
}
END { stop_nginx() }
sub stop_nginx {
    return unless $master;
    kill 'TERM', $master;
    my $deadline = time + 10;
    while (time < $deadline && waitpid($master, WNOHANG) != $master) { sleep 0.02 }
    if (kill 0, $master) { kill 'KILL', $master; waitpid $master, 0 }
    undef $master;
}

my $up = 0;
for (1 .. 500) {
    last if waitpid($master, WNOHANG) == $master;
    $up = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp')
        and last;
    sleep 0.02;
}
ok($up, 'the packaged nginx runs') or diag(PortalTest::slurp("$tmp/nginx.out") // '',
    PortalTest::slurp("$tmp/error.log") // '');

SKIP: {
    skip 'nginx did not start', 4 unless $up;
    my $seen = $t->seen($t->get($HOST, '/dashboard'));
    is($seen->{'x-portal-brand'}, 'Packaged Brand', 'X-Portal-Brand reached the upstream');
    is($seen->{'x-portal-access'}, 'cdr', 'X-Portal-Access too');
    is($t->get($HOST, '/brand')->{body}, "Packaged Brand\n", '$portal_brand');
    is($t->get('not-a-tenant.example', '/')->{status}, 421, 'unknown host: 421');
}
stop_nginx();
my @crash = grep { /exited on signal|core dumped|\[emerg\]|\[alert\]/ }
    split /\n/, PortalTest::slurp("$tmp/error.log") // '';
is_deeply(\@crash, [], 'no crash, emerg or alert in error.log');

sh_ok('portalctl domain rm', $CTL, '--data', $DATA, 'domain', 'rm', $HOST);

# ---- remove, keeping the data; purge when the test made the data directory -----------------

my $purge = !$data_before || data_is_ours();

sh_ok('dpkg --remove', @dpkg, '--remove', $PKG);
like(pkg_status(), qr/deinstall ok config-files/, 'dpkg: removed, its conffile kept');
ok(!-e $ENABLED && !-l $ENABLED, 'the modules-enabled link is gone');
ok(-l "$ENABLED.removed", 'as with Debian\'s modules: .removed left, to re-enable on reinstall');
ok(!-e $MODULE, 'module gone');
ok(!-e $CTL, 'portalctl gone');
ok(-f "$DATA/snapshot/data.mdb" && -f "$DATA/state/data.mdb", "data kept: $DATA");
is((stat $DATA)[4], $www, 'still owned by www-data');
sh_ok("nginx -t: Debian's own configuration, the module no longer enabled",
    '/usr/sbin/nginx', '-t');

if ($purge) {
    sh_ok('dpkg --purge', @dpkg, '--purge', $PKG);
    is(pkg_status(), '', 'dpkg: purged');
    ok(!-e $DATA, "purge deletes $DATA");
    ok(!-l "$ENABLED.removed", 'and the .removed link');
    ok(!-e '/etc/nginx/portal_params', 'and /etc/nginx/portal_params');
} else {
    note("$DATA was there before the test and holds data of its own: not purged");
}

done_testing;
