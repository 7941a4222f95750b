# Disk full during `portalctl import`: the data directory on an 8 MiB tmpfs (mounted here:
# the tests run as root), holding 50 domains; an import of 100,000 domains does not fit.
# portalctl exits 1 with a message that says why, and the snapshot still holds exactly the
# old data, for portalctl and for a running nginx; a small change still commits. Once the
# space is there again (the tmpfs remounted larger), the same import succeeds.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use Time::HiRes qw(time);
use JSON::PP;
use PortalTest;

# A write to a connection that nginx closed (a worker killed) fails; it does not kill the test
# or its clients.
$SIG{PIPE} = 'IGNORE';

plan skip_all => 'needs root (mount -t tmpfs)' unless $> == 0;

my $t = PortalTest->new;
my $mnt = $t->tmp . '/small';
mkdir $mnt or die "mkdir $mnt: $!";
my ($mrc, undef, $merr) = $t->run('mount', '-t', 'tmpfs', '-o', 'size=8m,mode=0755', 'tmpfs', $mnt);
plan skip_all => "mount -t tmpfs is not permitted here: $merr" if $mrc != 0;
my $mounted = 1;
# at the end, before the temporary directory goes: nginx stopped first (it holds files there)
END { $t->cleanup if $t; system("umount", $mnt) if $mounted }

# The data directory on the tmpfs, owned by the worker user as PortalTest's own.
my $data = "$mnt/data";
mkdir $data or die "mkdir $data: $!";
chown PortalTest->worker_ids, $data or die "chown: $!";
$t->{data} = $data;    # PortalTest's ctl and write_conf use this directory
$t->start_upstream;
$t->ctl_ok('init');

my @old = map { { host => "d$_.full.example", brand => "Old $_", customer_limit => "$_.00",
                  access => ['cdr'] } } 1 .. 50;
my $old_file = $t->tmp . '/old.json';
PortalTest::spew($old_file, encode_json({ domains => \@old }));
$t->ctl_ok('import', $old_file);
my $export_before = $t->ctl_ok('export');
my $list_before = $t->ctl_ok('domain', 'list');
is(scalar(() = $export_before =~ /"host"/g), 50, 'before: 50 domains');

$t->write_conf(<<'EOF2', workers => 2);
    server {
        listen 127.0.0.1:%%PORT%%;
        portal on;
        location / { proxy_pass http://%%UPSTREAM%%; }
    }
EOF2
$t->start;
is($t->seen($t->get('d7.full.example', '/'))->{'x-portal-brand'}, 'Old 7', 'nginx serves the old data');

# 100,000 domains with long brands: ~20 MB of records, more than the 8 MiB of the tmpfs (the
# JSON file itself lives outside it)
my $big = $t->tmp . '/big.json';
{
    open my $fh, '>', $big or die "$big: $!";
    print $fh '{"domains":[';
    for my $i (1 .. 100_000) {
        print $fh ',' if $i > 1;
        print $fh qq({"host":"n$i.full.example","brand":"New brand number $i with some more words in it",)
            . qq("access":["cdr","rate_card","balance"],"customer_limit":"$i.00"});
    }
    print $fh ']}';
    close $fh or die "$big: $!";
}
my ($df_before) = (split ' ', (split /\n/, ($t->run('df', '-k', $mnt))[1])[1])[3];
my $t0 = time;
my ($rc, $out, $err) = $t->ctl('import', $big);
my $secs = time - $t0;
is($rc, 1, 'import of 100,000 domains on a full disk: exit 1');
like($err, qr/^portalctl: mdb_txn_commit: /m, 'a message: the commit failed')
    or diag "stdout: $out\nstderr: $err";
# LMDB 0.9.24 turns a short write (the disk filling in the middle of pwritev) into EIO; the
# message says what the free space shows
like($err, qr/the file system holding "\Q$data\E\/snapshot" is full \(\d+ KiB free\); nothing was written/,
    'the message says the disk is full') or diag $err;
unlike($err, qr/imported/, 'and does not claim to have imported anything');
note "portalctl import: exit $rc after ${secs}s: $err";

is($t->ctl_ok('export'), $export_before, 'export: exactly the old data');
is($t->ctl_ok('domain', 'list'), $list_before, 'domain list: the same');
my ($src, $one) = $t->ctl('domain', 'show', 'n1.full.example');
is($src, 1, 'no new domain is there');
is($t->seen($t->get('d7.full.example', '/'))->{'x-portal-brand'}, 'Old 7',
    'nginx still serves the old data');
is($t->get('n1.full.example', '/')->{status}, 421, 'and none of the new');

# a small change still fits: the space the failed import took in data.mdb is reused
my ($src2, undef, $err2) = $t->ctl('domain', 'set', 'd7.full.example', '--brand', 'Changed 7');
is($src2, 0, 'after the failure, a small change commits') or diag $err2;
is($t->seen($t->get('d7.full.example', '/'))->{'x-portal-brand'}, 'Changed 7',
    'and nginx serves it');

# room again: the same import goes through
my ($rrc, undef, $rerr) = $t->run('mount', '-o', 'remount,size=64m', $mnt);
SKIP: {
    skip "mount -o remount: $rerr", 3 if $rrc != 0;
    my ($irc, $iout, $ierr) = $t->ctl('import', $big);
    is($irc, 0, 'with room again (tmpfs remounted with 64 MiB), the same import succeeds')
        or diag $ierr;
    like($iout, qr/^imported 100000 portal domains: 100000 added/, 'all 100,000 added');
    is($t->seen($t->get('n99999.full.example', '/'))->{'x-portal-brand'},
        'New brand number 99999 with some more words in it', 'nginx serves them');
}

my @deaths = grep { /exited on signal|\[(?:alert|crit|emerg)\]/ } split /\n/, $t->error_log;
is_deeply(\@deaths, [], 'no worker died, nothing at alert or above in error.log');
$t->stop;

my ($df_after) = (split ' ', (split /\n/, ($t->run('df', '-k', $mnt))[1])[1])[3];
note "tmpfs: ${df_before} KiB free before the import, ${df_after} KiB after; data.mdb "
    . (-s "$data/snapshot/data.mdb") . ' bytes';
done_testing;
