# What both benchmark summaries (summarise.pl, tls-summarise.pl) compute and print alike.
package BenchStats;
use strict;
use warnings;
use Exporter 'import';
our @EXPORT = qw(median quantile paired_ratio paired_ratios paired_ratio_spread fmt size
                 thousands);

sub median {
    my @v = sort { $a <=> $b } @_;
    return undef unless @v;
    return @v % 2 ? $v[$#v / 2] : ($v[@v / 2 - 1] + $v[@v / 2]) / 2;
}

# The Q-quantile (0..1) of a list, linearly interpolated.
sub quantile {
    my ($q, @v) = @_;
    @v = sort { $a <=> $b } @v;
    return undef unless @v;
    my $i = $q * $#v;
    my $lo = int $i;
    return $lo == $#v ? $v[$lo] : $v[$lo] + ($i - $lo) * ($v[$lo + 1] - $v[$lo]);
}

# key(s) / key(b) of each repetition: the scenarios take turns within each repetition, so
# pairing them cancels most of a shared machine's drift.
# BY_REP: { rep => { scenario => { key => value } } }.
sub paired_ratios {
    my ($by_rep, $s, $b, $key) = @_;
    my @r;
    for my $rep (keys %$by_rep) {
        my ($x, $y) = ($by_rep->{$rep}{$s}, $by_rep->{$rep}{$b});
        push @r, $x->{$key} / $y->{$key} if $x && $y && $y->{$key} > 0;
    }
    return @r;
}

# Their median.
sub paired_ratio { median(paired_ratios(@_)) }

# Their median, 25th and 75th percentile.
sub paired_ratio_spread {
    my @r = paired_ratios(@_);
    return (median(@r), quantile(0.25, @r), quantile(0.75, @r));
}

sub fmt { my ($f, $v) = @_; defined $v ? sprintf($f, $v) : '-' }

# 10000 -> "10k", 1000000 -> "1M"; anything else as it is.
sub size {
    my $n = shift // 0;
    return $n >= 1e6 && $n % 1e6 == 0 ? ($n / 1e6) . 'M'
         : $n >= 1e3 && $n % 1e3 == 0 ? ($n / 1e3) . 'k' : $n;
}

sub thousands { my $n = sprintf '%.0f', shift; 1 while $n =~ s/^(\d+)(\d{3})/$1,$2/; $n }

1;
