package PortalCtl;

# portalctl from a CLI test: runs it in a temporary data directory and captures what it
# prints. PORTALCTL (default build/portalctl) is relative to the repository root.

use strict;
use warnings;

use Cwd qw(abs_path);
use Encode qw(encode_utf8);
use Exporter qw(import);
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use POSIX ();

our @EXPORT = qw(portalctl_path tmp_dir slurp spew run_ctl);

my $root = abs_path(dirname(__FILE__) . '/../..');
my $tmp = tempdir('portalctl-t-XXXXXX', TMPDIR => 1, CLEANUP => 1);

sub portalctl_path {
    my $p = $ENV{PORTALCTL} // 'build/portalctl';
    return $p =~ m{^/} ? $p : "$root/$p";
}

# One temporary directory per test file, removed at its end.
sub tmp_dir { return $tmp }

sub slurp { my ($f) = @_; open my $fh, '<:raw', $f or return undef; local $/; my $s = <$fh>; return $s // '' }
sub spew { my ($f, $s) = @_; open my $fh, '>:raw', $f or die "$f: $!"; print $fh $s; close $fh }

# Runs portalctl ARGS (stdin from STDIN_TEXT if given): (exit status, stdout, stderr).
sub run_ctl {
    my ($stdin_text, @args) = @_;
    my $portalctl = portalctl_path();
    spew("$tmp/stdin", $stdin_text // '');
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', "$tmp/stdin" or POSIX::_exit(126);
        open STDOUT, '>', "$tmp/stdout" or POSIX::_exit(126);
        open STDERR, '>', "$tmp/stderr" or POSIX::_exit(126);
        { exec $portalctl, map { encode_utf8($_) } @args }
        POSIX::_exit(127);
    }
    waitpid $pid, 0;
    my $status = $? >> 8;
    _check_sanitizer_output("$tmp/stderr");
    return ($status, slurp("$tmp/stdout"), slurp("$tmp/stderr"));
}

# The sanitizer run (scripts/test --asan): ASan writes its reports to its log_path, but gcc's
# UBSan prints to stderr; any report there fails the test file (exit status, at END) and is
# copied into PORTAL_CHECK_REPORTS.
my $reports = 0;
sub _check_sanitizer_output {
    my ($file) = @_;
    my $text = slurp($file) // return;
    return unless $text =~ /: runtime error: |ERROR: (?:Address|Leak|UndefinedBehavior)Sanitizer/;
    $reports++;
    print STDERR "# $0: sanitizer report from portalctl:\n", map { "#   $_\n" } split /\n/, $text;
    if (my $dir = $ENV{PORTAL_CHECK_REPORTS}) {
        (my $name = $0) =~ s{.*?\bt/}{};
        $name =~ s{[^\w.-]+}{_}g;
        spew("$dir/$name.portalctl-stderr-$reports", $text) if -d $dir;
    }
}

END {
    $? ||= 1 if $reports;
}

1;
