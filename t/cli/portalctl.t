# portalctl as an operator uses it, in a temporary data directory: every command's happy path,
# every kind of bad input refused with exit 2, a message naming the field and the value, and
# the snapshot left exactly as it was; imports all or nothing; export and import round trip.
#
# Environment: PORTALCTL (default build/portalctl, relative to the repository root).
use strict;
use warnings;
no warnings 'qw';    # commas inside qw() are section lists here
use utf8;
use FindBin;
use lib "$FindBin::Bin/../lib";
use JSON::PP;
use Test::More;
use PortalCtl;

my $portalctl = portalctl_path();
-x $portalctl or plan skip_all => "no portalctl at $portalctl: build it, or set PORTALCTL";

my $tmp = tmp_dir();
my $json = JSON::PP->new->utf8->canonical;

my $data = "$tmp/data";
sub ctl { return run_ctl(undef, '--data', $data, @_) }
sub ctl_ok {
    my ($rc, $out, $err) = ctl(@_);
    die "portalctl @_: exit $rc: $err" if $rc != 0;
    return $out;
}
sub export_of { my ($dir) = @_; my ($rc, $out) = run_ctl(undef, '--data', $dir, 'export'); return $out }
sub show_json { return $json->decode(ctl_ok('--json', 'domain', 'show', $_[0])) }

my $iso = qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;

# --- init -----------------------------------------------------------------------------------
{
    my ($rc, $out, $err) = ctl('domain', 'list');
    is($rc, 1, 'list before init: exit 1');
    like($err, qr/^portalctl: .*\Q$data\E/, 'and the message names the data directory');
    ok(!-e $data, 'and nothing was created');
}
ctl_ok('init');
ok(-f "$data/snapshot/data.mdb", 'init creates the data directory and the snapshot');
is(ctl_ok('--json', 'domain', 'list'), "[]\n", 'the new snapshot is empty');
ctl_ok('init');
pass('init again on an existing snapshot is fine');

SKIP: {
    skip 'init --owner needs root', 3 unless $> == 0;
    my @nobody = getpwnam('nobody') or skip 'no user "nobody"', 3;
    my $dir = "$tmp/owned";
    my ($rc, $out, $err) = run_ctl(undef, '--data', $dir, 'init', '--owner', 'nobody');
    is($rc, 0, 'init --owner nobody: exit 0') or diag $err;
    is_deeply([map { (stat $_)[4] } $dir, "$dir/snapshot/data.mdb", "$dir/snapshot/lock.mdb"],
        [($nobody[2]) x 3], 'the data directory and the snapshot files are owned by nobody');
    run_ctl(undef, '--data', $dir, 'domain', 'add', 'later.example', '--brand', 'Later');
    is((stat "$dir/snapshot/data.mdb")[4], $nobody[2], 'and stay so after a later write by root');
}

# --- add, show, list ----------------------------------------------------------------------
ctl_ok(qw(domain add portal.yourwebsite.com --brand), 'Your Website',
    qw(--customer-signup yes --carrier-signup no --customer-limit 100 --access cdr,rate_card,balance));
ctl_ok(qw(domain add plain.example --brand Plain));
{
    my $d = show_json('portal.yourwebsite.com');
    is_deeply({map { $_ => $d->{$_} } grep { !/^(created|updated)$/ } keys %$d}, {
        host => 'portal.yourwebsite.com', brand => 'Your Website',
        customer_signup => JSON::PP::true, carrier_signup => JSON::PP::false,
        customer_limit => '100.00', access => [qw(balance cdr rate_card)], status => 'active',
    }, 'add then show --json: every field as given (access sorted, limit with two places)');
    like($d->{created}, $iso, 'created is an ISO-8601 UTC time');
    is($d->{updated}, $d->{created}, 'updated = created for a new domain');

    my $p = show_json('plain.example');
    is_deeply([@$p{qw(customer_signup carrier_signup customer_limit access status)}],
        [JSON::PP::false, JSON::PP::false, '0.00', [], 'active'],
        'defaults: no sign-ups, limit 0.00, no access, active');

    my $text = ctl_ok(qw(domain show portal.yourwebsite.com));
    like($text, qr/^host: portal\.yourwebsite\.com\nbrand: Your Website\ncustomer_signup: yes\n(?x)
        carrier_signup:\ no\ncustomer_limit:\ 100\.00\naccess:\ balance,cdr,rate_card\n
        status:\ active\ncreated:\ \S+Z\nupdated:\ \S+Z\n$/, 'show: one "field: value" per line');
    like(ctl_ok(qw(domain show plain.example)), qr/^access: -$/m, 'show: no access is "-"');
}
{
    my ($rc, $out, $err) = ctl(qw(domain add portal.yourwebsite.com --brand Again));
    is($rc, 1, 'add of an existing host: exit 1');
    like($err, qr/"portal\.yourwebsite\.com" already exists/, 'saying it already exists');
    is(show_json('portal.yourwebsite.com')->{brand}, 'Your Website', 'and the domain is unchanged');
    ($rc) = ctl(qw(domain add PORTAL.YourWebsite.COM. --brand Again));
    is($rc, 1, 'the same host in capitals with a trailing dot is the same domain: exit 1');
}

# IDN input is stored as its A-label, and found by either form.
ctl_ok('domain', 'add', 'portal.bücher.example', '--brand', 'Bücher');
is(show_json('portal.xn--bcher-kva.example')->{brand}, 'Bücher', 'an IDN is stored as its A-label');
is(show_json('portal.bücher.example')->{host}, 'portal.xn--bcher-kva.example',
    'and show finds it by its U-label too');
unlike(export_of($data), qr/bücher/, 'the U-label is stored nowhere');

{
    my @rows = split /\n/, ctl_ok(qw(domain list));
    like($rows[0], qr/^host\s+brand\s+status\s+customer_signup\s+carrier_signup\s+customer_limit\s+access$/,
        'list: a header line');
    is(scalar @rows, 4, 'then one line per domain');
    like($rows[1], qr/^plain\.example\s+Plain\s+active\s+no\s+no\s+0\.00\s+-$/, 'list: a plain domain');
    like($rows[3], qr/^portal\.yourwebsite\.com\s+Your Website\s+active\s+yes\s+no\s+100\.00\s+balance,cdr,rate_card$/,
        'list: every column of a full domain');
    my $list = $json->decode(ctl_ok(qw(--json domain list)));
    is_deeply([map { $_->{host} } @$list],
        [qw(plain.example portal.xn--bcher-kva.example portal.yourwebsite.com)],
        'list --json: an array of every domain, by hostname');
    is_deeply($list->[2], show_json('portal.yourwebsite.com'), 'each in the shape of show --json');
    is(ctl_ok(qw(domain list --json)), ctl_ok(qw(--json domain list)), '--json is accepted after the command too');
}

# --- set, rm --------------------------------------------------------------------------------
{
    my $before = show_json('plain.example');
    sleep 1;    # so that updated moves
    ctl_ok(qw(domain set plain.example --carrier-signup yes --customer-limit=250.5 --status suspended));
    my $after = show_json('plain.example');
    is_deeply([@$after{qw(brand customer_signup carrier_signup customer_limit access status)}],
        ['Plain', JSON::PP::false, JSON::PP::true, '250.50', [], 'suspended'],
        'set changes only the fields given');
    is($after->{created}, $before->{created}, 'set keeps created');
    cmp_ok($after->{updated}, 'gt', $before->{updated}, 'and moves updated');

    ctl_ok(qw(domain set plain.example --access-add cdr,balance));
    is_deeply(show_json('plain.example')->{access}, [qw(balance cdr)], 'set --access-add grants sections');
    ctl_ok(qw(domain set plain.example --access-rm cdr));
    is_deeply(show_json('plain.example')->{access}, ['balance'], 'set --access-rm withdraws one');
    ctl_ok(qw(domain set plain.example --access), '');
    is_deeply(show_json('plain.example')->{access}, [], 'set --access "" withdraws all');
    ctl_ok(qw(domain set plain.example --brand), 'Plain Two', qw(--status active));
    is(show_json('plain.example')->{brand}, 'Plain Two', 'set --brand');
}
{
    ctl_ok(qw(domain add gone.example --brand Gone));
    ctl_ok(qw(domain rm GONE.example));
    my ($rc, $out, $err) = ctl(qw(domain show gone.example));
    is($rc, 1, 'rm removes the domain: show says exit 1');
    like($err, qr/"gone\.example" not found/, 'not found');
    for my $cmd ([qw(rm gone.example)], [qw(set gone.example --brand X)], [qw(show gone.example)]) {
        my ($rc, undef, $err) = ctl('domain', @$cmd);
        is($rc, 1, "domain $cmd->[0] of an unknown host: exit 1");
        like($err, qr/"gone\.example" not found/, "domain $cmd->[0]: says not found");
    }
}

# --- bad input on the command line: exit 2, the field and the value named, nothing written --
my $long_brand = 'b' x 129;
my @bad_args = (
    ['bad hostname', [qw(a..b.example --brand X)], qr/HOST: invalid hostname "a\.\.b\.example"/],
    ['hostname with a space', ['bad host.example', '--brand', 'X'], qr/HOST: invalid hostname "bad host\.example"/],
    ['one-label hostname', [qw(localhost --brand X)], qr/HOST: invalid hostname "localhost"/],
    ['brand with a control character', ['x.example', '--brand', "Tab\tBrand"], qr/--brand: invalid brand "Tab\\x09Brand": control characters/],
    ['brand over 128 bytes', ['x.example', '--brand', $long_brand], qr/--brand: invalid brand "$long_brand": longer than 128 bytes/],
    ['negative limit', [qw(x.example --brand X --customer-limit=-5)], qr/--customer-limit: invalid customer limit "-5": negative/],
    ['non-numeric limit', [qw(x.example --brand X --customer-limit lots)], qr/--customer-limit: invalid customer limit "lots"/],
    ['limit with three decimals', [qw(x.example --brand X --customer-limit 1.005)], qr/--customer-limit: invalid customer limit "1\.005"/],
    ['malformed section', [qw(x.example --brand X --access cdr,Rate-Card)], qr/--access: invalid access section "Rate-Card"/],
    ['empty section', [qw(x.example --brand X --access cdr,,balance)], qr/--access: invalid access section ""/],
    ['bad yes/no', [qw(x.example --brand X --customer-signup maybe)], qr/--customer-signup: invalid customer sign-up "maybe": must be yes or no/],
    ['bad carrier yes/no', [qw(x.example --brand X --carrier-signup 1)], qr/--carrier-signup: invalid carrier sign-up "1"/],
    ['bad status', [qw(x.example --brand X --status paused)], qr/--status: invalid status "paused"/],
);
{
    my $snapshot = export_of($data);
    for my $case (@bad_args) {
        my ($name, $args, $message) = @$case;
        my ($rc, $out, $err) = ctl('domain', 'add', @$args);
        is($rc, 2, "add with a $name: exit 2");
        like($err, qr/^portalctl: $message/, "add with a $name: the message names the field and the value");
        next if $name =~ /hostname/;
        my @set = @$args;
        $set[0] = 'portal.yourwebsite.com';
        ($rc, $out, $err) = ctl('domain', 'set', @set);
        is($rc, 2, "set with a $name: exit 2");
        like($err, qr/^portalctl: $message/, "set with a $name: the same message");
    }
    is(export_of($data), $snapshot, 'after all of them, the snapshot is exactly as it was');
}
{
    # The rule that needs the stored record (at most 64 sections) is checked inside the write.
    ctl_ok(qw(domain add many.example --brand Many --access), join ',', map { "s$_" } 1 .. 60);
    my $snapshot = export_of($data);
    my ($rc, $out, $err) = ctl(qw(domain set many.example --access-add), join ',', map { "t$_" } 1 .. 5);
    is($rc, 2, 'set --access-add past 64 sections: exit 2');
    like($err, qr/^portalctl: --access-add: invalid access: more than 64 sections/, 'saying so');
    is(export_of($data), $snapshot, 'and nothing written');
    ctl_ok(qw(domain rm many.example));
}

# --- usage errors: exit 2, never CLI11's own codes ------------------------------------------
{
    my $snapshot = export_of($data);
    my @usage = (
        ['no command', []],
        ['an unknown command', ['frobnicate']],
        ['domain without a subcommand', ['domain']],
        ['an unknown option', [qw(domain list --bogus)]],
        ['add without HOST', [qw(domain add --brand X)]],
        ['add without --brand', [qw(domain add y.example)]],
        ['an option without its value', [qw(domain add y.example --brand)]],
        ['set with nothing to change', [qw(domain set portal.yourwebsite.com)]],
        ['--access with --access-add', [qw(domain set portal.yourwebsite.com --access cdr --access-add balance)]],
        ['--access-add on add', [qw(domain add y.example --brand Y --access-add cdr)]],
        ['two hosts', [qw(domain show a.example b.example)]],
        ['import without FILE', ['import']],
    );
    for my $case (@usage) {
        my ($name, $args) = @$case;
        my ($rc, $out, $err) = ctl(@$args);
        is($rc, 2, "usage error, $name: exit 2");
        like($err, qr/^portalctl: /, "usage error, $name: a message on stderr");
    }
    is(export_of($data), $snapshot, 'usage errors change nothing');
    my ($rc, $out) = ctl('--help');
    is($rc, 0, '--help: exit 0');
    like($out, qr/domain/, '--help lists the commands');
}

# --- import --------------------------------------------------------------------------------
sub entry { my (%f) = @_; return {host => 'new.example', brand => 'New', %f} }
sub doc { return $json->encode({domains => [@_]}) }

# Each bad document has a valid domain first: it must not be written either.
my @bad_docs = (
    ['bad hostname', doc(entry(), entry(host => 'a..b.example')), qr/domains\[1\]\.host: invalid hostname "a\.\.b\.example"/],
    ['hostname with an underscore', doc(entry(), entry(host => 'bad_host.example')), qr/domains\[1\]\.host: invalid hostname "bad_host\.example"/],
    ['brand with a control character', doc(entry(), entry(host => 'b.example', brand => "A\x07B")), qr/domains\[1\]\.brand: invalid brand "A\\x07B": control characters/],
    ['brand over 128 bytes', doc(entry(), entry(host => 'b.example', brand => $long_brand)), qr/domains\[1\]\.brand: invalid brand "$long_brand": longer than 128 bytes/],
    ['negative limit (string)', doc(entry(), entry(host => 'b.example', customer_limit => '-5')), qr/domains\[1\]\.customer_limit: invalid customer limit "-5": negative amounts are not allowed/],
    ['negative limit (number)', '{"domains":[{"host":"new.example","brand":"N"},{"host":"b.example","brand":"B","customer_limit":-5}]}', qr/domains\[1\]\.customer_limit: invalid customer limit "-5": negative/],
    ['non-numeric limit', doc(entry(), entry(host => 'b.example', customer_limit => 'ten')), qr/domains\[1\]\.customer_limit: invalid customer limit "ten"/],
    ['limit with three decimals (number)', '{"domains":[{"host":"new.example","brand":"N"},{"host":"b.example","brand":"B","customer_limit":1.005}]}', qr/domains\[1\]\.customer_limit: invalid customer limit "1\.005"/],
    ['limit of the wrong type', doc(entry(), entry(host => 'b.example', customer_limit => JSON::PP::true)), qr/domains\[1\]\.customer_limit: must be an amount, not true/],
    ['malformed section', doc(entry(), entry(host => 'b.example', access => ['cdr', 'Bad Name'])), qr/domains\[1\]\.access: invalid access section "Bad Name"/],
    ['access as a string', doc(entry(), entry(host => 'b.example', access => 'cdr')), qr/domains\[1\]\.access: must be an array of section names, not "cdr"/],
    ['sign-up as a string', doc(entry(), entry(host => 'b.example', customer_signup => 'yes')), qr/domains\[1\]\.customer_signup: must be true or false, not "yes"/],
    ['sign-up as a number', doc(entry(), entry(host => 'b.example', carrier_signup => 1)), qr/domains\[1\]\.carrier_signup: must be true or false, not 1/],
    ['bad status', doc(entry(), entry(host => 'b.example', status => 'paused')), qr/domains\[1\]\.status: invalid status "paused"/],
    ['bad timestamp', doc(entry(), entry(host => 'b.example', created => '2026-02-30T00:00:00Z')), qr/domains\[1\]\.created: invalid timestamp "2026-02-30T00:00:00Z"/],
    ['unknown key', doc(entry(), entry(host => 'b.example', brnad => 'typo')), qr/domains\[1\]: unknown key "brnad"/],
    ['missing brand', doc(entry(), {host => 'b.example'}), qr/domains\[1\]: missing key "brand"/],
    ['missing host', doc(entry(), {brand => 'B'}), qr/domains\[1\]: missing key "host"/],
    ['unknown top-level key', '{"domains":[{"host":"new.example","brand":"N"}],"version":1}', qr/unknown key "version"/],
    ['no "domains"', '{"domain":[]}', qr/unknown key "domain"/],
    ['malformed JSON', '{"domains":[{"host":"new.example","brand":"N"},]}', qr/malformed JSON in ".*": parse error at line 1, column \d+/],
    ['truncated JSON', '{"domains":[{"host":"new.example","brand":"N"}', qr/malformed JSON in ".*": parse error/],
    ['empty file', '', qr/malformed JSON/],
    ['duplicate host, same spelling', doc(entry(), entry(host => 'new.example')), qr/domains\[1\]\.host: duplicate host "new\.example" \(also domains\[0\]\)/],
    ['duplicate host after canonicalisation', doc(entry(), entry(host => 'NEW.Example.')), qr/domains\[1\]\.host: duplicate host "new\.example" \(also domains\[0\]\)/],
    ['duplicate host, U-label and A-label', doc(entry(), entry(host => 'portal.xn--bcher-kva.example'), entry(host => 'portal.bücher.example')), qr/domains\[2\]\.host: duplicate host "portal\.xn--bcher-kva\.example" \(also domains\[1\]\)/],
);
{
    my $snapshot = export_of($data);
    for my $case (@bad_docs) {
        my ($name, $text, $message) = @$case;
        my $file = "$tmp/bad.json";
        spew($file, $text);
        my ($rc, $out, $err) = ctl('import', $file);
        is($rc, 2, "import with a $name: exit 2");
        like($err, qr/^portalctl: .*$message/, "import with a $name: the message names the field and the value");
        is(export_of($data), $snapshot, "import with a $name: nothing written");
    }
    my ($rc, $out, $err) = ctl('import', '--replace', "$tmp/bad.json");
    is($rc, 2, 'a bad import with --replace: exit 2');
    is(export_of($data), $snapshot, 'and nothing removed');

    ($rc, $out, $err) = ctl('import', "$tmp/no-such-file.json");
    is($rc, 1, 'import of a missing file: exit 1');
    like($err, qr/no-such-file\.json/, 'naming the file');
}

{
    my $old = show_json('portal.yourwebsite.com');
    my $file = "$tmp/good.json";
    spew($file, doc(
        {host => 'PORTAL.YourWebsite.com', brand => 'Imported', customer_limit => 75.5, access => ['cdr', 'cdr']},
        {host => 'imp1.example', brand => 'One', customer_signup => JSON::PP::true, customer_limit => '10',
         access => ['invoices'], status => 'suspended'},
        {host => 'imp2.example', brand => 'Two', created => '2020-01-02T03:04:05Z', updated => '2021-01-02T03:04:05Z'},
        {host => 'imp3.bücher.example', brand => 'Drei'},
    ));
    my ($rc, $out, $err) = ctl('import', $file);
    is($rc, 0, 'a valid import: exit 0') or diag $err;
    like($out, qr/imported 4 portal domains: 3 added, 1 updated, 0 removed/, 'it says what it did');
    my %by = map { $_->{host} => $_ } @{$json->decode(ctl_ok(qw(--json domain list)))};
    is(scalar keys %by, 6, 'the 3 new domains of the file are there, and the 3 others still are');
    is_deeply([@{$by{'portal.yourwebsite.com'}}{qw(brand customer_signup customer_limit access)}],
        ['Imported', JSON::PP::false, '75.50', ['cdr']],
        'an existing host is updated (omitted fields take the defaults, a number limit is read as written)');
    is($by{'portal.yourwebsite.com'}{created}, $old->{created}, 'and keeps its created');
    is_deeply([@{$by{'imp1.example'}}{qw(customer_signup customer_limit access status)}],
        [JSON::PP::true, '10.00', ['invoices'], 'suspended'], 'a new host has every field of the file');
    is_deeply([@{$by{'imp2.example'}}{qw(created updated)}], ['2020-01-02T03:04:05Z', '2021-01-02T03:04:05Z'],
        'timestamps of the file are kept');
    is($by{'imp3.xn--bcher-kva.example'}{brand}, 'Drei', 'an imported IDN is stored as its A-label');
    ok(!grep({ /bücher/ } keys %by), 'no U-label stored');
}

{
    my ($rc, $out, $err) = run_ctl(doc({host => 'stdin.example', brand => 'Stdin'}), '--data', $data, 'import', '-');
    is($rc, 0, 'import - reads standard input') or diag $err;
    is(show_json('stdin.example')->{brand}, 'Stdin', 'and the domain is there');
}

# --- export and import round trip; --replace --------------------------------------------------
{
    my $export = export_of($data);
    my $decoded = $json->decode($export);
    is(scalar @{$decoded->{domains}}, 7, 'export writes {"domains":[...]} with every domain');
    spew("$tmp/export.json", $export);
    my ($rc, $out, $err) = run_ctl(undef, '--data', "$tmp/copy", 'import', "$tmp/export.json");
    is($rc, 0, 'export is accepted by import into a fresh data directory') or diag $err;
    is(export_of("$tmp/copy"), $export, 'and exports the very same document');

    my $kept = show_json('imp1.example');
    sleep 1;
    spew("$tmp/replace.json", doc(
        {host => 'imp1.example', brand => 'One again'},
        {host => 'only-new.example', brand => 'Only new'},
    ));
    ($rc, $out, $err) = ctl('import', '--replace', "$tmp/replace.json");
    is($rc, 0, 'import --replace: exit 0') or diag $err;
    like($out, qr/^imported 2 portal domains: 1 added, 1 updated, 6 removed$/, 'it says what it did');
    my $list = $json->decode(ctl_ok(qw(--json domain list)));
    is_deeply([map { $_->{host} } @$list], [qw(imp1.example only-new.example)],
        '--replace: the snapshot is exactly the file');
    is($list->[0]{brand}, 'One again', 'with the values of the file');
    is($list->[0]{created}, $kept->{created}, 'a host that stays keeps its created');

    ($rc, $out, $err) = run_ctl(undef, '--data', "$tmp/copy", 'import', '--replace', "$tmp/export.json");
    is($rc, 0, 'import --replace of the same export');
    is(export_of("$tmp/copy"), $export, 'changes nothing');
}

{
    my $empty = "$tmp/empty";
    my ($rc, $out, $err) = run_ctl(undef, '--data', $empty, 'import', "$tmp/replace.json");
    is($rc, 0, 'import creates the snapshot if missing') or diag $err;
    ($rc, $out, $err) = run_ctl(undef, '--data', $empty, 'domain', 'add', 'first.example', '--brand', 'F');
    is($rc, 0, 'and so does domain add');
    local $ENV{PORTAL_DATA} = $empty;
    ($rc, $out) = run_ctl(undef, 'domain', 'show', 'first.example');
    is($rc, 0, '$PORTAL_DATA is the default data directory');
}

done_testing;
