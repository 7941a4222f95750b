# An import of 100,000 portal domains is one transaction: while a client keeps asking for two
# hosts of the import, every answer is the complete state before it or the complete state
# after it, never a mix and never back; afterwards every imported host resolves. An import
# that fails changes nothing.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use Time::HiRes qw(time sleep);
use PortalTest;

my $N = 100_000;
my $t = PortalTest->new;
$t->start_upstream;
$t->ctl_ok('init');

# The two watched hosts sit at both ends of the import, in file order and in key order.
my ($A, $B) = ('a-first.import.example', 'z-last.import.example');
$t->ctl_ok('domain', 'add', $A, '--brand', 'Old A', '--access', 'cdr');

$t->write_conf(<<'EOF2', workers => 2);
    server {
        listen 127.0.0.1:%%PORT%%;
        portal on;
        location / {
            proxy_pass http://%%UPSTREAM%%;
        }
    }
EOF2
$t->start;

sub host_of { sprintf 'd%06d.import.example', $_[0] }
sub brand_of { "Brand $_[0]" }

# JSON written by hand: 100,000 records in well under a second.
sub import_file {
    my ($file, $last) = @_;
    open my $fh, '>', $file or die "$file: $!";
    print $fh qq({"domains":[\n);
    print $fh qq({"host":"$A","brand":"New A","customer_signup":true,"carrier_signup":false,)
        . qq("customer_limit":"100.00","access":["rate_card","balance"],"status":"active"},\n);
    for my $i (1 .. $N - 2) {
        my $cs = $i % 2 ? 'true' : 'false';
        print $fh qq({"host":"), host_of($i), qq(","brand":"), brand_of($i),
            qq(","customer_signup":$cs,"carrier_signup":false,"customer_limit":"$i.00",)
            . qq("access":["cdr"],"status":"active"},\n);
    }
    print $fh $last, "\n]}\n";
    close $fh or die "$file: $!";
}

my $good_last = qq({"host":"$B","brand":"New B","customer_signup":false,"carrier_signup":true,)
    . qq("customer_limit":"0.00","access":["balance"],"status":"active"});
import_file($t->tmp . '/good.json', $good_last);
(my $bad_last = $good_last) =~ s/"host":"\Q$B\E"/"host":"bad..host.example"/;
import_file($t->tmp . '/bad.json', $bad_last);

# what a response says: "A old", "A new", "B old", "B new", or "mixed: ..."
my %states = (
    "$A 200 Old A|cdr"               => 'old',
    "$A 200 New A|balance,rate_card" => 'new',
    "$B 421 |"                       => 'old',
    "$B 200 New B|balance"           => 'new',
);
sub state_of {
    my ($host) = @_;
    my $res = $t->get($host, '/');
    my $seen = PortalTest::from_upstream($res) ? $t->seen($res) : {};
    my $key = "$host $res->{status} " . ($seen->{'x-portal-brand'} // '') . '|'
        . ($seen->{'x-portal-access'} // '');
    return ($states{$key} // 'mixed', $key);
}

# A failing import (its last record has an invalid hostname) changes nothing at all.
my ($rc, $out, $err) = $t->ctl('import', $t->tmp . '/bad.json');
is($rc, 2, 'import with an invalid record: exit 2') or diag "$out$err";
is((state_of($A))[0], 'old', "after the failed import: $A unchanged");
is((state_of($B))[0], 'old', "after the failed import: $B still unknown");
is($t->get(host_of(777), '/')->{status}, 421, 'after the failed import: no record of it is served');

# The client loop: A, B, A, B, ... one line per response, until told to stop.
my $log = $t->tmp . '/loop.log';
my $stop = $t->tmp . '/loop.stop';
my $loop = fork // die "fork: $!";
if ($loop == 0) {
    open my $fh, '>', $log or POSIX::_exit(1);
    $fh->autoflush(1);
    my $deadline = time + 120;
    while (!-e $stop && time < $deadline) {
        for my $host ($A, $B) {
            my ($state, $key) = state_of($host);
            printf $fh "%.6f %s %s\n", time, $state, $key;
        }
    }
    close $fh;
    POSIX::_exit(0);
}

sub lines_logged { my $s = PortalTest::slurp($log) // ''; return () = $s =~ /\n/g }
sub wait_lines {
    my ($n) = @_;
    my $deadline = time + 30;
    sleep 0.01 while lines_logged() < $n && time < $deadline;
}

wait_lines(100);
my $t0 = time;
($rc, $out, $err) = $t->ctl('import', $t->tmp . '/good.json');
my $t1 = time;
is($rc, 0, "import of $N domains: exit 0") or diag "$out$err";
my $after = lines_logged();
wait_lines($after + 100);
PortalTest::spew($stop, '');
waitpid $loop, 0;

my @resp = map { [split / /, $_, 3] } split /\n/, PortalTest::slurp($log);
my @mixed = grep { $_->[1] eq 'mixed' } @resp;
is(scalar @mixed, 0, 'every response is the old or the new state of its host')
    or diag join "\n", map { $_->[2] } @mixed[0 .. ($#mixed < 4 ? $#mixed : 4)];

my $first_new = (grep { $resp[$_][1] eq 'new' } 0 .. $#resp)[0];
my @back = defined $first_new ? grep { $_->[1] eq 'old' } @resp[$first_new .. $#resp] : ();
is(scalar @back, 0, 'once one host showed the new state, no response showed the old state again')
    or diag "first new state: $resp[$first_new][2]\nold after it:\n"
        . join "\n", map { $_->[2] } @back[0 .. ($#back < 4 ? $#back : 4)];
ok(scalar(grep { $_->[1] eq 'old' } @resp) >= 100, 'the loop saw the old state before the import');
ok(scalar(grep { $_->[1] eq 'new' } @resp) >= 100, 'and the new state after it');
my $during = grep { $_->[0] >= $t0 && $_->[0] <= $t1 } @resp;
note sprintf 'import took %.2f s; %d responses during it, %d in all', $t1 - $t0, $during,
    scalar @resp;

# every imported host resolves: a random sample, with its own values
srand 2;
my @wrong;
for my $i (map { 1 + int rand($N - 2) } 1 .. 200) {
    my $res = $t->get(host_of($i), '/');
    my $seen = $t->seen($res);
    my $got = join '|', map { $seen->{$_} // '-' } qw(x-portal-brand x-portal-customer-limit
        x-portal-customer-signup x-portal-access);
    my $want = join '|', brand_of($i), "$i.00", $i % 2 ? 1 : 0, 'cdr';
    push @wrong, host_of($i) . ": $got (want $want)" if $got ne $want;
}
is_deeply(\@wrong, [], '200 random imported hosts: each served with its own record');

is_deeply([$t->crash_lines], [], 'no crash, no reload');

done_testing;
