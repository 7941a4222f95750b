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
    return ($? >> 8, slurp("$tmp/stdout"), slurp("$tmp/stderr"));
}

1;
