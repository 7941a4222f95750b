# A record that does not decode (damaged bytes, an unknown version, cut short) is treated as
# absent: that host gets the unknown-host answer, error.log says so once, and every other
# portal domain is served as before.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use PortalTest;

my $t = PortalTest->new;
$t->start_upstream;
$t->ctl_ok('init');
$t->ctl_ok(qw(domain add ok.example --brand OK --access cdr));
$t->ctl_ok(qw(domain add was-fine.example --brand Fine));

# Raw values written under the snapshot's "domains" database with lmdb-utils' mdb_load
# (-T: one line key, one line value, \xx is a byte).
my %damaged = (
    'damaged.example'   => '\01\ff\ffgarbage',               # unknown flags, trailing junk
    'future.example'    => '\02\00\00\00\00\03Fut\00',        # version 2 of a valid record
    'truncated.example' => '\01\00\00\95',                    # cut inside a varint
    'was-fine.example'  => '\01\00',                          # a good record overwritten
);
my $input = join '', map { "$_\n$damaged{$_}\n" } sort keys %damaged;
open my $load, '|-', 'mdb_load', '-s', 'domains', '-T', $t->data . '/snapshot'
    or die "mdb_load: $!";
print $load $input;
close $load or die "mdb_load failed: $? (is lmdb-utils installed?)";

$t->write_conf(<<'EOF2', workers => 1);
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

for my $host (sort keys %damaged) {
    my @status = map { $t->get($host, '/')->{status} } 1 .. 5;
    is("@status", '421 421 421 421 421', "$host: unknown host, 5 times out of 5");
    is_deeply($t->portal_headers($t->get($host, '/open/')), {},
        "$host: with portal_unknown_host off, no context at all");
}

is($t->seen($t->get('ok.example', '/'))->{'x-portal-brand'}, 'OK', 'a good record next to them: served');

my @log = split /\n/, $t->error_log;
for my $host (sort keys %damaged) {
    my @lines = grep { /portal domain "\Q$host\E".*treated as unknown/ } @log;
    is(scalar @lines, 1, "error.log: one line about $host after 6 requests")
        or diag join "\n", @lines;
}
like($t->error_log, qr/\[error\] .*portal domain "damaged\.example": record does not decode/,
    'error.log: the line is an [error] saying the record does not decode');

# portalctl repairs it: the host is served again at the next request
$t->ctl_ok(qw(domain rm damaged.example));
$t->ctl_ok(qw(domain add damaged.example --brand Repaired));
is($t->seen($t->get('damaged.example', '/'))->{'x-portal-brand'}, 'Repaired',
    'rewritten with portalctl: served again');

is_deeply([$t->worker_pids], \@workers, 'the same worker throughout: no crash');
is_deeply([$t->crash_lines], [], 'no crash in error.log');

done_testing;
