# portalctl cert import|show|list|rm with certificates made by the openssl command line in a
# temporary directory: the happy paths, every kind of bad input refused with exit 2 and a
# message naming the option and the file, nothing written then, the modes of the state files,
# and never a private key in anything portalctl prints.
#
# Environment: PORTALCTL (default build/portalctl, relative to the repository root).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use JSON::PP;
use Test::More;
use PortalCtl;

my $portalctl = portalctl_path();
-x $portalctl or plan skip_all => "no portalctl at $portalctl: build it, or set PORTALCTL";
system('openssl version >/dev/null 2>&1') == 0 or plan skip_all => 'no openssl command';

my $tmp = tmp_dir();
my $pki = "$tmp/pki";
mkdir $pki or die "$pki: $!";
my $json = JSON::PP->new->utf8->canonical;
my $host = 'portal.yourwebsite.com';

# --- certificates ----------------------------------------------------------------------------
sub openssl {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', "$pki/openssl.err";
        exec 'openssl', @_;
        exit 127;
    }
    waitpid $pid, 0;
    $? == 0 or die "openssl @_: " . (slurp("$pki/openssl.err") // '');
}

# A self-signed certificate NAME.crt and its key NAME.key: KEYOPTS as for openssl req -newkey.
sub self_signed {
    my ($name, $newkey, $days, $cn, @dns) = @_;
    openssl('req', '-x509', '-newkey', @$newkey, '-nodes', '-keyout', "$pki/$name.key",
        '-out', "$pki/$name.crt", '-days', $days, '-subj', "/CN=$cn",
        (@dns ? ('-addext', 'subjectAltName=' . join ',', map { "DNS:$_" } @dns) : ()));
}
my @ec = ('ec', '-pkeyopt', 'ec_paramgen_curve:P-256');
self_signed('ec', \@ec, 90, $host, $host, "www.$host");
self_signed('ec2', \@ec, 30, $host, $host);
self_signed('rsa', ['rsa:2048'], 60, $host, $host);
openssl('pkey', '-in', "$pki/rsa.key", '-traditional', '-out', "$pki/rsa-trad.key");
self_signed('wild', \@ec, 90, '*.example.net', '*.example.net');
self_signed('weak', ['rsa:1024'], 90, $host, $host);
self_signed('cn-only', \@ec, 90, $host);
self_signed('p521', ['ec', '-pkeyopt', 'ec_paramgen_curve:P-521'], 90, $host, $host);
openssl('pkey', '-in', "$pki/ec.key", '-aes256', '-passout', 'pass:secret', '-out', "$pki/encrypted.key");

# A CA, a leaf it signs for chain.example, and leaves with validity periods in the past and in
# the future (openssl ca is the command-line tool that takes explicit dates).
self_signed('ca', \@ec, 365, 'Portal Test CA');
spew("$pki/ca.cnf", <<"EOF");
[ ca ]
default_ca = test_ca
[ test_ca ]
database = $pki/index.txt
serial = $pki/serial
new_certs_dir = $pki
certificate = $pki/ca.crt
private_key = $pki/ca.key
default_md = sha256
default_days = 90
policy = any
copy_extensions = copy
unique_subject = no
[ any ]
commonName = supplied
EOF
spew("$pki/index.txt", '');
spew("$pki/serial", "1000\n");
sub ca_signed {
    my ($name, $cn, @dates) = @_;
    openssl('req', '-new', '-newkey', @ec, '-nodes', '-keyout', "$pki/$name.key",
        '-out', "$pki/$name.csr", '-subj', "/CN=$cn", '-addext', "subjectAltName=DNS:$cn");
    openssl('ca', '-batch', '-notext', '-config', "$pki/ca.cnf", '-in', "$pki/$name.csr",
        '-out', "$pki/$name.crt", @dates);
}
ca_signed('leaf', 'chain.example');
spew("$pki/chain.crt", slurp("$pki/leaf.crt") . slurp("$pki/ca.crt"));
ca_signed('expired', $host, '-startdate', '20200101000000Z', '-enddate', '20200301000000Z');
ca_signed('future', $host, '-startdate', '20400101000000Z', '-enddate', '20400301000000Z');

spew("$pki/garbage.pem", "this is not a certificate\n");
spew("$pki/empty.pem", '');
{
    my $cert = slurp("$pki/ec.crt");
    spew("$pki/truncated.crt", substr($cert, 0, length($cert) / 2));
    my $key = slurp("$pki/ec.key");
    $key =~ s/^(-----BEGIN PRIVATE KEY-----\n)(.{20})/$1 . ('A' x 20)/me;
    spew("$pki/damaged.key", $key);
}

# Serial and dates as openssl itself prints them.
sub x509_field {
    my ($file, $opt) = @_;
    my $out = `openssl x509 -in $file -noout $opt -dateopt iso_8601 2>/dev/null`;
    chomp $out;
    $out =~ s/^\w+=//;
    $out =~ s/^(\d{4}-\d\d-\d\d) /$1T/;
    return $out;
}

# --- running portalctl: everything it prints is kept for the key check at the end ----------
my $printed = '';
my $data = "$tmp/data";
sub ctl_in {
    my ($dir, @args) = @_;
    my ($rc, $out, $err) = run_ctl(undef, '--data', $dir, @args);
    $printed .= $out . $err;
    return ($rc, $out, $err);
}
sub ctl { return ctl_in($data, @_) }
sub ctl_ok {
    my ($rc, $out, $err) = ctl(@_);
    die "portalctl @_: exit $rc: $err" if $rc != 0;
    return $out;
}
sub show_json { return $json->decode(ctl_ok('--json', 'cert', 'show', $_[0])) }
sub list_json { return $json->decode(ctl_ok(qw(--json cert list))) }
# What the store holds (days_left left out: it moves with the clock, not with the store).
sub state_of {
    my ($rc, $out) = ctl(qw(--json cert list));
    $out =~ s/"days_left":\s*-?\d+,?//g;
    return "$rc $out";
}
sub mode_of { return sprintf '%04o', (stat $_[0])[2] & 07777 }

my $iso = qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;

# --- init and the state store ----------------------------------------------------------------
{
    my ($rc, $out, $err) = ctl(qw(cert list));
    is($rc, 1, 'cert list before init: exit 1');
    like($err, qr/^portalctl: .*\Q$data\E/, 'naming the data directory');
}
ctl_ok('init');
ok(-f "$data/state/data.mdb", 'init creates the state store');
is(mode_of("$data/state"), '0700', 'state/ is 0700');
is(mode_of("$data/state/data.mdb"), '0600', 'state/data.mdb is 0600');
is(mode_of("$data/state/lock.mdb"), '0600', 'state/lock.mdb is 0600');
is(ctl_ok(qw(--json cert list)), "[]\n", 'the new state store holds no certificate');
like(ctl_ok(qw(cert list)), qr/^host\s+key_type\s+not_after\s+days_left\s+source\s+issuer\n\z/,
    'cert list: just the header');

SKIP: {
    skip 'init --owner needs root', 3 unless $> == 0;
    my @nobody = getpwnam('nobody') or skip 'no user "nobody"', 3;
    my $dir = "$tmp/owned";
    my ($rc, $out, $err) = ctl_in($dir, 'init', '--owner', 'nobody');
    is($rc, 0, 'init --owner nobody: exit 0') or diag $err;
    is_deeply([map { (stat $_)[4] } "$dir/state", "$dir/state/data.mdb", "$dir/state/lock.mdb"],
        [($nobody[2]) x 3], 'the state store is owned by nobody');
    ctl_in($dir, qw(cert import), $host, '--cert', "$pki/ec.crt", '--key', "$pki/ec.key");
    is((stat "$dir/state/data.mdb")[4], $nobody[2], 'and stays so after a cert import by root');
}

# --- import, show, list ----------------------------------------------------------------------
ctl_ok(qw(domain add), $host, '--brand', 'Your Website');
{
    my ($rc, $out, $err) = ctl(qw(cert import), $host, '--cert', "$pki/ec.crt", '--key', "$pki/ec.key");
    is($rc, 0, 'cert import of an ECDSA pair: exit 0') or diag $err;
    is($err, '', 'no warning for a portal domain');
    like($out, qr/^imported the ecdsa certificate of \Q$host\E: not after \S+Z \(\d+ days left\), generation \d+$/,
        'it says what it imported');
}
my $first = show_json($host);
{
    my $p = $first->{pairs};
    is_deeply([@$first{qw(host source)}], [$host, 'imported'], 'show --json: host and source');
    like($first->{updated}, $iso, 'updated is an ISO-8601 UTC time');
    is(scalar @$p, 1, 'one pair');
    is_deeply([@{$p->[0]}{qw(key_type subject issuer chain_length)}],
        ['ecdsa', "CN=$host", "CN=$host", 1], 'key type, subject, issuer, chain length');
    is($p->[0]{serial}, x509_field("$pki/ec.crt", '-serial'), 'the serial, as openssl prints it');
    is_deeply($p->[0]{sans}, [$host, "www.$host"], 'the DNS names');
    is($p->[0]{not_before}, x509_field("$pki/ec.crt", '-startdate'), 'not_before');
    is($p->[0]{not_after}, x509_field("$pki/ec.crt", '-enddate'), 'not_after');
    ok($p->[0]{days_left} == 89 || $p->[0]{days_left} == 90, 'days_left of a 90-day certificate')
        or diag $p->[0]{days_left};
}
{
    my ($rc, $out, $err) = ctl(qw(cert import), $host, '--cert', "$pki/rsa.crt", '--key', "$pki/rsa-trad.key");
    is($rc, 0, 'cert import of an RSA pair (a traditional "RSA PRIVATE KEY" file): exit 0') or diag $err;
    my $s = show_json($host);
    is_deeply([map { $_->{key_type} } @{$s->{pairs}}], [qw(ecdsa rsa)],
        'an import of another key type adds a pair');
    is($s->{pairs}[0]{serial}, $first->{pairs}[0]{serial}, 'and keeps the ECDSA one');
    is($s->{pairs}[1]{serial}, x509_field("$pki/rsa.crt", '-serial'), 'the RSA serial');
    cmp_ok($s->{generation}, '>', $first->{generation}, 'the generation moved');
}
{
    my $before = show_json($host);
    my ($rc, $out, $err) = ctl(qw(cert import PORTAL.YourWebsite.COM.), '--cert', "$pki/ec2.crt", '--key', "$pki/ec2.key");
    is($rc, 0, 'cert import of a new ECDSA pair (host in another spelling): exit 0') or diag $err;
    my $s = show_json($host);
    is_deeply([map { $_->{key_type} } @{$s->{pairs}}], [qw(ecdsa rsa)], 'still one pair per key type');
    is($s->{pairs}[0]{serial}, x509_field("$pki/ec2.crt", '-serial'), 'the same key type is replaced');
    is($s->{pairs}[1]{serial}, $before->{pairs}[1]{serial}, 'the other stays');
    cmp_ok($s->{generation}, '>', $before->{generation}, 'the generation moved again');
}
{
    my $text = ctl_ok(qw(cert show), $host);
    like($text, qr/^host: \Q$host\E\nsource: imported\ngeneration: \d+\nupdated: \S+Z\n\n(?x)
        key_type:\ ecdsa\nsubject:\ CN=\Q$host\E\nissuer:\ CN=\Q$host\E\nserial:\ [0-9A-F]+\n
        sans:\ \Q$host\E\nnot_before:\ \S+Z\nnot_after:\ \S+Z\ndays_left:\ \d+\nchain_length:\ 1\n\n
        key_type:\ rsa\n/, 'show: "field: value" lines, the record then each pair');
    unlike($text, qr/key_der|PRIVATE/, 'and no key');
}
{
    my ($rc, $out, $err) = ctl(qw(cert import chain.example --cert), "$pki/chain.crt", '--key', "$pki/leaf.key");
    is($rc, 0, 'cert import of a host that is not a portal domain: exit 0') or diag $err;
    like($err, qr/^portalctl: warning: "chain\.example" is not a portal domain/, 'with a warning');
    my $s = show_json('chain.example');
    is($s->{pairs}[0]{chain_length}, 2, 'the chain is kept whole');
    is($s->{pairs}[0]{issuer}, 'CN=Portal Test CA', 'the issuer is the CA');

    ($rc, $out, $err) = ctl(qw(cert import a.example.net --cert), "$pki/wild.crt", '--key', "$pki/wild.key");
    is($rc, 0, 'a wildcard certificate for a name it covers: exit 0') or diag $err;
}
{
    my @rows = split /\n/, ctl_ok(qw(cert list));
    is(scalar @rows, 5, 'list: a header, then one line per pair');
    like($rows[1], qr/^a\.example\.net\s+ecdsa\s+\S+Z\s+\d+\s+imported\s+CN=\*\.example\.net$/, 'list: a wildcard');
    like($rows[2], qr/^chain\.example\s+ecdsa\s+\S+Z\s+\d+\s+imported\s+CN=Portal Test CA$/, 'list: the CA as issuer');
    like($rows[3], qr/^\Q$host\E\s+ecdsa\s+\S+Z\s+(29|30)\s+imported\s+CN=\Q$host\E$/, 'list: the ECDSA pair');
    like($rows[4], qr/^\Q$host\E\s+rsa\s+\S+Z\s+(59|60)\s+imported\s+CN=\Q$host\E$/, 'list: the RSA pair');
    my $list = list_json();
    is_deeply([map { "$_->{host} $_->{key_type}" } @$list],
        ['a.example.net ecdsa', 'chain.example ecdsa', "$host ecdsa", "$host rsa"], 'list --json: every pair, by host');
    my $s = show_json($host);
    is_deeply($list->[3], {host => $host, key_type => 'rsa', issuer => "CN=$host",
        not_after => x509_field("$pki/rsa.crt", '-enddate'), days_left => $s->{pairs}[1]{days_left},
        source => 'imported', generation => $s->{generation}}, 'list --json: every field of a pair');
    is(ctl_ok(qw(cert list --json)), ctl_ok(qw(--json cert list)), '--json after the command too');
}

# --- bad input: exit 2, a message naming the option and the file, nothing written ------------
my @bad = (
    ['an expired certificate', [$host, "$pki/expired.crt", "$pki/expired.key"],
        qr/--cert "[^"]*expired\.crt": the certificate has expired \(not after 2020-03-01T00:00:00Z\)/],
    ['a certificate not valid yet', [$host, "$pki/future.crt", "$pki/future.key"],
        qr/--cert "[^"]*future\.crt": the certificate is not valid yet \(not before 2040-01-01T00:00:00Z\)/],
    ['a certificate for another host', ['other.example', "$pki/ec.crt", "$pki/ec.key"],
        qr/--cert "[^"]*ec\.crt": the certificate does not cover "other\.example" \(its DNS names: \Q$host\E,www\.\Q$host\E\)/],
    ['a wildcard one label too deep', ['a.b.example.net', "$pki/wild.crt", "$pki/wild.key"],
        qr/--cert "[^"]*wild\.crt": the certificate does not cover "a\.b\.example\.net"/],
    ['a certificate with its name only in the CN', [$host, "$pki/cn-only.crt", "$pki/cn-only.key"],
        qr/--cert "[^"]*cn-only\.crt": the certificate does not cover "\Q$host\E" \(its DNS names: none\)/],
    ['a key that does not match', [$host, "$pki/ec.crt", "$pki/rsa.key"],
        qr/--key "[^"]*rsa\.key": the private key does not match the certificate \(the first one in --cert "[^"]*ec\.crt"\)/],
    ['a 1024-bit RSA key', [$host, "$pki/weak.crt", "$pki/weak.key"],
        qr/--key "[^"]*weak\.key": RSA key of 1024 bits: only ECDSA P-256 or P-384 and RSA of 2048 bits or more are accepted/],
    ['a P-521 key', [$host, "$pki/p521.crt", "$pki/p521.key"], qr/--key "[^"]*p521\.key": ECDSA key on curve secp521r1/],
    ['an encrypted key', [$host, "$pki/ec.crt", "$pki/encrypted.key"],
        qr/--key "[^"]*encrypted\.key": the private key is encrypted: give it unencrypted/],
    ['a garbage certificate', [$host, "$pki/garbage.pem", "$pki/ec.key"],
        qr/--cert "[^"]*garbage\.pem": no PEM certificate \("-----BEGIN CERTIFICATE-----"\) found/],
    ['an empty certificate file', [$host, "$pki/empty.pem", "$pki/ec.key"], qr/--cert "[^"]*empty\.pem": no PEM certificate/],
    ['a truncated certificate', [$host, "$pki/truncated.crt", "$pki/ec.key"],
        qr/--cert "[^"]*truncated\.crt": cannot parse the certificate: /],
    ['the key given as certificate', [$host, "$pki/ec.key", "$pki/ec.key"], qr/--cert "[^"]*ec\.key": no PEM certificate/],
    ['a garbage key', [$host, "$pki/ec.crt", "$pki/garbage.pem"], qr/--key "[^"]*garbage\.pem": no PEM private key found/],
    ['the certificate given as key', [$host, "$pki/ec.crt", "$pki/ec.crt"], qr/--key "[^"]*ec\.crt": no PEM private key found/],
    ['a damaged key', [$host, "$pki/ec.crt", "$pki/damaged.key"], qr/--key "[^"]*damaged\.key": cannot parse the private key/],
    ['a missing certificate file', [$host, "$pki/nope.crt", "$pki/ec.key"],
        qr/--cert: cannot read "[^"]*nope\.crt": No such file or directory/],
    ['a missing key file', [$host, "$pki/ec.crt", "$pki/nope.key"], qr/--key: cannot read "[^"]*nope\.key": No such file or directory/],
    ['a directory as key file', [$host, "$pki/ec.crt", $pki], qr/--key: cannot read "[^"]*pki": Is a directory/],
    ['a bad hostname', ['a..b.example', "$pki/ec.crt", "$pki/ec.key"], qr/HOST: invalid hostname "a\.\.b\.example"/],
);
{
    my $state = state_of();
    for my $case (@bad) {
        my ($name, $args, $message) = @$case;
        my ($h, $cert, $key) = @$args;
        my ($rc, $out, $err) = ctl(qw(cert import), $h, '--cert', $cert, '--key', $key);
        is($rc, 2, "import of $name: exit 2");
        like($err, qr/^portalctl: $message/, "import of $name: the message names the option and the problem");
        is($out, '', "import of $name: nothing on stdout");
    }
    my @usage = (
        ['import without --key', [qw(cert import), $host, '--cert', "$pki/ec.crt"]],
        ['import without --cert', [qw(cert import), $host, '--key', "$pki/ec.key"]],
        ['import without HOST', [qw(cert import --cert), "$pki/ec.crt", '--key', "$pki/ec.key"]],
        ['cert without a subcommand', ['cert']],
        ['rm with an unknown key type', [qw(cert rm), $host, qw(--type dsa)]],
        ['show of a bad hostname', [qw(cert show a..b.example)]],
        ['rm of a bad hostname', [qw(cert rm a..b.example)]],
    );
    for my $case (@usage) {
        my ($name, $args) = @$case;
        my ($rc, $out, $err) = ctl(@$args);
        is($rc, 2, "$name: exit 2");
        like($err, qr/^portalctl: /, "$name: a message on stderr");
    }
    is(state_of(), $state, 'after all of them, the state store is exactly as it was');
}
{
    my $fresh = "$tmp/fresh";
    my ($rc) = ctl_in($fresh, qw(cert import), $host, '--cert', "$pki/expired.crt", '--key', "$pki/expired.key");
    is($rc, 2, 'a refused import into a missing data directory: exit 2');
    ok(!-e $fresh, 'and nothing was created');
    ($rc, my $out, my $err) = ctl_in($fresh, qw(cert import), $host, '--cert', "$pki/ec.crt", '--key', "$pki/ec.key");
    is($rc, 0, 'cert import creates the data directory and the state store') or diag $err;
    is(mode_of("$fresh/state"), '0700', 'state/ 0700 there too');
    is(mode_of("$fresh/state/data.mdb"), '0600', 'data.mdb 0600 there too');
}

# --- import-list: many in one transaction ---------------------------------------------------
{
    # 20 certificates for 20 names (one CA-signed leaf each), and the list naming them, with
    # relative paths (from the list's directory), a comment and a blank line
    my @names = map { "bulk$_.example" } 1 .. 20;
    ca_signed("bulk$_", "bulk$_.example") for 1 .. 20;
    my $list = "$pki/list.txt";
    spew($list, "# host certificate key\n\n"
        . join('', map { "bulk$_.example  bulk$_.crt\tbulk$_.key\n" } 1 .. 20));
    my $before = state_of();

    # bad lines: exit 2, the line named, nothing written
    my @bad = (
        ['a line with two fields', "bulk1.example bulk1.crt\n", qr/list-bad\.txt, line 1: expected HOST CERT_FILE KEY_FILE/],
        ['a key that does not match', "bulk1.example bulk1.crt bulk2.key\n", qr/line 1: .*bulk2\.key.*(?:match|belong)/i],
        ['a certificate for another name', "bulk1.example bulk2.crt bulk2.key\n", qr/line 1: .*(?:cover|not valid for|does not name)/i],
        ['a bad host', "-bad-.example bulk1.crt bulk1.key\n", qr/line 1: HOST: /],
        ['a missing file', "bulk1.example nothere.crt bulk1.key\n", qr/line 1: --cert: cannot read .*nothere\.crt/],
        ['the same name and key type twice', "bulk1.example bulk1.crt bulk1.key\nBULK1.example bulk1.crt bulk1.key\n",
            qr/line 2: a second ecdsa certificate for "bulk1\.example" \(line 1\)/],
    );
    for my $case (@bad) {
        my ($name, $text, $why) = @$case;
        spew("$pki/list-bad.txt", $text);
        my ($rc, undef, $err) = ctl(qw(cert import-list), "$pki/list-bad.txt");
        is($rc, 2, "import-list with $name: exit 2");
        like($err, $why, "$name: the message names the line and says why") or diag $err;
    }
    is(state_of(), $before, 'after the bad lists, the state store is as it was');

    my ($rc, $out, $err) = ctl(qw(cert import-list), $list);
    is($rc, 0, 'import-list of 20 certificates: exit 0') or diag $err;
    is($out, "imported 20 certificates\n", 'it says how many');
    my %listed = map { $_->{host} => $_ } @{list_json()};
    is(scalar(grep { $listed{$_} } @names), 20, 'cert list has the 20 names');
    is(show_json('bulk7.example')->{pairs}[0]{serial}, x509_field("$pki/bulk7.crt", '-serial'),
        'each with its own certificate (serial of bulk7)');
    my %gens = map { $listed{$_}{generation} => 1 } @names;
    is(scalar keys %gens, 20, 'each record has its own generation');
    is(mode_of("$data/state/data.mdb"), '0600', 'data.mdb still 0600');

    ($rc, $out) = ctl(qw(--json cert import-list), $list);
    is($rc, 0, 'the same list again (replaces each pair): exit 0');
    is_deeply($json->decode($out), { imported => 20, replaced_acme => 0 }, '--json says how many');
    ctl_ok(qw(cert rm), $_) for @names;
}

# --- rm --------------------------------------------------------------------------------------
{
    my $gen = show_json($host)->{generation};
    ctl_ok(qw(cert rm), $host, qw(--type rsa));
    my $s = show_json($host);
    is_deeply([map { $_->{key_type} } @{$s->{pairs}}], ['ecdsa'], 'rm --type rsa removes only that pair');
    cmp_ok($s->{generation}, '>', $gen, 'with a new generation');
    my ($rc, $out, $err) = ctl(qw(cert rm), $host, qw(--type rsa));
    is($rc, 1, 'rm --type rsa again: exit 1');
    like($err, qr/^portalctl: no rsa certificate for "\Q$host\E"/, 'saying so');

    ctl_ok(qw(cert rm chain.example --type ecdsa));
    ($rc, $out, $err) = ctl(qw(cert show chain.example));
    is($rc, 1, 'rm --type of the last pair removes the record');
    like($err, qr/^portalctl: no certificate for "chain\.example"/, 'show then says no certificate');

    ctl_ok(qw(cert rm PORTAL.yourwebsite.com));
    ($rc) = ctl(qw(cert show), $host);
    is($rc, 1, 'rm HOST removes the record');
    for my $cmd ([qw(rm)], [qw(rm --type ecdsa)], [qw(show)]) {
        ($rc, $out, $err) = ctl('cert', $cmd->[0], 'gone.example', @{$cmd}[1 .. $#$cmd]);
        is($rc, 1, "cert @$cmd of an unknown host: exit 1");
        like($err, qr/^portalctl: no certificate for "gone\.example"/, "cert $cmd->[0]: says no certificate");
    }
    is_deeply([map { $_->{host} } @{list_json()}], ['a.example.net'], 'list: what is left');
    my $d = $json->decode(ctl_ok(qw(--json domain show), $host));
    is($d->{host}, $host, 'cert rm leaves the portal domain alone');
}

# --- no key material in anything portalctl printed ------------------------------------------
{
    ok(length $printed > 1000, 'a fair amount of output was checked');
    unlike($printed, qr/PRIVATE KEY/, 'no "PRIVATE KEY" in anything portalctl printed');
    my @lines;
    for my $file (glob "$pki/*.key") {
        push @lines, grep { length >= 16 && !/^-----/ && !/:/ } split /\n/, slurp($file);
    }
    ok(@lines > 50, 'the key files have lines to look for');
    my @found = grep { index($printed, $_) >= 0 || index($printed, substr($_, 0, 16)) >= 0 } @lines;
    is_deeply(\@found, [], 'no line of a key file, nor its first 16 characters, in the output');
}

done_testing;
