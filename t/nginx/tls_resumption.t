# A TLS session (ticket or session cache) obtained with SNI A and offered again with SNI B,
# both portal domains on one portal_ssl server: whatever OpenSSL does with it, a request for
# host B on that connection never gets A's context, and one for host A never gets B's.
#
# What OpenSSL 3.0 does (nginx 1.22), and what the module makes of it:
# - TLS 1.3: the session is resumed; the SNI of the new handshake (B) is the connection's
#   server name, so Host B gets B's context and Host A gets 421.
# - TLS 1.2 (ticket or session ID): the session is resumed; the server name stays the one
#   of the session (A), so Host B gets 421 and Host A gets A's context.
# The test asserts the rule, and notes what happened.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use Test::More;
use PortalTest;

my $t = PortalTest->new;
$t->start_upstream;
$t->ctl_ok('init');
$t->ctl_ok(qw(domain add portal.alpha.example --brand Alpha));
$t->ctl_ok(qw(domain add portal.beta.example --brand Beta));

my $fallback = $t->make_cert('fallback.invalid', self_signed => 1);
my $alpha = $t->make_cert('portal.alpha.example');
my $beta = $t->make_cert('portal.beta.example');
$t->import_cert('portal.alpha.example', $alpha);
$t->import_cert('portal.beta.example', $beta);

# PORT: session tickets; PORT2: no tickets, the session cache only (TLS 1.3: stateful tickets)
my $server = <<"EOF2";
    server {
        listen 127.0.0.1:%%PORT%% ssl default_server;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_certificate $fallback->{cert};
        ssl_certificate_key $fallback->{key};
        ssl_session_cache shared:portal_ssl:1m;
        ssl_session_tickets on;
        portal_ssl on;
        portal on;
        location / {
            proxy_pass http://%%UPSTREAM%%;
        }
    }
EOF2
$t->write_conf($server . ($server =~ s/%%PORT%%/%%PORT2%%/r
    =~ s/ssl_session_tickets on/ssl_session_tickets off/r), workers => 1);
$t->start;

my $session = $t->tmp . '/session';

# GET / with Host HOST over s_client with SNI SNI, saving the session (out) or offering one
# (in). Returns { mode => New|Reused, version, status, brand, serial (of the certificate
# the client holds for this connection) }.
sub s_get {
    my ($sni, $host, $port, $proto, $in_out, @more) = @_;
    my ($rc, $out) = $t->s_client(
        "GET / HTTP/1.1\r\nHost: $host\r\nConnection: close\r\n\r\n", { port => $port },
        $proto, '-servername', $sni, '-ign_eof',
        ($in_out eq 'out' ? ('-sess_out', $session) : ('-sess_in', $session)), @more);
    my %r;
    @r{qw(mode version)} = $out =~ /^(New|Reused), (TLSv[\d.]+)/m;
    ($r{status}) = $out =~ m{^HTTP/1\.1 (\d{3})}m;
    ($r{brand}) = $out =~ /^x-portal-brand: (.*)$/m;
    $r{serial} = $t->pem_serial($out);
    $r{$_} //= '-' for qw(mode version status brand serial);
    return \%r;
}

sub describe {
    my ($r) = @_;
    my %name = ($alpha->{serial} => 'alpha', $beta->{serial} => 'beta');
    return "$r->{mode} $r->{version}, the client holds "
        . ($name{ $r->{serial} } // $r->{serial}) . "'s certificate, status $r->{status}, "
        . "brand $r->{brand}";
}

for my $case (
    ['TLS 1.3, session ticket', $t->port, '-tls1_3'],
    ['TLS 1.3, stateful ticket (session cache)', $t->port2, '-tls1_3'],
    ['TLS 1.2, session ticket', $t->port, '-tls1_2'],
    ['TLS 1.2, session ID (session cache)', $t->port2, '-tls1_2', '-no_ticket'],
) {
    my ($name, $port, $proto, @more) = @$case;

    my $first = s_get('portal.alpha.example', 'portal.alpha.example', $port, $proto, 'out', @more);
    is("$first->{mode} $first->{serial} $first->{status} $first->{brand}",
        "New $alpha->{serial} 200 Alpha", "$name: full handshake with SNI alpha: alpha's");
    ok(-s $session, "$name: the client saved the session");

    my $same = s_get('portal.alpha.example', 'portal.alpha.example', $port, $proto, 'in', @more);
    is("$same->{mode} $same->{status} $same->{brand}", 'Reused 200 Alpha',
        "$name: the session resumes with SNI alpha (so the next check means something)");

    # the session of alpha, offered with SNI beta, for host beta
    my $cross = s_get('portal.beta.example', 'portal.beta.example', $port, $proto, 'in', @more);
    note "$name: alpha's session, SNI beta, Host beta: " . describe($cross);
    isnt($cross->{brand}, 'Alpha', "$name: alpha's session, Host beta: never alpha's brand");
    ok($cross->{status} eq '421' || ($cross->{status} eq '200' && $cross->{brand} eq 'Beta'),
        "$name: alpha's session, Host beta: 421, or beta's own context")
        or diag describe($cross);
    if ($cross->{mode} eq 'New') {
        is($cross->{serial}, $beta->{serial},
            "$name: resumption refused: the full handshake presents beta's certificate");
    }

    # the same session, for host alpha with SNI beta
    my $back = s_get('portal.beta.example', 'portal.alpha.example', $port, $proto, 'in', @more);
    note "$name: alpha's session, SNI beta, Host alpha: " . describe($back);
    isnt($back->{brand}, 'Beta', "$name: alpha's session, SNI beta, Host alpha: never beta's brand");
    ok($back->{status} eq '421' || ($back->{status} eq '200' && $back->{brand} eq 'Alpha'),
        "$name: alpha's session, SNI beta, Host alpha: 421, or alpha's own context")
        or diag describe($back);
    unlink $session;
}

is_deeply([$t->crash_lines], [], 'no crash in error.log');

done_testing;
