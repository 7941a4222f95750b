package PortalTest;

# Harness for the nginx tests: Debian's nginx with ngx_http_portal_module loaded, a portal
# data directory managed with portalctl, a real upstream that echoes what it received, and a
# raw HTTP client. Everything listens on 127.0.0.1, lives in one temporary directory per test
# file, stops by itself, and only processes started here are ever signalled.
#
# Environment: PORTAL_MODULE (default build/ngx_http_portal_module.so), PORTALCTL (default
# build/portalctl), NGINX (default /usr/sbin/nginx); relative paths are from the repo root.
#
# Checked runs (scripts/test --asan, --valgrind), for every nginx a test runs (nginx -t too):
#   PORTAL_NGINX_PRELOAD=LIBS    nginx runs with LD_PRELOAD=LIBS (the ASan runtime, for a
#                                module built with PORTAL_SANITIZE=ON); ASan and UBSan write
#                                their reports to TMP/sanitizer/ (leak detection off: nginx
#                                leaves its memory to exit by design).
#   PORTAL_NGINX_VALGRIND=1      nginx (master and workers: valgrind follows fork) runs under
#                                valgrind memcheck with t/valgrind.supp; logs in TMP/valgrind/;
#                                PORTAL_VALGRIND_OPTS adds options (--track-origins=yes...).
#   PORTAL_CHECK_REPORTS=DIR     where a copy of every report goes (named after the test).
# A report (a sanitizer log, a valgrind error) fails the test file: its exit status, at END.
# gcc's UBSan runtime, next to ASan's, ignores log_path and prints to stderr: so in the
# sanitizer run, what a command run here printed, nginx's error.log (its stderr) and every
# other file in TMP are searched for sanitizer reports too.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use IO::Select;
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);

our $ROOT = abs_path(dirname(__FILE__) . '/../..');

# Anything a test starts is gone after this many seconds, whatever happens to the test.
use constant LIFETIME => 300;

# nginx under valgrind is 10 to 50 times slower: the time limits of starting, stopping and
# the clients here are multiplied by SLOW.
use constant VALGRIND => !!$ENV{PORTAL_NGINX_VALGRIND};
use constant SLOW => VALGRIND ? 12 : 1;

my @instances;

sub _path {
    my ($value, $default) = @_;
    my $p = defined $value && length $value ? $value : $default;
    return $p =~ m{^/} ? $p : "$ROOT/$p";
}

sub new {
    my ($class) = @_;

    my $self = bless {
        owner     => $$,
        module    => _path($ENV{PORTAL_MODULE}, 'build/ngx_http_portal_module.so'),
        portalctl => _path($ENV{PORTALCTL}, 'build/portalctl'),
        nginx     => _path($ENV{NGINX}, '/usr/sbin/nginx'),
        upstream_pids => [],
    }, $class;

    -f $self->{module}
        or die "no module at $self->{module}: build it, or set PORTAL_MODULE\n";
    -x $self->{portalctl}
        or die "no portalctl at $self->{portalctl}: build it, or set PORTALCTL\n";
    -x $self->{nginx} or die "no nginx at $self->{nginx}: set NGINX\n";

    my $tmp = tempdir('portal-t-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    chmod 0755, $tmp or die "chmod $tmp: $!";    # the worker user walks through it
    $self->{tmp} = $tmp;
    for my $dir (grep { defined } $self->_report_dir) {
        mkdir $dir or die "mkdir $dir: $!";
        chmod 01777, $dir or die "chmod $dir: $!";    # workers write there too
    }
    for (my $dir = dirname($tmp); $> == 0 && $dir ne "/"; $dir = dirname($dir)) {
        (stat $dir)[2] & 01 or die "$dir is closed to nginx's worker user: set TMPDIR to "
            . "a directory that everyone may enter (such as /tmp)\n";
    }

    # Workers of an nginx started by root run as "nobody": the data directory is theirs, and
    # portalctl makes the files it creates owned like the data directory.
    $self->{data} = "$tmp/data";
    mkdir $self->{data} or die "mkdir $self->{data}: $!";
    if ($> == 0) {
        my ($uid, $gid) = $self->worker_ids;
        chown $uid, $gid, $self->{data} or die "chown $self->{data}: $!";
    }

    $self->{port} = free_port();
    $self->{port2} = free_port();
    $self->_watchdog;

    push @instances, $self;
    return $self;
}

sub tmp  { $_[0]{tmp} }
sub data { $_[0]{data} }
sub port { $_[0]{port} }
sub port2 { $_[0]{port2} }
sub conf_file { $_[0]{conf_file} }
sub master_pid { $_[0]{master} }
sub error_log_file { "$_[0]{tmp}/error.log" }

# uid and gid of nginx's default worker user when started by root (Debian: nobody:nogroup).
sub worker_ids {
    my (undef, undef, $uid, $gid) = getpwnam('nobody');
    my $group = getgrnam('nogroup');
    return ($uid, defined $group ? $group : $gid);
}

# A free port below the kernel's ephemeral range (32768 and up), so that no outgoing
# connection of another process takes it between this check and nginx's bind.
sub free_port {
    for (1 .. 200) {
        my $port = 20000 + int(rand(12000));
        my $s = IO::Socket::INET->new(
            LocalAddr => '127.0.0.1', LocalPort => $port, Proto => 'tcp', Listen => 1,
            ReuseAddr => 1) or next;
        close $s;
        return $port;
    }
    die "no free port: $!";
}


# ---- processes ----------------------------------------------------------------------------

# Runs a command; returns (exit status, stdout, stderr). A hash first in CMD: environment
# variables to add.
sub run {
    my ($self, @cmd) = @_;
    my %env = ref $cmd[0] eq 'HASH' ? %{ shift @cmd } : ();
    my ($out, $err) = ("$self->{tmp}/run.out", "$self->{tmp}/run.err");
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        $ENV{$_} = $env{$_} for keys %env;
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $out or POSIX::_exit(126);
        open STDERR, '>', $err or POSIX::_exit(126);
        { no warnings 'exec'; exec { $cmd[0] } @cmd; }
        POSIX::_exit(127);
    }
    waitpid $pid, 0;
    my $rc = $? & 127 ? 128 + ($? & 127) : $? >> 8;
    $self->_keep_sanitizer_output($_, $cmd[0]) for $out, $err;
    return ($rc, slurp($out), slurp($err));
}

# portalctl --data DATA ARGS...: (exit status, stdout, stderr).
sub ctl {
    my ($self, @args) = @_;
    return $self->run($self->{portalctl}, '--data', $self->{data}, @args);
}

# The same, for a step a test depends on: dies with portalctl's message when it fails.
sub ctl_ok {
    my ($self, @args) = @_;
    my ($rc, $out, $err) = $self->ctl(@args);
    die "portalctl @args: exit $rc: $err$out" if $rc != 0;
    return $out;
}

# A second process that stops what this test started if the test itself is killed.
sub _watchdog {
    my ($self) = @_;
    my $parent = $$;
    my $tmp = $self->{tmp};
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        $SIG{TERM} = sub { POSIX::_exit(0) };
        my $deadline = time + LIFETIME;
        while (time < $deadline && kill(0, $parent) && getppid() == $parent) {
            sleep 0.5;
        }
        # the test is gone without its END block (or its lifetime is over): stop its nginx
        my $master = slurp("$tmp/nginx.pid");
        if ($master && $master =~ /^(\d+)/ && _is_nginx($1)) {
            kill 'TERM', $1;
        }
        POSIX::_exit(0);
    }
    $self->{watchdog} = $pid;
}

sub _is_nginx {
    my ($pid) = @_;
    my $cmd = slurp("/proc/$pid/cmdline") // '';
    return $cmd =~ /nginx/;
}


# ---- upstream -----------------------------------------------------------------------------

# Starts the echo upstream: every request gets 200 and a body whose first line is the
# request line, then one "name: value" line per request header (names lower-cased).
# Returns "127.0.0.1:PORT".
sub start_upstream {
    my ($self, %opt) = @_;
    my $listen = IO::Socket::INET->new(
        LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'tcp', Listen => 128,
        ReuseAddr => 1) or die "upstream listen: $!";

    for (1 .. ($opt{processes} // 4)) {
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            _echo_server($listen);
            POSIX::_exit(0);
        }
        push @{ $self->{upstream_pids} }, $pid;
    }

    $self->{upstream} = '127.0.0.1:' . $listen->sockport;
    close $listen;
    return $self->{upstream};
}

sub upstream { $_[0]{upstream} // die "start_upstream first\n" }

sub _echo_server {
    my ($listen) = @_;
    $SIG{ALRM} = $SIG{TERM} = sub { POSIX::_exit(0) };
    alarm LIFETIME;

    while (1) {
        my $c = $listen->accept or next;
        my $buf = '';
        my $sel = IO::Select->new($c);
        while (index($buf, "\r\n\r\n") < 0) {
            last unless $sel->can_read(10);
            last unless sysread($c, $buf, 16384, length $buf);
        }
        my ($head) = split /\r\n\r\n/, $buf, 2;
        my @lines = split /\r\n/, $head // '';
        my $body = (shift(@lines) // '') . "\n";
        for (@lines) {
            my ($name, $value) = /^([^:]*):[ \t]*(.*?)[ \t]*$/s or next;
            $body .= lc($name) . ": $value\n";
        }
        my $res = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
            . "Content-Length: " . length($body) . "\r\nConnection: close\r\n\r\n$body";
        while (length $res) {
            my $n = syswrite($c, $res) or last;
            substr($res, 0, $n) = '';
        }
        close $c;
    }
}


# ---- nginx --------------------------------------------------------------------------------

# Writes the configuration: the main context, the events block and an http block holding
# portal_data and portal_params, then HTTP (the servers). Placeholders anywhere in HTTP or
# MAIN: %%PORT%%, %%PORT2%% (a second server), %%UPSTREAM%%, %%DATA%%, %%TMP%%, %%ROOT%%.
# Options: main => extra main-context lines; workers => N (1); log_level => info;
# portal_data => a directory, or undef for no portal_data line; params => 0 to leave out
# portal_params; file => where to write (TMP/nginx.conf).
sub write_conf {
    my ($self, $http, %opt) = @_;
    my $tmp = $self->{tmp};

    my $data = exists $opt{portal_data} ? $opt{portal_data} : $self->{data};
    my $data_line = defined $data ? "portal_data $data;" : '';
    my $params = ($opt{params} // 1) ? "include $ROOT/conf/portal_params;" : '';
    my $workers = $opt{workers} // 1;
    my $level = $opt{log_level} // 'info';
    my $main = $opt{main} // '';

    my $conf = <<"EOF";
load_module $self->{module};

daemon off;
master_process on;
worker_processes $workers;
pid $tmp/nginx.pid;
error_log $tmp/error.log $level;
$main

events {
    worker_connections 512;
}

http {
    access_log $tmp/access.log;
    client_body_temp_path $tmp/client_body_temp;
    proxy_temp_path $tmp/proxy_temp;
    fastcgi_temp_path $tmp/fastcgi_temp;
    uwsgi_temp_path $tmp/uwsgi_temp;
    scgi_temp_path $tmp/scgi_temp;

    $data_line
    $params

$http
}
EOF

    my %sub = (
        PORT => $self->{port}, PORT2 => $self->{port2}, UPSTREAM => $self->{upstream} // '127.0.0.1:9',
        DATA => $self->{data}, TMP => $tmp, ROOT => $ROOT,
    );
    $conf =~ s/%%(\w+)%%/exists $sub{$1} ? $sub{$1} : die "unknown placeholder $1\n"/ge;

    my $file = $opt{file} // "$tmp/nginx.conf";
    open my $fh, '>', $file or die "$file: $!";
    print $fh $conf;
    close $fh;
    $self->{conf_file} = $file;
    $self->{workers} = $workers;
    return $file;
}

# Line number of the first line of the written configuration that matches RE.
sub conf_line {
    my ($self, $re) = @_;
    my @lines = split /\n/, slurp($self->{conf_file});
    for my $i (0 .. $#lines) {
        return $i + 1 if $lines[$i] =~ $re;
    }
    die "no line matching $re in $self->{conf_file}\n";
}

# nginx -t on the written configuration: (exit status, output).
sub nginx_t {
    my ($self) = @_;
    my ($rc, $out, $err) =
        $self->run($self->nginx_command('-t', '-p', "$self->{tmp}/", '-c', $self->{conf_file}));
    if (VALGRIND) {    # valgrind's own lines (when it does not write to its log) are not nginx's
        $_ = join '', grep { !/^==\d+==/ } split /^/m, $_ for $out, $err;
    }
    return ($rc, $out . $err);
}

# ({ environment }, command) that runs nginx ARGS: Debian's nginx, or the same under valgrind
# or with the sanitizer runtime preloaded (see the top of this file). A test that starts nginx
# itself execs this command with this environment added, so that checked runs check it too.
sub nginx_command {
    my ($self, @args) = @_;
    my $tmp = $self->{tmp};
    my %env;
    my @cmd = ($self->{nginx}, @args);
    if (my $preload = $ENV{PORTAL_NGINX_PRELOAD}) {
        my $dir = "$tmp/sanitizer";
        %env = (
            LD_PRELOAD => $preload,
            ASAN_OPTIONS => "detect_leaks=0:abort_on_error=1:log_path=$dir/asan",
            UBSAN_OPTIONS => "print_stacktrace=1:halt_on_error=1:log_path=$dir/ubsan",
        );
    }
    if (VALGRIND) {
        @cmd = ('valgrind', '--tool=memcheck', '--error-exitcode=99', '--leak-check=no',
            '--num-callers=40', "--suppressions=$ROOT/t/valgrind.supp",
            '--gen-suppressions=all', "--log-file=$tmp/valgrind/%p.log",
            split(' ', $ENV{PORTAL_VALGRIND_OPTS} // ''), @cmd);
    }
    return (\%env, @cmd);
}

# Starts nginx (master and workers) on the written configuration and waits until it answers.
sub start {
    my ($self) = @_;
    die "nginx already running\n" if $self->{master};
    my $tmp = $self->{tmp};
    unlink "$tmp/nginx.pid";

    my ($env, @cmd) = $self->nginx_command('-p', "$tmp/", '-c', $self->{conf_file});
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        $ENV{$_} = $env->{$_} for keys %$env;
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$tmp/nginx.out";
        open STDERR, '>&', \*STDOUT;
        { no warnings 'exec'; exec { $cmd[0] } @cmd; }
        POSIX::_exit(127);
    }
    $self->{master} = $pid;

    my $deadline = time + 10 * SLOW;
    while (time < $deadline) {
        if (waitpid($pid, WNOHANG) == $pid) {
            delete $self->{master};
            die "nginx exited at start ($?):\n" . (slurp("$tmp/nginx.out") // '')
                . $self->error_log_tail;
        }
        if ((slurp("$tmp/nginx.pid") // '') =~ /^$pid\b/
            && $self->worker_pids == $self->{workers}
            && IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $self->{port},
                                     Proto => 'tcp'))
        {
            return $pid;
        }
        sleep 0.02;
    }
    $self->stop;
    die "nginx did not start in " . 10 * SLOW . " s\n" . $self->error_log_tail;
}

# Stops the nginx this object started: TERM to its master, and waits for it.
sub stop {
    my ($self) = @_;
    my $pid = delete $self->{master} or return;
    kill 'TERM', $pid;
    my $deadline = time + 10 * SLOW;
    while (time < $deadline) {
        return 1 if waitpid($pid, WNOHANG) == $pid;
        sleep 0.02;
    }
    kill 'KILL', $pid;
    waitpid $pid, 0;
    return 0;
}

# PIDs of the running master's children (its workers), sorted.
sub worker_pids {
    my ($self) = @_;
    my $master = $self->{master} or return ();
    my @pids;
    opendir my $dh, '/proc' or die "/proc: $!";
    for my $pid (grep { /^\d+$/ } readdir $dh) {
        my $stat = slurp("/proc/$pid/stat") or next;
        my ($ppid) = $stat =~ /\)\s+\S+\s+(\d+)/ or next;
        push @pids, $pid if $ppid == $master;
    }
    @pids = sort { $a <=> $b } @pids;
    return @pids;
}

sub error_log { slurp($_[0]->error_log_file) // '' }

sub error_log_tail {
    my ($self) = @_;
    my @l = split /\n/, $self->error_log;
    @l = @l[-20 .. -1] if @l > 20;
    return join '', map { "  $_\n" } @l;
}

# Lines of error.log telling that a process died or that nginx reloaded.
sub crash_lines {
    my ($self) = @_;
    return grep { /exited on signal|core dumped|SIGHUP|reconfiguring|\[emerg\]/ }
        split /\n/, $self->error_log;
}


# ---- client -------------------------------------------------------------------------------

# Sends BYTES exactly as given on a new connection and reads the whole response. Returns
# { status, reason, headers => { lower-case name => value }, body, raw }; status is 0 when
# the connection closed without a response.
sub raw {
    my ($self, $bytes, %opt) = @_;
    my $s = IO::Socket::INET->new(
        PeerAddr => '127.0.0.1', PeerPort => $opt{port} // $self->{port}, Proto => 'tcp',
        Timeout => 5 * SLOW) or die "connect 127.0.0.1:$self->{port}: $!";
    while (length $bytes) {
        my $n = syswrite($s, $bytes);
        last unless $n;    # nginx may close early on a bad request: read what it said
        substr($bytes, 0, $n) = '';
    }

    my $buf = '';
    my $sel = IO::Select->new($s);
    my $deadline = time + ($opt{timeout} // 10 * SLOW);
    while (time < $deadline) {
        last if _complete($buf);
        last unless $sel->can_read($deadline - time);
        my $n = sysread($s, $buf, 65536, length $buf);
        last unless $n;
    }
    close $s;
    return parse_response($buf);
}

sub _complete {
    my ($buf) = @_;
    my $end = index($buf, "\r\n\r\n");
    return 0 if $end < 0;
    my $head = substr($buf, 0, $end);
    my $body = substr($buf, $end + 4);
    return length($body) >= $1 if $head =~ /^content-length:\s*(\d+)/im;
    return $body =~ /(?:^|\r\n)0\r\n\r\n$/ if $head =~ /^transfer-encoding:\s*chunked/im;
    return 0;    # until the connection closes
}

sub parse_response {
    my ($buf) = @_;
    my %r = (status => 0, reason => '', headers => {}, body => '', raw => $buf);
    my $end = index($buf, "\r\n\r\n");
    return \%r if $end < 0;
    my @lines = split /\r\n/, substr($buf, 0, $end);
    (my $status = shift @lines) =~ m{^HTTP/\d\.\d (\d{3}) ?(.*)} or return \%r;
    @r{qw(status reason)} = ($1, $2);
    for (@lines) {
        my ($name, $value) = /^([^:]+):\s*(.*)$/ or next;
        $r{headers}{ lc $name } = $value;
    }
    my $body = substr($buf, $end + 4);
    if (($r{headers}{'transfer-encoding'} // '') =~ /chunked/i) {
        my $plain = '';
        while ($body =~ s/^([0-9a-fA-F]+)\r\n//) {
            my $len = hex $1;
            last if $len == 0;
            $plain .= substr($body, 0, $len, '');
            $body =~ s/^\r\n//;
        }
        $body = $plain;
    }
    $r{body} = $body;
    return \%r;
}

# GET PATH with Host: HOST and extra header lines ("Name: value"), Connection: close.
sub get {
    my ($self, $host, $path, @headers) = @_;
    return $self->get_port($self->{port}, $host, $path, @headers);
}

# The same, to another port of this nginx.
sub get_port {
    my ($self, $port, $host, $path, @headers) = @_;
    my $req = "GET " . ($path // '/') . " HTTP/1.1\r\nHost: $host\r\nConnection: close\r\n"
        . join('', map { "$_\r\n" } @headers) . "\r\n";
    return $self->raw($req, port => $port);
}

# What the echo upstream received, from a response it sent: { ':request' => request line,
# lower-case header name => value } (a repeated header's values joined with "\n"). A response
# that does not come from the upstream gives { ':status' => its status }, so that a
# comparison fails and shows why.
sub seen {
    my ($self, $res) = @_;
    return { ':status' => $res->{status} } unless from_upstream($res);
    my @lines = split /\n/, $res->{body};
    my %h = (':request' => shift @lines);
    for (@lines) {
        my ($name, $value) = /^([^:]*): (.*)$/ or next;
        $h{$name} = exists $h{$name} ? "$h{$name}\n$value" : $value;
    }
    return \%h;
}

sub from_upstream {
    my ($res) = @_;
    return $res->{status} == 200 && $res->{body} =~ /^[A-Z]+ \S+ HTTP\/1\.\d\n/;
}

# Only the x-portal-* headers the upstream received ({} for none; see seen for a response
# that does not come from the upstream).
sub portal_headers {
    my ($self, $res) = @_;
    my $seen = $self->seen($res);
    return $seen unless exists $seen->{':request'};
    return { map { $_ => $seen->{$_} } grep { /^x-portal-/ } keys %$seen };
}


# ---- TLS ----------------------------------------------------------------------------------

# A test PKI in TMP/pki made with the openssl CLI: a root CA, an intermediate CA that signs
# the leaf certificates, and leaf certificates with their keys. A test knows the serial of
# each certificate it made, so that the one a handshake presents can be told apart.

sub pki_dir {
    my ($self) = @_;
    my $dir = "$self->{tmp}/pki";
    unless (-d $dir) {
        mkdir $dir or die "mkdir $dir: $!";
        spew("$dir/openssl.cnf", <<'EOF');
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
[ v3_root ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ v3_intermediate ]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ v3_self ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
EOF
    }
    return $dir;
}

# The openssl CLI, for a step a test depends on: dies with its message when it fails.
sub openssl_ok {
    my ($self, @args) = @_;
    my ($rc, $out, $err) = $self->run('openssl', @args);
    die "openssl @args: exit $rc: $err$out" if $rc != 0;
    return $out;
}

# The test CA, made on first use: { root => PEM file of the root (what a client trusts),
# intermediate => PEM file of the intermediate CA, which signs every leaf }.
sub test_ca {
    my ($self) = @_;
    return $self->{test_ca} if $self->{test_ca};
    my $dir = $self->pki_dir;
    my $cnf = "$dir/openssl.cnf";
    $self->openssl_ok(qw(genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out),
        "$dir/root.key");
    $self->openssl_ok(qw(req -x509 -new -days 3 -sha256 -subj), '/CN=Portal Test Root CA',
        '-config', $cnf, '-extensions', 'v3_root', '-key', "$dir/root.key",
        '-set_serial', '0x7E570001', '-out', "$dir/root.crt");
    $self->openssl_ok(qw(genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out),
        "$dir/intermediate.key");
    $self->openssl_ok(qw(req -new -subj), '/CN=Portal Test Intermediate CA', '-config', $cnf,
        '-key', "$dir/intermediate.key", '-out', "$dir/intermediate.csr");
    $self->openssl_ok(qw(x509 -req -days 3 -sha256), '-in', "$dir/intermediate.csr",
        '-CA', "$dir/root.crt", '-CAkey', "$dir/root.key", '-set_serial', '0x7E570002',
        '-extfile', $cnf, '-extensions', 'v3_intermediate', '-out', "$dir/intermediate.crt");
    return $self->{test_ca} = { root => "$dir/root.crt", intermediate => "$dir/intermediate.crt" };
}

my $serial_seq = 0;

# Makes a certificate for HOST (its only DNS name), valid from now for 3 days, with a new
# key and a new serial. Options: type => ecdsa (P-256, the default) | rsa (2048 bits);
# self_signed => 1 (default: signed by the test CA's intermediate). Returns { host, type,
# serial (upper-case hex without leading zeros, as tls_handshake reports serials), cert (PEM
# file: the certificate, then the intermediate), key (PEM file, PKCS #8) }.
sub make_cert {
    my ($self, $host, %opt) = @_;
    my $dir = $self->pki_dir;
    my $type = $opt{type} // 'ecdsa';
    my $serial = sprintf('5E%04X%04X%04X', $$ & 0xffff, ++$serial_seq, int(rand(0xffff)));
    my $base = "$dir/$host-$type-$serial";
    my $san = "subjectAltName = DNS:$host";
    my $days = 3;

    my $key = "$base.key";
    my @gen = $type eq 'rsa' ? qw(-algorithm RSA -pkeyopt rsa_keygen_bits:2048)
        : $type eq 'ecdsa' ? qw(-algorithm EC -pkeyopt ec_paramgen_curve:P-256)
        : die "make_cert: unknown key type $type\n";
    $self->openssl_ok('genpkey', @gen, '-out', $key);
    chmod 0600, $key;

    if ($opt{self_signed}) {
        $self->openssl_ok(qw(req -x509 -new -sha256), '-days', $days,
            '-subj', "/O=Portal Test/CN=$host", '-config', "$dir/openssl.cnf",
            '-extensions', 'v3_self', '-addext', $san =~ s/ //gr, '-key', $key,
            '-set_serial', "0x$serial", '-out', "$base.leaf.pem");
        spew("$base.pem", slurp("$base.leaf.pem"));
    } else {
        my $ca = $self->test_ca;
        spew("$base.ext", "basicConstraints = critical, CA:FALSE\n"
            . "keyUsage = critical, digitalSignature"
            . ($type eq 'rsa' ? ", keyEncipherment\n" : "\n")
            . "extendedKeyUsage = serverAuth\nsubjectKeyIdentifier = hash\n"
            . "authorityKeyIdentifier = keyid\n$san\n");
        $self->openssl_ok(qw(req -new -sha256), '-subj', "/O=Portal Test/CN=$host",
            '-config', "$dir/openssl.cnf", '-key', $key, '-out', "$base.csr");
        $self->openssl_ok(qw(x509 -req -sha256), '-days', $days, '-in', "$base.csr",
            '-CA', $ca->{intermediate}, '-CAkey', "$dir/intermediate.key",
            '-set_serial', "0x$serial", '-extfile', "$base.ext", '-out', "$base.leaf.pem");
        spew("$base.pem", slurp("$base.leaf.pem") . slurp($ca->{intermediate}));
    }
    return { host => $host, type => $type, serial => $serial, cert => "$base.pem", key => $key };
}

# portalctl cert import HOST for a certificate made by make_cert.
sub import_cert {
    my ($self, $host, $cert) = @_;
    return $self->ctl_ok('cert', 'import', $host, '--cert', $cert->{cert}, '--key', $cert->{key});
}

sub _peer_serial {
    my ($x509) = @_;
    my $hex = uc(Net::SSLeay::P_ASN1_INTEGER_get_hex(Net::SSLeay::X509_get_serialNumber($x509)));
    $hex =~ s/^0+(?=.)//;
    return $hex;
}

# One TLS handshake with IO::Socket::SSL on a new connection: no session cache, so never
# a resumption. Options: sni => name (undef or '' sends none); port; version => 'TLSv1_2' |
# 'TLSv1_3' (default: either); cipher => TLS 1.2 cipher list (for signature algorithms, use
# s_client's -sigalgs); ca => a root to verify the chain and the name against (default: no
# verification); request => bytes to send once connected (then the response is read whole).
# Returns { ok, error, serial, cn, issuer, key ('EC' | 'RSA'), version, cipher, reused (0),
# response (parsed as by raw, with request) }.
sub tls_handshake {
    my ($self, %opt) = @_;
    require IO::Socket::SSL;
    my $sni = $opt{sni};
    my $s = IO::Socket::SSL->new(
        PeerAddr => '127.0.0.1', PeerPort => $opt{port} // $self->{port}, Timeout => 5 * SLOW,
        SSL_hostname => (defined $sni ? $sni : ''),
        SSL_verify_mode => $opt{ca} ? IO::Socket::SSL::SSL_VERIFY_PEER()
                                    : IO::Socket::SSL::SSL_VERIFY_NONE(),
        ($opt{ca} ? (SSL_ca_file => $opt{ca}, SSL_verifycn_name => $sni,
                     SSL_verifycn_scheme => 'http')
                  : (SSL_ca => [])),    # loading the system's roots costs ~80 ms
        ($opt{version} ? (SSL_version => $opt{version}) : ()),
        ($opt{cipher} ? (SSL_cipher_list => $opt{cipher}) : ()),
    );
    unless ($s) {
        no warnings "once";
        return { ok => 0, error => $IO::Socket::SSL::SSL_ERROR || "$!" };
    }

    my %r = (ok => 1, version => $s->get_sslversion, cipher => $s->get_cipher,
             reused => $s->get_session_reused ? 1 : 0);
    if (my $x509 = $s->peer_certificate) {
        $r{serial} = _peer_serial($x509);
        $r{cn} = $s->peer_certificate('commonName');
        $r{issuer} = Net::SSLeay::X509_NAME_oneline(Net::SSLeay::X509_get_issuer_name($x509));
        my $pkey = Net::SSLeay::X509_get_pubkey($x509);
        my $id = Net::SSLeay::EVP_PKEY_id($pkey);
        my $sn = Net::SSLeay::OBJ_nid2sn($id) // $id;
        $r{key} = $sn eq "id-ecPublicKey" ? "EC" : $sn eq "rsaEncryption" ? "RSA" : $sn;
        Net::SSLeay::EVP_PKEY_free($pkey);
    }
    if (defined(my $bytes = $opt{request})) {
        while (length $bytes) {
            my $n = $s->syswrite($bytes) or last;
            substr($bytes, 0, $n) = '';
        }
        my $buf = '';
        my $sel = IO::Select->new($s);
        my $deadline = time + 10 * SLOW;
        while (time < $deadline && !_complete($buf)) {
            last unless $s->pending || $sel->can_read($deadline - time);
            my $n = $s->sysread($buf, 65536, length $buf);
            last unless $n;
        }
        $r{response} = parse_response($buf);
    }
    $s->close(SSL_fast_shutdown => 1);
    return \%r;
}

# GET PATH over TLS with the SNI name SNI and Host: HOST (the two may differ), Connection:
# close. Returns the response as raw does, with {tls} the handshake as tls_handshake gives.
sub https_get {
    my ($self, $sni, $host, $path, %opt) = @_;
    my $req = "GET " . ($path // '/') . " HTTP/1.1\r\nHost: $host\r\nConnection: close\r\n\r\n";
    my $hs = $self->tls_handshake(%opt, sni => $sni, request => $req);
    my $res = $hs->{response} // parse_response('');
    $res->{tls} = $hs;
    return $res;
}

# Like run, with INPUT on standard input and a time limit in seconds (an alarm, which exec
# keeps); stdout and stderr come back together, in order: (exit status, output).
sub run_input {
    my ($self, $input, $limit, @cmd) = @_;
    my ($in, $out) = ("$self->{tmp}/run_input.in", "$self->{tmp}/run_input.out");
    spew($in, $input);
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', $in or POSIX::_exit(126);
        open STDOUT, '>', $out or POSIX::_exit(126);
        open STDERR, '>&', \*STDOUT or POSIX::_exit(126);
        alarm $limit;
        { no warnings 'exec'; exec { $cmd[0] } @cmd; }
        POSIX::_exit(127);
    }
    waitpid $pid, 0;
    my $rc = $? & 127 ? 128 + ($? & 127) : $? >> 8;
    $self->_keep_sanitizer_output($out, $cmd[0]);
    return ($rc, slurp($out));
}

# openssl s_client -connect 127.0.0.1:PORT ARGS, with INPUT on its standard input (it
# stops at EOF, unless ARGS has -ign_eof: then when nginx closes). Killed after 20 s. An
# options hash may come first in ARGS: { port => another port of this nginx }.
# Returns (exit status, output).
sub s_client {
    my ($self, $input, @args) = @_;
    my %opt = @args && ref $args[0] eq 'HASH' ? %{ shift @args } : ();
    return $self->run_input($input // '', 20 * SLOW, 'openssl', 's_client',
        '-connect', '127.0.0.1:' . ($opt{port} // $self->{port}), @args);
}

# The serial of the first certificate in OUTPUT (such as s_client's), as tls_handshake
# reports serials; undef when there is none.
sub pem_serial {
    my ($self, $output) = @_;
    my ($pem) = $output =~ /(-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----)/s
        or return undef;
    my ($rc, $text) = $self->run_input("$pem\n", 10, 'openssl', 'x509', '-noout', '-serial');
    my ($hex) = $rc == 0 && $text =~ /serial=([0-9A-Fa-f]+)/ or return undef;
    $hex = uc $hex;
    $hex =~ s/^0+(?=.)//;
    return $hex;
}

# Every record of database DB in the LMDB environment ENV (such as DATA/state and "certs"),
# read with lmdb-utils' mdb_dump: { key => value }, raw bytes.
sub lmdb_records {
    my ($self, $env, $db) = @_;
    my ($rc, $out, $err) = $self->run('mdb_dump', '-s', $db, $env);
    die "mdb_dump -s $db $env: exit $rc: $err (is lmdb-utils installed?)\n" if $rc != 0;
    my ($body) = $out =~ /^HEADER=END\n(.*?)^DATA=END$/ms
        or die "mdb_dump -s $db $env: no data in its output\n";
    my @items = map { pack 'H*', s/^ //r } split /\n/, $body;
    return { @items };
}

# Writes RECORDS ({ key => raw bytes }) into database DB of the LMDB environment ENV with
# lmdb-utils' mdb_load, as they are: the way to put a damaged record where portalctl never
# would.
sub lmdb_put {
    my ($self, $env, $db, $records) = @_;
    my $hex = sub { join '', map { sprintf '\\%02x', ord } split //, $_[0] };
    my $input = join '', map { $hex->($_) . "\n" . $hex->($records->{$_}) . "\n" }
        sort keys %$records;
    my ($rc, $out) = $self->run_input($input, 20, 'mdb_load', '-s', $db, '-T', $env);
    die "mdb_load -s $db $env: exit $rc: $out (is lmdb-utils installed?)\n" if $rc != 0;
}

# curl -sS ARGS, at most 10 s: (exit status, stdout, stderr).
sub curl {
    my ($self, @args) = @_;
    return $self->run('curl', '-sS', '--max-time', '10', @args);
}


# ---- helpers ------------------------------------------------------------------------------

sub slurp {
    my ($file) = @_;
    open my $fh, '<', $file or return undef;
    local $/;
    my $s = <$fh>;
    return $s // '';
}

sub spew {
    my ($file, $content) = @_;
    open my $fh, '>', $file or die "$file: $!";
    print $fh $content;
    close $fh or die "$file: $!";
}

sub cleanup {
    my ($self) = @_;
    return unless $self->{owner} == $$;
    $self->stop;
    for my $pid (@{ $self->{upstream_pids} }, $self->{watchdog} // ()) {
        kill 'TERM', $pid;
        waitpid $pid, 0;
    }
    $self->{upstream_pids} = [];
    delete $self->{watchdog};
}


# ---- sanitizer and valgrind reports -------------------------------------------------------

# Where this run's nginx writes its reports (none in a plain run).
sub _report_dir {
    my ($self) = @_;
    return $ENV{PORTAL_NGINX_PRELOAD} ? "$self->{tmp}/sanitizer"
        : VALGRIND ? "$self->{tmp}/valgrind" : undef;
}

# What a sanitizer prints where it does not write to its log_path (UBSan, see the top).
our $SANITIZER_OUTPUT = qr/: runtime error: |ERROR: (?:Address|Leak|UndefinedBehavior)Sanitizer/;

# In the sanitizer run, a copy of FILE (the output of a command run here, which the next
# command overwrites) into the report directory if a sanitizer report is in it.
my $kept = 0;
sub _keep_sanitizer_output {
    my ($self, $file, $cmd) = @_;
    $ENV{PORTAL_NGINX_PRELOAD} or return;
    my $text = slurp($file) // return;
    return unless $text =~ $SANITIZER_OUTPUT;
    (my $name = $cmd) =~ s{.*/}{};
    spew($self->_report_dir . "/output-$name-" . ++$kept, $text);
}

# What went wrong so far: { file => its text } for every ASan or UBSan report, and every
# valgrind log with an error (an ERROR SUMMARY above 0, or an error without a summary
# because the process was killed). Valgrind logs without errors are no reports.
sub reports {
    my ($self) = @_;
    my $dir = $self->_report_dir // return {};
    my %r;
    if (!VALGRIND) {    # sanitizer reports in error.log and other output (see the top)
        for my $file (grep { -f } glob "$self->{tmp}/*") {
            my $text = slurp($file) // next;
            $r{$file} = $text if $text =~ $SANITIZER_OUTPUT;
        }
    }
    for my $file (sort glob "$dir/*") {
        my $text = slurp($file) // next;
        if (VALGRIND) {
            my @n = $text =~ /^==\d+== ERROR SUMMARY: (\d+) errors/mg;
            my $errors = grep { $_ > 0 } @n;
            # an error block with no summary: valgrind's "by 0x..." stack lines
            $errors ||= !@n && $text =~ /^==\d+==    (?:at|by) 0x/m;
            next unless $errors;
        }
        $r{$file} = $text;
    }
    return \%r;
}

# At the end of a test file: its nginx is stopped; any report fails the file, printed whole
# (and copied into PORTAL_CHECK_REPORTS).
sub _check_reports {
    my $failed = 0;
    for my $self (grep { $_->{owner} == $$ } @instances) {
        my $reports = $self->reports;
        for my $file (sort keys %$reports) {
            $failed++;
            (my $name = $0) =~ s{.*?\bt/}{}; $name =~ s{[^\w.-]+}{_}g;
            (my $base = $file) =~ s{.*/}{};
            print STDERR "# $0: nginx report $base:\n", map { "#   $_\n" }
                split /\n/, $reports->{$file};
            if (my $keep = $ENV{PORTAL_CHECK_REPORTS}) {
                spew("$keep/$name.$base", $reports->{$file}) if -d $keep;
            }
        }
    }
    print STDERR "# $0: $failed sanitizer/valgrind report(s) from nginx\n" if $failed;
    return $failed;
}

END {
    my $status = $?;
    $_->cleanup for @instances;
    $status ||= 1 if _check_reports();
    $? = $status;
}

1;
