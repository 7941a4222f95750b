package PortalAcme;

# Harness for the ACME tests: Debian's pebble (an ACME CA for tests) and pebble-challtestsrv
# (its mock DNS server), both on 127.0.0.1 with ports from PortalTest::free_port. Every
# process started here runs under `timeout` and is watched by a second process that stops it
# when the test goes away; cleanup (stop, DESTROY, END) signals only the PIDs started here.
#
#   my $acme = PortalAcme->new;                    # options: tmp => DIR (default: its own)
#   my $dns = $acme->start_dns;                    # { port, mgmt_port, pid, wrapper, log }
#   $acme->point_here('shop.example.com', 'edge.portal.test');
#   my $p = $acme->start_pebble(http_port => $t->port, env => { PEBBLE_WFE_NONCEREJECT => 0 });
#   ... $p->{url}, $p->{ca}, $p->{roots} ...
#   is($acme->order_count, 0, 'no order reached Pebble');
#
# Pebble's defaults matter to tests: it rejects 5 % of good nonces (PEBBLE_WFE_NONCEREJECT,
# here only what the caller passes) and reuses 50 % of valid authorizations
# (PEBBLE_AUTHZREUSE). PEBBLE_VA_NOSLEEP=1 is always set.
#
# Names given to the DNS server should be lower case: challtestsrv keys its records by the
# exact name (it only adds the trailing dot), and answers a question with the name as asked.

use strict;
use warnings;

use File::Basename qw(dirname);
use File::Path ();
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);

use lib dirname(__FILE__);
use PortalTest;

# Anything started here is gone after this many seconds, whatever happens to the test.
use constant LIFETIME => 900;

my @instances;

# PortalAcme->new(%opt): tmp => a directory for configuration, logs and PID files (default: a
# new temporary directory, removed at exit). Starts the watchdog.
sub new {
    my ($class, %opt) = @_;
    my $self = bless {
        owner => $$,
        own_tmp => !defined $opt{tmp},
        tmp   => $opt{tmp} // tempdir('portal-acme-XXXXXX', TMPDIR => 1, CLEANUP => 1),
        procs => {},      # name => { pid, wrapper, exe }
        pointed => {},    # host => target, as set by point_here
        starts => 0,      # how many times pebble was started
    }, $class;
    $self->_watchdog;
    push @instances, $self;
    return $self;
}

sub tmp { $_[0]{tmp} }
sub dns { $_[0]{dns} // die "start_dns first\n" }
sub pebble { $_[0]{pebble} // die "start_pebble first\n" }


# ---- processes ----------------------------------------------------------------------------

# Whether PID is a live process: it exists and is neither a zombie nor dead (PID 1 of the
# container does not reap, so an orphan that exited stays as a zombie).
sub alive {
    my ($pid) = @_;
    return 0 unless $pid;
    my $stat = PortalTest::slurp("/proc/$pid/stat") or return 0;
    my ($state) = $stat =~ /\)\s+(\S)/ or return 0;
    return $state !~ /^[ZX]$/;
}

# The children of PID (from /proc), sorted.
sub _children {
    my ($pid) = @_;
    my @kids;
    opendir my $dh, '/proc' or die "/proc: $!";
    for my $p (grep { /^\d+$/ } readdir $dh) {
        my $stat = PortalTest::slurp("/proc/$p/stat") or next;
        my ($ppid) = $stat =~ /\)\s+\S+\s+(\d+)/ or next;
        push @kids, $p if $ppid == $pid;
    }
    return sort { $a <=> $b } @kids;
}

# Whether PID runs the executable EXE (its /proc/PID/exe, or its argv[0] when unreadable),
# so that a recycled PID is never signalled.
sub _runs {
    my ($pid, $exe) = @_;
    my $link = readlink "/proc/$pid/exe";
    return $link eq $exe if defined $link && $link !~ / \(deleted\)$/;
    my $cmd = PortalTest::slurp("/proc/$pid/cmdline") // '';
    my ($argv0) = split /\0/, $cmd;
    return defined $argv0 && $argv0 eq $exe;
}

# Starts CMD (its first element an absolute path) under `timeout LIFETIME` with stdout and
# stderr appended to LOG and ENV ({ name => value }) added to the environment. Returns
# { pid (the program's own PID), wrapper (timeout's PID, a child of this process), exe }.
sub _spawn {
    my ($self, $name, $log, $env, @cmd) = @_;
    my $wrapper = fork // die "fork: $!";
    if ($wrapper == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $log or POSIX::_exit(126);
        open STDERR, '>&', \*STDOUT or POSIX::_exit(126);
        $ENV{$_} = $env->{$_} for keys %$env;
        { no warnings 'exec'; exec 'timeout', '-k', '5', LIFETIME, @cmd; }
        POSIX::_exit(127);
    }
    my $proc = { wrapper => $wrapper, exe => $cmd[0] };
    $self->{procs}{$name} = $proc;
    $self->_save_pids;

    my $deadline = time + 10;
    while (time < $deadline) {
        if (waitpid($wrapper, WNOHANG) == $wrapper) {
            delete $self->{procs}{$name};
            $self->_save_pids;
            die "$name exited at start ($?):\n" . _tail($log);
        }
        my ($pid) = grep { _runs($_, $cmd[0]) } _children($wrapper);
        if ($pid) {
            $proc->{pid} = $pid;
            $self->_save_pids;
            return $proc;
        }
        sleep 0.01;
    }
    $self->_stop_proc($name);
    die "$name did not start in 10 s\n";
}

# Stops the process NAME: TERM to timeout (which passes it on and waits for the program),
# then to the program itself if it outlived timeout; KILL to both after 10 s. Returns 1 when
# the program stopped on TERM, 0 when it had to be killed, undef when it was not running.
sub _stop_proc {
    my ($self, $name) = @_;
    my $proc = delete $self->{procs}{$name} or return undef;
    my ($wrapper, $pid) = @$proc{qw(wrapper pid)};
    kill 'TERM', $wrapper;
    my $clean = 1;
    my $deadline = time + 10;
    my $reaped = 0;
    while (time < $deadline) {
        $reaped ||= waitpid($wrapper, WNOHANG) == $wrapper;
        if ($reaped && $pid && alive($pid) && _runs($pid, $proc->{exe})) {
            kill 'TERM', $pid;    # timeout was gone before it could pass the signal on
        }
        last if $reaped && !($pid && alive($pid));
        sleep 0.02;
    }
    unless ($reaped && !($pid && alive($pid))) {
        $clean = 0;
        kill 'KILL', $pid if $pid && alive($pid) && _runs($pid, $proc->{exe});
        kill 'KILL', $wrapper unless $reaped;
        waitpid $wrapper, 0 unless $reaped;
    }
    $self->_save_pids;
    return $clean;
}

# TMP/pids: one line per running process, "wrapper pid exe", for the watchdog.
sub _save_pids {
    my ($self) = @_;
    my $text = join '', map { "$_->{wrapper} " . ($_->{pid} // 0) . " $_->{exe}\n" }
        values %{ $self->{procs} };
    PortalTest::spew("$self->{tmp}/pids.new", $text);
    rename "$self->{tmp}/pids.new", "$self->{tmp}/pids" or die "rename: $!";
}

# A second process, in its own process group (so that a ^C to the test does not stop it),
# that stops what this object started when the test is gone without cleaning up.
sub _watchdog {
    my ($self) = @_;
    my $parent = $$;
    my $file = "$self->{tmp}/pids";
    my $own_tmp = $self->{own_tmp};
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        setpgrp(0, 0);
        $SIG{INT} = $SIG{HUP} = $SIG{PIPE} = 'IGNORE';
        $SIG{TERM} = sub { POSIX::_exit(0) };
        my $deadline = time + LIFETIME;
        while (time < $deadline && kill(0, $parent) && getppid() == $parent) {
            sleep 0.5;
        }
        my $gone = !(kill(0, $parent) && getppid() == $parent);
        my @left;
        for (split /\n/, PortalTest::slurp($file) // '') {
            my ($wrapper, $prog, $exe) = split / /, $_, 3;
            kill 'TERM', $wrapper if alive($wrapper) && _runs($wrapper, _timeout_exe());
            kill 'TERM', $prog if $prog && alive($prog) && _runs($prog, $exe);
            push @left, $wrapper, $prog || ();
        }
        # the test went without its END block: its temporary directory goes too
        if ($gone && $own_tmp) {
            my $until = time + 5;
            sleep 0.05 while time < $until && grep { alive($_) } @left;
            my $pki = PortalTest::slurp("$self->{tmp}/pki-dir") // '';
            File::Path::remove_tree($pki) if $pki =~ m{/portal-acme-pki-\w+$};
            File::Path::remove_tree($self->{tmp});
        }
        POSIX::_exit(0);
    }
    $self->{watchdog} = $pid;
}

sub _timeout_exe {
    for (split /:/, $ENV{PATH} // '/usr/bin:/bin') {
        my $p = "$_/timeout";
        return readlink("$p") // $p if -x $p;    # /proc/PID/exe names the real file
    }
    return '/usr/bin/timeout';
}

sub _tail {
    my ($file, $n) = @_;
    my @l = split /\n/, PortalTest::slurp($file) // '';
    $n //= 20;
    @l = @l[-$n .. -1] if @l > $n;
    return join '', map { "  $_\n" } @l;
}

# $acme->run_ok(CMD...): runs CMD (such as openssl); dies with its output unless it exits 0.
# Returns its stdout.
sub run_ok {
    my ($self, @cmd) = @_;
    my ($out, $err) = ("$self->{tmp}/run.out", "$self->{tmp}/run.err");
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $out or POSIX::_exit(126);
        open STDERR, '>', $err or POSIX::_exit(126);
        { no warnings 'exec'; exec { $cmd[0] } @cmd; }
        POSIX::_exit(127);
    }
    waitpid $pid, 0;
    my $rc = $? & 127 ? 128 + ($? & 127) : $? >> 8;
    die "@cmd: exit $rc: " . (PortalTest::slurp($err) // '') . (PortalTest::slurp($out) // '')
        if $rc != 0;
    return PortalTest::slurp($out);
}

# Stops every process this object started (DNS server, Pebble) and the watchdog.
sub cleanup {
    my ($self) = @_;
    return unless $self->{owner} == $$;
    $self->stop_pebble;
    $self->stop_dns;
    if (my $w = delete $self->{watchdog}) {
        kill 'TERM', $w;
        waitpid $w, 0;
    }
}

sub DESTROY { $_[0]->cleanup }

END {
    my $status = $?;
    $_->cleanup for grep { defined } @instances;
    $? = $status;
}


# ---- DNS: pebble-challtestsrv ----------------------------------------------------------------

# $acme->start_dns: starts pebble-challtestsrv with only its DNS server (UDP and TCP on
# 127.0.0.1:PORT) and its management API (HTTP on 127.0.0.1:MGMT_PORT); no default A/AAAA
# answers, so a name without records does not resolve. Waits until both answer. Returns
# { port, mgmt_port, pid, wrapper, log } (also $acme->dns).
sub start_dns {
    my ($self) = @_;
    die "DNS server already running\n" if $self->{procs}{dns};
    my $port;
    for (1 .. 50) {    # the DNS server takes the port on UDP and TCP; free_port checks TCP
        $port = PortalTest::free_port();
        my $u = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
                                      Proto => 'udp') or next;
        close $u;
        last;
    }
    my $mgmt = PortalTest::free_port();
    $mgmt = PortalTest::free_port() while $mgmt == $port;
    my $log = "$self->{tmp}/challtestsrv.log";
    my $proc = $self->_spawn('dns', $log, {}, '/usr/bin/pebble-challtestsrv',
        '-dns01', "127.0.0.1:$port", '-http01', '', '-https01', '', '-tlsalpn01', '',
        '-management', "127.0.0.1:$mgmt", '-defaultIPv4', '', '-defaultIPv6', '');
    $self->{dns} = { port => $port, mgmt_port => $mgmt, pid => $proc->{pid},
                     wrapper => $proc->{wrapper}, log => $log };

    my $deadline = time + 15;
    while (time < $deadline) {
        die "pebble-challtestsrv exited:\n" . _tail($log) unless alive($proc->{pid});
        # the management API answers 404 on /; any HTTP answer means it listens
        my $res = HTTP::Tiny->new(timeout => 1)->get("http://127.0.0.1:$mgmt/");
        if ($res->{status} != 599) {
            my $ans = eval { dns_query($port, 'ready.challtestsrv.invalid', 'A', timeout => 0.5) };
            return $self->{dns} if $ans;
        }
        sleep 0.05;
    }
    $self->stop_dns;
    die "pebble-challtestsrv did not answer in 15 s\n" . _tail($log);
}

# $acme->stop_dns: stops the DNS server (1 when it stopped on TERM; undef if not running).
sub stop_dns {
    my ($self) = @_;
    my $r = $self->_stop_proc('dns');
    $self->{pointed} = {};
    return $r;
}

# POST JSON to the management API; dies unless it answers 200.
sub dns_api {
    my ($self, $path, $body) = @_;
    my $url = "http://127.0.0.1:" . $self->dns->{mgmt_port} . $path;
    my $res = HTTP::Tiny->new(timeout => 5)->post($url, {
        headers => { 'Content-Type' => 'application/json' },
        content => encode_json($body) });
    die "POST $path: $res->{status} $res->{reason}: $res->{content}\n" unless $res->{status} == 200;
    return 1;
}

# $acme->set_cname(HOST, TARGET): HOST is an alias of TARGET (replaces HOST's CNAME).
# A question for HOST is answered with the CNAME and the records of TARGET (one level).
sub set_cname { $_[0]->dns_api('/set-cname', { host => $_[1], target => $_[2] }) }

# $acme->clear_cname(HOST)
sub clear_cname { $_[0]->dns_api('/clear-cname', { host => $_[1] }) }

# $acme->add_a(HOST, [IPv4, ...]): adds A records (to those HOST already has).
sub add_a { $_[0]->dns_api('/add-a', { host => $_[1], addresses => $_[2] }) }

# $acme->clear_a(HOST): removes every A record of HOST.
sub clear_a { $_[0]->dns_api('/clear-a', { host => $_[1] }) }

# $acme->add_aaaa(HOST, [IPv6, ...]) and $acme->clear_aaaa(HOST): the same for AAAA.
sub add_aaaa { $_[0]->dns_api('/add-aaaa', { host => $_[1], addresses => $_[2] }) }
sub clear_aaaa { $_[0]->dns_api('/clear-aaaa', { host => $_[1] }) }

# $acme->point_here(HOST, TARGET): HOST CNAME TARGET, and TARGET A 127.0.0.1 (added once per
# target), so that a CNAME check of HOST sees TARGET and Pebble's VA, which follows the
# CNAME, reaches 127.0.0.1. Without TARGET's A record an A question for HOST is answered
# with the CNAME alone, and Pebble's VA finds no address.
sub point_here {
    my ($self, $host, $target) = @_;
    my %targets = map { $_ => 1 } values %{ $self->{pointed} };
    $self->clear_cname($host) if exists $self->{pointed}{$host};
    $self->set_cname($host, $target);
    $self->add_a($target, ['127.0.0.1']) unless $targets{$target};
    $self->{pointed}{$host} = $target;
    return 1;
}

# $acme->point_away(HOST): removes HOST's CNAME and A records, and the A record of the
# target point_here gave it unless another host still points there. HOST no longer resolves.
sub point_away {
    my ($self, $host) = @_;
    $self->clear_cname($host);
    $self->clear_a($host);
    if (defined(my $target = delete $self->{pointed}{$host})) {
        my %still = map { $_ => 1 } values %{ $self->{pointed} };
        $self->clear_a($target) unless $still{$target};
    }
    return 1;
}

# $acme->lookup(NAME, TYPE): dns_query against this DNS server.
sub lookup {
    my ($self, $name, $type, %opt) = @_;
    return dns_query($self->dns->{port}, $name, $type, %opt);
}


# ---- a small DNS client ------------------------------------------------------------------

my %TYPE = (A => 1, NS => 2, CNAME => 5, SOA => 6, PTR => 12, MX => 15, TXT => 16,
            AAAA => 28, CAA => 257);
my %TYPE_NAME = reverse %TYPE;
my @RCODE = qw(NOERROR FORMERR SERVFAIL NXDOMAIN NOTIMP REFUSED);

# The wire form of a DNS question: id, flags RD, one question NAME TYPE IN.
sub dns_packet {
    my ($id, $name, $type) = @_;
    my $qtype = $type =~ /^\d+$/ ? $type : $TYPE{ uc $type } // die "unknown DNS type $type\n";
    $name =~ s/\.$//;
    my $qname = join('', map { die "label too long: $_\n" if length > 63; chr(length) . $_ }
        split /\./, $name) . "\0";
    return pack('n6', $id, 0x0100, 1, 0, 0, 0) . $qname . pack('n2', $qtype, 1);
}

# Reads a (possibly compressed) name at OFFSET of MSG: (name without trailing dot, offset
# after it in place).
sub _dns_name {
    my ($msg, $off) = @_;
    my @labels;
    my $end;
    for (my $hops = 0; ; $hops++) {
        die "DNS: bad name\n" if $hops > 64 || $off >= length $msg;
        my $len = ord substr($msg, $off, 1);
        if (($len & 0xc0) == 0xc0) {
            $end //= $off + 2;
            $off = unpack('n', substr($msg, $off, 2)) & 0x3fff;
            next;
        }
        $off++;
        last if $len == 0;
        push @labels, substr($msg, $off, $len);
        $off += $len;
    }
    return (join('.', @labels), $end // $off);
}

# Parses a DNS response: { id, rcode (name such as NOERROR), flags, aa, tc, question =>
# [{ name, type }], answer / authority / additional => [{ name, type (name such as CNAME, or
# the number), class, ttl, data }] }, data being: A/AAAA the address; CNAME/NS/PTR the name
# (no trailing dot); TXT the strings joined; MX "pref name"; SOA "mname rname serial";
# CAA "flags tag value"; others the raw bytes in hex.
sub dns_parse {
    my ($msg) = @_;
    die "DNS: short message\n" if length $msg < 12;
    my ($id, $flags, $qd, $an, $ns, $ar) = unpack 'n6', $msg;
    my %r = (id => $id, flags => $flags, rcode => $RCODE[$flags & 0xf] // ($flags & 0xf),
             aa => ($flags >> 10) & 1, tc => ($flags >> 9) & 1,
             question => [], answer => [], authority => [], additional => []);
    my $off = 12;
    for (1 .. $qd) {
        (my $name, $off) = _dns_name($msg, $off);
        my ($type) = unpack 'n', substr($msg, $off, 2);
        $off += 4;
        push @{ $r{question} }, { name => $name, type => $TYPE_NAME{$type} // $type };
    }
    for my $sec ([answer => $an], [authority => $ns], [additional => $ar]) {
        for (1 .. $sec->[1]) {
            (my $name, $off) = _dns_name($msg, $off);
            die "DNS: truncated record\n" if $off + 10 > length $msg;
            my ($type, $class, $ttl, $len) = unpack 'n n N n', substr($msg, $off, 10);
            $off += 10;
            my $rdata = substr($msg, $off, $len);
            my $tname = $TYPE_NAME{$type} // $type;
            my $data;
            if ($tname eq 'A') {
                $data = join '.', unpack 'C4', $rdata;
            } elsif ($tname eq 'AAAA') {
                require Socket;
                $data = Socket::inet_ntop(Socket::AF_INET6(), $rdata);
            } elsif ($tname =~ /^(?:CNAME|NS|PTR)$/) {
                ($data) = _dns_name($msg, $off);
            } elsif ($tname eq 'MX') {
                my ($host) = _dns_name($msg, $off + 2);
                $data = unpack('n', $rdata) . " $host";
            } elsif ($tname eq 'TXT') {
                my ($p, @s) = (0);
                while ($p < length $rdata) {
                    my $l = ord substr($rdata, $p, 1);
                    push @s, substr($rdata, $p + 1, $l);
                    $p += 1 + $l;
                }
                $data = join '', @s;
            } elsif ($tname eq 'SOA') {
                my ($mname, $o) = _dns_name($msg, $off);
                (my $rname, $o) = _dns_name($msg, $o);
                $data = "$mname $rname " . unpack('N', substr($msg, $o, 4));
            } elsif ($tname eq 'CAA') {
                my ($fl, $tl) = unpack 'C2', $rdata;
                $data = "$fl " . substr($rdata, 2, $tl) . ' ' . substr($rdata, 2 + $tl);
            } else {
                $data = unpack 'H*', $rdata;
            }
            $off += $len;
            push @{ $r{ $sec->[0] } },
                { name => $name, type => $tname, class => $class, ttl => $ttl, data => $data };
        }
    }
    return \%r;
}

# dns_query(PORT, NAME, TYPE, %opt): one question over UDP to 127.0.0.1:PORT (opt server =>
# another address), retried up to 3 times, each waiting timeout => seconds (default 2).
# Returns the parsed response (dns_parse); dies when nothing answers.
sub dns_query {
    my ($port, $name, $type, %opt) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => $opt{server} // '127.0.0.1', PeerPort => $port,
                                  Proto => 'udp') or die "DNS socket: $!";
    my $sel = IO::Select->new($s);
    for (1 .. ($opt{tries} // 3)) {
        my $id = int rand 65536;
        $s->send(dns_packet($id, $name, $type)) or die "DNS send: $!";
        my $deadline = time + ($opt{timeout} // 2);
        while ((my $left = $deadline - time) > 0) {
            last unless $sel->can_read($left);
            my $buf;
            defined $s->recv($buf, 65535) or last;
            next if length $buf < 2 || unpack('n', $buf) != $id;
            return dns_parse($buf);
        }
    }
    die "DNS: no answer from port $port for $name $type\n";
}

# The data of the answer records of RESPONSE of type TYPE (all types when omitted), in order.
sub answers {
    my ($res, $type) = @_;
    return map { $_->{data} } grep { !defined $type || $_->{type} eq $type } @{ $res->{answer} };
}


# ---- Pebble ------------------------------------------------------------------------------

my $PKI;

# The listener PKI for Pebble, made once per test run with the openssl CLI: { ca => PEM file
# of the CA (what an ACME client trusts), cert, key => Pebble's listener certificate (for
# 127.0.0.1 and localhost) and key }.
sub listener_pki {
    my ($self) = @_;
    return $PKI if $PKI && -f $PKI->{ca};
    my $dir = tempdir('portal-acme-pki-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my @ec = qw(genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out);
    $self->run_ok('openssl', @ec, "$dir/ca.key");
    $self->run_ok('openssl', qw(req -x509 -new -sha256 -days 3),
        '-subj', '/CN=Portal Test Pebble Listener CA', '-key', "$dir/ca.key",
        '-addext', 'basicConstraints=critical,CA:TRUE',
        '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
        '-addext', 'subjectKeyIdentifier=hash', '-out', "$dir/ca.crt");
    $self->run_ok('openssl', @ec, "$dir/listener.key");
    $self->run_ok('openssl', qw(req -new -sha256 -subj /CN=localhost),
        '-key', "$dir/listener.key", '-out', "$dir/listener.csr");
    PortalTest::spew("$dir/listener.ext", "basicConstraints = critical, CA:FALSE\n"
        . "keyUsage = critical, digitalSignature\nextendedKeyUsage = serverAuth\n"
        . "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n"
        . "subjectAltName = DNS:localhost, IP:127.0.0.1\n");
    $self->run_ok('openssl', qw(x509 -req -sha256 -days 3), '-in', "$dir/listener.csr",
        '-CA', "$dir/ca.crt", '-CAkey', "$dir/ca.key", '-set_serial', '0x' . sprintf('%08X', $$),
        '-extfile', "$dir/listener.ext", '-out', "$dir/listener.crt");
    # nginx's workers (nobody) read the CA certificate to trust Pebble
    chmod 0755, $dir;
    chmod 0644, "$dir/ca.crt";
    return $PKI = { dir => $dir, ca => "$dir/ca.crt", cert => "$dir/listener.crt",
                    key => "$dir/listener.key", owner => $$ };
}

# $acme->https_client: an HTTP::Tiny that trusts only the listener CA (for Pebble's ACME and
# management ports).
sub https_client {
    my ($self) = @_;
    return HTTP::Tiny->new(timeout => 5, verify_SSL => 1,
        SSL_options => { SSL_ca_file => $self->listener_pki->{ca} });
}

# $acme->https_get(URL): GET URL from Pebble (verified against the listener CA); HTTP::Tiny's
# response hash ({ status, reason, headers, content }; status 599 for a connection error).
sub https_get { $_[0]->https_client->get($_[1]) }

# $acme->start_pebble(%opt): starts Pebble. Options: http_port => the port Pebble's VA
# connects to for HTTP-01 (required on the first start); env => { PEBBLE_... => value }
# (added to PEBBLE_VA_NOSLEEP=1); tls_port => for TLS-ALPN-01 (default: a free port that
# nothing listens on); dns_port => the resolver for the VA (default: start_dns's). Waits until
# the directory answers, then saves Pebble's root and intermediate of this start. Returns
# (also $acme->pebble):
#   { url => "https://127.0.0.1:PORT/dir", ca => listener CA file (for the ACME client),
#     roots => PEM file of the root Pebble issues under (changes at every start),
#     intermediates => PEM file of its intermediate, log => log file (appended across
#     starts), pid => pebble's PID, wrapper => timeout's PID, port, mgmt_port, http_port,
#     tls_port, config => the JSON file, start => 1 for the first start, 2 after a restart... }
sub start_pebble {
    my ($self, %opt) = @_;
    die "pebble already running\n" if $self->{procs}{pebble};
    my $prev = $self->{pebble_opt} // {};
    my %o = (%$prev, %opt);
    defined $o{http_port} or die "start_pebble: http_port is required\n";
    $o{env} //= {};
    $o{dns_port} //= $self->dns->{port};
    my %taken = map { $_ => 1 } grep { defined } $o{http_port}, $o{dns_port},
        $self->{dns} ? $self->{dns}{mgmt_port} : ();
    my $port_for = sub {
        my $p = PortalTest::free_port();
        $p = PortalTest::free_port() while $taken{$p};
        $taken{$p} = 1;
        return $p;
    };
    # the ports stay the same across restarts
    $o{port} //= $port_for->();
    $o{mgmt_port} //= $port_for->();
    $o{tls_port} //= $port_for->();
    $self->{pebble_opt} = \%o;

    my $pki = $self->listener_pki;
    # for the watchdog: the PKI goes with the test that made it
    PortalTest::spew("$self->{tmp}/pki-dir", $pki->{dir}) if $pki->{owner} == $self->{owner};
    my $dir = "$self->{tmp}/pebble";
    -d $dir or mkdir $dir or die "mkdir $dir: $!";
    my $config = "$dir/pebble-config.json";
    PortalTest::spew($config, JSON::PP->new->canonical->pretty->encode({ pebble => {
        listenAddress => "127.0.0.1:$o{port}",
        managementListenAddress => "127.0.0.1:$o{mgmt_port}",
        certificate => $pki->{cert},
        privateKey => $pki->{key},
        httpPort => $o{http_port} + 0,
        tlsPort => $o{tls_port} + 0,
        ocspResponderURL => '',
        externalAccountBindingRequired => JSON::PP::false,
    } }));

    my $log = "$dir/pebble.log";
    my $n = ++$self->{starts};
    open my $fh, '>>', $log or die "$log: $!";
    print $fh "=== PortalAcme: pebble start $n\n";
    close $fh;

    my %env = (PEBBLE_VA_NOSLEEP => 1, %{ $o{env} });
    my $proc = $self->_spawn('pebble', $log, \%env, '/usr/bin/pebble',
        '-config', $config, '-dnsserver', "127.0.0.1:$o{dns_port}");
    my $p = $self->{pebble} = {
        url => "https://127.0.0.1:$o{port}/dir", ca => $pki->{ca},
        roots => "$dir/roots.pem", intermediates => "$dir/intermediates.pem", log => $log,
        pid => $proc->{pid}, wrapper => $proc->{wrapper}, config => $config, start => $n,
        map { $_ => $o{$_} } qw(port mgmt_port http_port tls_port),
    };

    my $http = $self->https_client;
    my $deadline = time + 20;
    my $res;
    while (time < $deadline) {
        die "pebble exited:\n" . _tail($log) unless alive($proc->{pid});
        $res = $http->get($p->{url});
        last if $res->{status} == 200;
        sleep 0.05;
    }
    unless ($res && $res->{status} == 200) {
        $self->stop_pebble;
        die "pebble did not answer $p->{url} in 20 s: $res->{status} $res->{content}\n"
            . _tail($log);
    }

    for ([roots => 'roots/0'], [intermediates => 'intermediates/0']) {
        my ($key, $path) = @$_;
        my $r = $http->get("https://127.0.0.1:$o{mgmt_port}/$path");
        $r->{status} == 200 && $r->{content} =~ /-----BEGIN CERTIFICATE-----/
            or die "GET /$path from pebble's management port: $r->{status} $r->{content}\n";
        PortalTest::spew("$p->{$key}.new", $r->{content});
        rename "$p->{$key}.new", $p->{$key} or die "rename: $!";
    }
    return $p;
}

# $acme->stop_pebble: stops Pebble (1 when it stopped on TERM; undef if not running).
sub stop_pebble {
    my ($self) = @_;
    return $self->_stop_proc('pebble');
}

# $acme->restart_pebble(%opt): stop_pebble, then start_pebble with the same ports and the
# options of the previous start, OPT overriding them (env replaces the whole env hash).
# Returns what start_pebble returns; roots and intermediates hold the new CA's certificates.
sub restart_pebble {
    my ($self, %opt) = @_;
    $self->stop_pebble;
    return $self->start_pebble(%opt);
}

# $acme->directory: Pebble's directory, decoded ({ newNonce, newAccount, newOrder, ... }).
sub directory {
    my ($self) = @_;
    my $res = $self->https_get($self->pebble->{url});
    die "GET directory: $res->{status} $res->{content}\n" unless $res->{status} == 200;
    return decode_json($res->{content});
}

# The text of Pebble's log (every start, each after a "=== PortalAcme: pebble start N" line).
sub pebble_log { PortalTest::slurp($_[0]->pebble->{log}) // '' }

# What pebble_count counts: Pebble 2.4.0 logs "METHOD PATH -> calling handler()" for every
# request it routes (before checking it), and one line per event.
our %LOG_PATTERN = (
    new_order     => qr{^.*POST /order-plz -> calling handler\(\)}m,   # requests to newOrder
    order_created => qr{^.*Added order "[^"]*" to the db}m,          # orders it accepted
    finalize      => qr{^.*POST /finalize-order/\S* -> calling handler\(\)}m,
    issued        => qr{^.*Issued certificate serial \S+ for order}m,
    new_account   => qr{^.*POST /sign-me-up -> calling handler\(\)}m,
    challenge     => qr{^.*POST /chalZ/\S* -> calling handler\(\)}m,
    new_nonce     => qr{^.*(?:HEAD|GET) /nonce-plz -> calling handler\(\)}m,
);

# $acme->pebble_count(KIND, FROM): how many times KIND (a key of %LOG_PATTERN) appears in
# Pebble's log from byte offset FROM (default 0: the whole log, all starts).
sub pebble_count {
    my ($self, $kind, $from) = @_;
    my $re = $LOG_PATTERN{$kind} or die "pebble_count: unknown kind $kind\n";
    my $log = substr($self->pebble_log, $from // 0);
    my $n = () = $log =~ /$re/g;
    return $n;
}

# $acme->pebble_log_size: the current length of the log, as a FROM for pebble_count.
sub pebble_log_size { (-s $_[0]->pebble->{log}) || 0 }

# Requests that reached Pebble's newOrder endpoint (POST /order-plz), and its finalize
# endpoint (POST /finalize-order/ID), since FROM.
sub order_count { $_[0]->pebble_count('new_order', $_[1]) }
sub finalize_count { $_[0]->pebble_count('finalize', $_[1]) }


# ---- an edge with the ACME engine ---------------------------------------------------------

# $acme->start_edge($t, %opt): the usual ACME test bed around PortalTest $t: the test DNS,
# Pebble (its VA asks $t's first port), a fallback certificate, and nginx's configuration with
# portal_acme on (backoff 1s 2s 4s 8s), a portal server on PORT (HTTP-01) and a portal_ssl
# server on PORT2, both proxying to $t's upstream. Options: pebble_env => { ... } (default
# PEBBLE_WFE_NONCEREJECT => 0), directives => [extra http-level lines], workers (2). Writes the
# configuration but does not start nginx. Returns ($dns, $pebble).
sub start_edge {
    my ($self, $t, %opt) = @_;
    my $dns = $self->start_dns;
    my $p = $self->start_pebble(http_port => $t->port,
                                env => $opt{pebble_env} // { PEBBLE_WFE_NONCEREJECT => 0 });
    my $fallback = $t->make_cert('fallback.invalid', self_signed => 1);
    my $extra = join '', map { "    $_\n" } @{ $opt{directives} // [] };
    $t->write_conf(<<"CONF", workers => $opt{workers} // 2);
    portal_acme on;
    portal_acme_directory $p->{url};
    portal_acme_ca_certificate $p->{ca};
    portal_acme_cname_target edge.portal.test;
    portal_acme_resolver 127.0.0.1:$dns->{port};
    portal_acme_backoff 1s 2s 4s 8s;
$extra
    server {
        listen 127.0.0.1:%%PORT%%;
        portal on;
        location / { proxy_pass http://%%UPSTREAM%%; }
    }
    server {
        listen 127.0.0.1:%%PORT2%% ssl;
        ssl_certificate $fallback->{cert};
        ssl_certificate_key $fallback->{key};
        portal_ssl on;
        portal on;
        location / { proxy_pass http://%%UPSTREAM%%; }
    }
CONF
    return ($dns, $p);
}

1;
