# A data directory with no state store (one made before certificates existed) cannot serve
# portal_ssl: nginx -t says so, naming the portal_ssl line and the way out; "portalctl init"
# adds the state store and keeps the portal domains; then nginx starts and serves.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../lib";
use File::Path qw(remove_tree);
use Test::More;
use PortalTest;

my $t = PortalTest->new;
$t->start_upstream;
$t->ctl_ok('init');
$t->ctl_ok(qw(domain add portal.alpha.example --brand Alpha));
remove_tree($t->data . '/state');
ok(!-e $t->data . '/state', 'the data directory has no state store');

my $fallback = $t->make_cert('fallback.invalid', self_signed => 1);
my $alpha = $t->make_cert('portal.alpha.example');

$t->write_conf(<<"EOF2", workers => 1);
    server {
        listen 127.0.0.1:%%PORT%% ssl default_server;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_certificate $fallback->{cert};
        ssl_certificate_key $fallback->{key};
        portal_ssl on;
        portal_ssl_unknown reject;
        portal on;
        location / {
            proxy_pass http://%%UPSTREAM%%;
        }
    }
EOF2
{
    my ($rc, $out) = $t->nginx_t;
    my $line = $t->conf_line(qr/portal_ssl on;/);
    isnt($rc, 0, 'no state store: nginx -t fails');
    like($out, qr/\[emerg\] .*has no state: .*\/state" cannot be opened \(create it with "portalctl --data \S+ init"\).* in \S+:$line$/m,
        'an [emerg] names the state store, portalctl init and the portal_ssl line');
}

$t->ctl_ok('init');
ok(-e $t->data . '/state/data.mdb', 'portalctl init on an existing data directory adds it');
like($t->ctl_ok(qw(domain show portal.alpha.example)), qr/Alpha/, 'and keeps the portal domains');

$t->start;
my @workers = $t->worker_pids;

sub served {
    my $hs = $t->tls_handshake(sni => $_[0]);
    return $hs->{ok} ? $hs->{serial} : "failed: $hs->{error}";
}
like(served('portal.alpha.example'), qr/^failed: .*unrecognized name/,
    'a portal domain with no certificate yet, reject mode: rejected');
like(served('stranger.example'), qr/^failed: .*unrecognized name/,
    'an unknown name, reject mode: rejected');

$t->import_cert('portal.alpha.example', $alpha);
is(served('portal.alpha.example'), $alpha->{serial},
    'after cert import: the certificate is served from the next handshake');
is($t->seen($t->https_get('portal.alpha.example', 'portal.alpha.example', '/'))->{'x-portal-brand'},
    'Alpha', 'and the request is served');

is_deeply([$t->worker_pids], \@workers, 'the same worker: no reload, no crash');
is_deeply([$t->crash_lines], [], 'no crash in error.log');

done_testing;
