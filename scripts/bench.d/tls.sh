#!/usr/bin/env bash
# The TLS benchmark of issue 3 (not a test: it exits 0 whatever the figures, 1 if something
# broke). Run through "scripts/bench tls" (which builds first) or "scripts/bench" (all).
# Full TLS 1.3 handshakes per second and the worker's CPU per handshake: one nginx per
# scenario, each with one worker pinned to core 0; a new connection for every handshake, then
# one request ("GET /", "Connection: close") that "return 200" answers in every scenario, before
# the module's request checks (preaccess), so that only the handshakes differ; no session is
# offered, and the servers keep none (OpenSSL 3.0 still sends two small TLS 1.3 tickets that
# can resume nothing):
#   (a) one static ECDSA P-256 certificate (ssl_certificate); (a') the same again: the noise
#       floor of a ratio (an A/A control)
#   (b) portal_ssl on + portal on, SMALL (1,000) names in the state store
#   (c) the same with LARGE (15,000) names, the client drawing from all of them: with the
#       portal_ssl_cache 10000, a third of the handshakes parse (evictions)
#   (c') the same as (c) with "portal_ssl_cache LOWCACHE" (1,000): nearly every one parses
#   (d) nginx's own "ssl_certificate .../$ssl_server_name.crt" (and .key), SMALL names
#   (e) nginx's own static certificates, one server block per name (SMALL of them), each with
#       its "ssl_certificate": what the names cost with no module (and a reload for each new
#       one), a per-name reference for (b)
# The client (tls-client.cc, GnuTLS, a thread on each core but 0) draws each SNI name at
# random from the scenario's names and, except in (a) and (a'), checks that the certificate
# names it. The module's caches are filled first (steady state). The scenarios take turns,
# repetition after repetition. Certificates: one test CA and intermediate, one ECDSA P-256
# key shared by every leaf, a leaf per name (tls-certs.cc); imported with "portalctl cert
# import-list", one transaction per data directory.
# The worker's CPU time comes from /proc/PID/schedstat (ns; utime + stime ticks without it).
# Then, unless BENCH_INSTRUCTIONS=0, the user-space instructions per handshake of (a), (b), (d)
# and (e) under valgrind (callgrind), a count that no neighbour on the machine changes.
# Results: the table on stdout; in build/bench/: tls_results.tsv (item, metric, value),
# tls_raw.tsv (one line per run), tls_prep.tsv (preparation times), tls_machine.tsv.
# Environment: BENCH_TLS_SECONDS (3) per run, BENCH_TLS_REPEAT (12), BENCH_TLS_WARMUP (1)
# second before each run, BENCH_TLS_CONNECTIONS (16) in flight, BENCH_TLS_SMALL (1000),
# BENCH_TLS_LARGE (15000) names, BENCH_TLS_LARGE_SNI (all) names of the large set the client
# draws from, BENCH_TLS_LOWCACHE (1000), BENCH_TLS_PORT (18500 and
# the seven after it), BENCH_TLS_DATA=DIR keeps the prepared certificates and data directories
# there and reuses them while portalctl and the sizes are the same (and they are under 30 days
# old), BENCH_TLS_RATE (0: unpaced; N: the client starts N connections a second, so that no
# worker saturates and every scenario runs at the same pace), BENCH_TLS_CLIENT_THREADS
# (cores - 1), BENCH_TLS_CLIENT_CORES (every core but 0; a taskset list, e.g. 0-1),
# BENCH_INSTR_HANDSHAKES (500), BENCH_KEEP=1 keeps the temporary directory.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD_DIR:-$root/build}
here=$root/scripts/bench.d
out=${BENCH_OUT:-$build/bench}

secs=${BENCH_TLS_SECONDS:-3}
repeat=${BENCH_TLS_REPEAT:-12}
warmup=${BENCH_TLS_WARMUP:-1}
conns=${BENCH_TLS_CONNECTIONS:-16}
rate=${BENCH_TLS_RATE:-0}
small=${BENCH_TLS_SMALL:-1000}
large=${BENCH_TLS_LARGE:-15000}
large_sni=${BENCH_TLS_LARGE_SNI:-$large}
lowcache=${BENCH_TLS_LOWCACHE:-1000}
base_port=${BENCH_TLS_PORT:-18500}
for v in secs repeat warmup conns rate small large large_sni lowcache base_port; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "bench tls: $v must be a number, not \"${!v}\"" >&2; exit 2; }
done
[ "$secs" -ge 1 ] && [ "$repeat" -ge 1 ] && [ "$conns" -ge 1 ] &&
  [ "$small" -ge 1 ] && [ "$large" -ge "$small" ] && [ "$large" -le 999999 ] &&
  [ "$large_sni" -ge 1 ] && [ "$large_sni" -le "$large" ] && [ "$lowcache" -ge 1 ] ||
  { echo "bench tls: need SECONDS, REPEAT, CONNECTIONS >= 1," \
         "1 <= SMALL <= LARGE <= 999999, 1 <= LARGE_SNI <= LARGE, LOWCACHE >= 1" >&2; exit 2; }

say() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }
die() { echo "bench tls: $*" >&2; exit 1; }

for f in "$build/portalctl" "$build/ngx_http_portal_module.so"; do
  [ -e "$f" ] || die "$f is missing: run scripts/build"
done
for tool in /usr/sbin/nginx g++ perl pgrep sha256sum xargs; do
  command -v "$tool" >/dev/null || die "$tool is missing: run scripts/deps"
done
# The load generator uses GnuTLS (see tls-client.cc); scripts/deps does not install it.
if ! dpkg-query -W -f='${Status}' libgnutls28-dev 2>/dev/null | grep -q 'install ok installed'; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  say "installing libgnutls28-dev (the TLS load generator's library)"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
    libgnutls28-dev >/dev/null || die "cannot install libgnutls28-dev"
fi

# Everything this script starts is stopped by PID at exit, whatever happens.
masters=()   # nginx master PIDs (run with "daemon off": our children)
child=""     # the client, generator or import in flight
run=""
cleanup() {
  local rc=$? pid
  trap - EXIT INT TERM
  if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then
    kill -TERM "$child" 2>/dev/null || true
    wait "$child" 2>/dev/null || true
  fi
  for pid in "${masters[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${masters[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      for w in $(pgrep -P "$pid"); do kill -KILL "$w" 2>/dev/null || true; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  if [ -n "$run" ] && [ "${BENCH_KEEP:-0}" != 1 ]; then rm -rf "$run"; fi
  [ -n "$run" ] && [ "${BENCH_KEEP:-0}" = 1 ] && echo "bench tls: kept $run" >&2
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Runs a command in the background (so the trap can stop it) and waits for it.
bg_wait() { "$@" & child=$!; local rc=0; wait "$child" || rc=$?; child=""; return "$rc"; }

run=$(mktemp -d /tmp/nginx-portal-bench-tls.XXXXXX)
chmod 0755 "$run"
mkdir -p "$out"
clk_tck=$(getconf CLK_TCK)
cores=$(nproc)

# Cores: the measured workers alone on core 0; the client on all the others, a thread each.
pin_measured=() pin_client=() client_threads=1
if [ "$cores" -ge 2 ]; then
  pin_measured=(taskset -c 0) pin_client=(taskset -c "1-$((cores - 1))")
  [ "$cores" -gt 2 ] || pin_client=(taskset -c 1)
  client_threads=$((cores - 1))
fi
# BENCH_TLS_CLIENT_CORES=0-1 lets the client share the worker's core too: with 2 cores, one
# client core cannot keep a worker busy (verifying a handshake costs more than signing it).
if [ -n "${BENCH_TLS_CLIENT_CORES:-}" ]; then pin_client=(taskset -c "$BENCH_TLS_CLIENT_CORES"); fi
command -v taskset >/dev/null || pin_measured=() pin_client=()
client_threads=${BENCH_TLS_CLIENT_THREADS:-$client_threads}
[[ $client_threads =~ ^[1-9][0-9]*$ ]] || die "BENCH_TLS_CLIENT_THREADS must be a number >= 1"
[ "$conns" -ge "$client_threads" ] || conns=$client_threads

user_line="" owner=""
if [ "$(id -u)" -eq 0 ]; then user_line="user nobody nogroup;" owner="nobody:nogroup"; fi

now() { date +%s%N; }
secs_since() { perl -e 'printf "%.1f", ($ARGV[1] - $ARGV[0]) / 1e9' "$1" "$(now)"; }

# --- tools -------------------------------------------------------------------------------
say "compiling the certificate maker and the TLS client"
g++ -O2 -std=c++17 -o "$run/tls-certs" "$here/tls-certs.cc" -lcrypto ||
  die "cannot compile tls-certs.cc (libssl-dev)"
g++ -O2 -std=c++17 -pthread -o "$run/tls-client" "$here/tls-client.cc" -lgnutls ||
  die "cannot compile tls-client.cc (libgnutls28-dev)"

# --- data: names, certificates, data directories ----------------------------------------
# In $prep: names.large (LARGE names; the first SMALL are names.small), pki/ (CA,
# intermediate, the shared key, static.crt, certs/NAME.crt, certs/NAME.key for the small set),
# data-small/, data-large/ (portalctl data directories), prep.tsv, stamp.
prep=${BENCH_TLS_DATA:-$run/prep}
mkdir -p "$prep"
prep=$(cd "$prep" && pwd)
stamp="small=$small large=$large portalctl=$(sha256sum < "$build/portalctl" | cut -c1-16)"
reuse=0
if [ -n "${BENCH_TLS_DATA:-}" ] && [ -f "$prep/stamp" ] && [ "$(cat "$prep/stamp")" = "$stamp" ] &&
   [ -n "$(find "$prep/stamp" -mtime -30)" ]; then
  reuse=1
fi

new_data() {  # new_data DIR: an empty data directory (snapshot and state) the workers can read
  mkdir -p "$1"
  [ -z "$owner" ] || chown "$owner" "$1"
  "$build/portalctl" --data "$1" init >/dev/null
}

cert_import() {  # cert_import DIR NAMES: every name's certificate, in one portalctl import-list
  local dir=$1 names=$2
  awk -v d="$prep/pki" '{ print $1, d "/certs/" $1 ".crt", d "/leaf.key" }' "$names" \
    > "$run/import.list"
  bg_wait "$build/portalctl" --data "$dir" cert import-list "$run/import.list" > /dev/null ||
    die "portalctl cert import-list failed (into $dir)"
}

if [ "$reuse" = 1 ]; then
  say "reusing the certificates and data directories in $prep (BENCH_TLS_DATA)"
  sed -i '/^reused\t/d' "$prep/prep.tsv"
  printf 'reused\t1\n' >> "$prep/prep.tsv"
else
  # Never empty a directory this script did not fill.
  if [ -n "$(ls -A "$prep")" ] && [ ! -f "$prep/stamp" ]; then
    die "BENCH_TLS_DATA=$prep is not empty and holds no earlier preparation (no stamp)"
  fi
  rm -rf "${prep:?}/"*
  chmod 0755 "$prep"
  perl -e '
    my ($dir, $n, $small) = @ARGV;
    open my $all, ">", "$dir/names.large" or die "$!\n";
    open my $sm, ">", "$dir/names.small" or die "$!\n";
    open my $js, ">", "$dir/domains.large.json" or die "$!\n";
    open my $jss, ">", "$dir/domains.small.json" or die "$!\n";
    print $_ qq({"domains":[\n) for $js, $jss;
    for my $i (0 .. $n - 1) {
      # a permutation of 0..999999 (7919 is prime to 10^6): unique, spread tenant numbers
      my $host = sprintf "portal.tenant%06d.example", ($i * 7919 + 12345) % 1_000_000;
      my $rec = qq({"host":"$host","brand":"Tenant $i","customer_signup":true,) .
                qq("access":["cdr","rate_card"],"status":"active"});
      print $all "$host\n";
      print $js ($i ? ",\n" : ""), $rec;
      next unless $i < $small;
      print $sm "$host\n";
      print $jss ($i ? ",\n" : ""), $rec;
    }
    print $_ "\n]}\n" for $js, $jss;
    close $_ or die "$!\n" for $all, $sm, $js, $jss;
  ' "$prep" "$large" "$small" || die "cannot write the names"

  say "making $large ECDSA P-256 certificates (one shared key) in $prep/pki"
  mkdir -p "$prep/pki"
  t0=$(now)
  bg_wait "$run/tls-certs" "$prep/pki" "$prep/names.large" "$small" || die "tls-certs failed"
  certs_seconds=$(secs_since "$t0")
  chmod -R a+rX "$prep/pki"

  say "data directories: portalctl import of the portal domains, then cert import"
  for set in small large; do
    new_data "$prep/data-$set"
    bg_wait "$build/portalctl" --data "$prep/data-$set" import "$prep/domains.$set.json" \
      >/dev/null || die "portalctl import of domains.$set.json failed"
  done
  say "portalctl cert import-list of $small certificates"
  t0=$(now)
  cert_import "$prep/data-small" "$prep/names.small"
  import_small_seconds=$(secs_since "$t0")
  say "portalctl cert import-list of $large certificates"
  t0=$(now)
  cert_import "$prep/data-large" "$prep/names.large"
  import_large_seconds=$(secs_since "$t0")
  [ "$("$build/portalctl" --data "$prep/data-large" cert list | wc -l)" -ge "$large" ] ||
    die "the large state store does not list $large certificates"
  {
    printf 'small\t%s\nlarge\t%s\n' "$small" "$large"
    printf 'certs_seconds\t%s\n' "$certs_seconds"
    printf 'import_small_seconds\t%s\n' "$import_small_seconds"
    printf 'import_large_seconds\t%s\n' "$import_large_seconds"
    printf 'state_large_bytes\t%s\n' "$(stat -c %s "$prep/data-large/state/data.mdb")"
    printf 'state_small_bytes\t%s\n' "$(stat -c %s "$prep/data-small/state/data.mdb")"
  } > "$prep/prep.tsv"
  printf '%s\n' "$stamp" > "$prep/stamp"
fi
cp "$prep/prep.tsv" "$out/tls_prep.tsv"
# The client draws (c)'s names from the first LARGE_SNI of the large set.
head -n "$large_sni" "$prep/names.large" > "$run/names.large_sni"

# --- nginx -------------------------------------------------------------------------------
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_nginx() {  # start_nginx NAME [PIN...]: runs $run/NAME/nginx.conf; sets master, worker_pid
  local name=$1 dir=$run/$1 pid=""
  shift
  /usr/sbin/nginx -t -q -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" 2>&1 ||
    die "nginx \"$name\": the configuration was refused (see above)"
  "$@" /usr/sbin/nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" -g 'daemon off;' &
  master=$!
  masters+=("$master")
  for _ in $(seq 100); do
    kill -0 "$master" 2>/dev/null || { cat "$dir/error.log" >&2; die "nginx \"$name\" stopped"; }
    pid=$(pgrep -P "$master" | head -n1) || true
    [ -n "$pid" ] && break
    sleep 0.05
  done
  [ -n "$pid" ] || die "nginx \"$name\": no worker under master $master"
  worker_pid=$pid
}

core_busy() {  # core_busy N: busy ticks of CPU N (user, nice, system, irq, softirq, steal)
  local c u n s i io irq sirq st rest
  while read -r c u n s i io irq sirq st rest; do
    [ "$c" = "cpu$1" ] && { echo $((u + n + s + irq + sirq + st)); return; }
  done < /proc/stat
  echo 0
}

cpu_ns() {  # cpu_ns PID: the CPU time the process has run, in nanoseconds
  local line rest
  if [ -r "/proc/$1/schedstat" ]; then  # the scheduler's own count: exact, not ticks
    read -r line rest < "/proc/$1/schedstat"
    echo "$line"
    return
  fi
  read -r line < "/proc/$1/stat"
  rest=${line##*) }  # fields after "(comm)": state is 3, utime 14, stime 15
  set -- $rest
  echo $(( (${12} + ${13}) * 1000000000 / clk_tck ))
}

mem_kb() {  # mem_kb PID: "VmRSS RssAnon RssFile" in kB
  local k v rss=0 anon=0 file=0
  while read -r k v _; do
    case $k in VmRSS:) rss=$v ;; RssAnon:) anon=$v ;; RssFile:) file=$v ;; esac
  done < "/proc/$1/status"
  echo "$rss $anon $file"
}

scenarios=(static static2 portal_small portal_large portal_large_lowcache files_small servers_small)
declare -A port names_of sni_of cache_of
i=0
for s in "${scenarios[@]}"; do port[$s]=$((base_port + i)); i=$((i + 1)); done
instr_port=$((base_port + i))  # the single-process copies of the instruction counts
for p in "${port[@]}" "$instr_port"; do
  port_free "$p" || die "port $p is in use (BENCH_TLS_PORT)"
done
names_of=([static]=0 [static2]=0 [portal_small]=$small [portal_large]=$large
          [portal_large_lowcache]=$large [files_small]=$small [servers_small]=$small)
sni_of=([static]=$small [static2]=$small [portal_small]=$small [portal_large]=$large_sni
        [portal_large_lowcache]=$large_sni [files_small]=$small [servers_small]=$small)
cache_of=([static]="" [static2]="" [portal_small]=10000 [portal_large]=10000
          [portal_large_lowcache]=$lowcache [files_small]="" [servers_small]="")
declare -A sni_file=([static]=$prep/names.small [static2]=$prep/names.small
                     [portal_small]=$prep/names.small [portal_large]=$run/names.large_sni
                     [portal_large_lowcache]=$run/names.large_sni [files_small]=$prep/names.small
                     [servers_small]=$prep/names.small)

scenario_conf() {  # scenario_conf NAME: nginx.conf of one measured nginx
  local name=$1 d=$run/$1/tmp load="" http="" server="" more=""
  local cert="ssl_certificate $prep/pki/static.crt;
        ssl_certificate_key $prep/pki/leaf.key;"
  case $name in
    portal_*)
      load="load_module $build/ngx_http_portal_module.so;"
      local data=$prep/data-large
      [ "$name" = portal_small ] && data=$prep/data-small
      http="portal_data $data;
    portal_ssl_cache ${cache_of[$name]};"
      server="portal_ssl on;
        portal on;"
      ;;
    files_small)
      cert="ssl_certificate $prep/pki/certs/\$ssl_server_name.crt;
        ssl_certificate_key $prep/pki/certs/\$ssl_server_name.key;"
      ;;
    servers_small)
      # nginx picks the server block by SNI and switches to its SSL_CTX (SSL_set_SSL_CTX);
      # the default server keeps (a)'s certificate, as the module scenarios' fallback.
      http="server_names_hash_max_size $((4 * small + 512));
    server_names_hash_bucket_size 128;"
      more=$(awk -v d="$prep/pki/certs" -v p="${port[$name]}" '{
        printf "    server {\n        listen 127.0.0.1:%s ssl;\n", p
        printf "        server_name %s;\n", $1
        printf "        ssl_certificate %s/%s.crt;\n", d, $1
        printf "        ssl_certificate_key %s/%s.key;\n", d, $1
        printf "        location / {\n            default_type text/plain;\n"
        printf "            return 200 \"ok\\n\";\n        }\n    }\n"
      }' "${sni_file[$name]}")
      ;;
  esac
  cat <<CONF
$load
$user_line
worker_processes 1;
pid $run/$name/nginx.pid;
error_log $run/$name/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $d/body;
    proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fastcgi;
    uwsgi_temp_path $d/uwsgi;
    scgi_temp_path $d/scgi;
    $http
    ssl_protocols TLSv1.3;
    # full handshakes only: no session cache, no ticket keys
    ssl_session_cache off;
    ssl_session_tickets off;
    server {
        listen 127.0.0.1:${port[$name]} ssl default_server backlog=1024;
        $cert
        $server
        location / {
            default_type text/plain;
            return 200 "ok\n";
        }
    }
$more
}
CONF
}

declare -A worker
for s in "${scenarios[@]}"; do
  say "starting nginx for $s on 127.0.0.1:${port[$s]}"
  mkdir -p "$run/$s/tmp"
  chmod 0755 "$run/$s" "$run/$s/tmp"
  scenario_conf "$s" > "$run/$s/nginx.conf"
  start_nginx "$s" "${pin_measured[@]}"
  worker[$s]=$worker_pid
done

client_run() {  # client_run SCENARIO SECONDS SEED [ARGS]: leaves the BENCH line in $run/client.line
  local s=$1 d=$2 seed=$3 log=$run/client.out check=1
  shift 3
  case $s in static|static2) check=0 ;; esac  # one certificate for every name
  bg_wait timeout 600 "${pin_client[@]}" "$run/tls-client" -p "${port[$s]}" \
    -f "${sni_file[$s]}" -d "$d" -c "$conns" -t "$client_threads" -s "$seed" -r 1 \
    -k "$check" "$@" > "$log" 2>&1 || { cat "$log" >&2; die "the client failed on $s"; }
  grep '^BENCH ' "$log" > "$run/client.line" || { cat "$log" >&2; die "no client result on $s"; }
  grep -v '^BENCH ' "$log" | head -n 5 >&2 || true
}

field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<" $2"; }

# Sanity: every scenario completes handshakes and requests; each name gets its own
# certificate except in (a); (a) serves static.bench.example.
say "checking every scenario serves the right certificates"
sleep 0.5
for s in "${scenarios[@]}"; do
  client_run "$s" 1 7
  line=$(cat "$run/client.line")
  [ "$(field handshakes "$line")" -gt 0 ] && [ "$(field errors "$line")" = 0 ] &&
    [ "$(field wrong_cert "$line")" = 0 ] ||
    die "$s: $line (see $run/$s/error.log)"
done
first=$(head -n1 "$prep/names.small")
for s in static portal_small files_small servers_small; do
  want=$first
  [ "$s" = static ] && want=static.bench.example
  subject=$(openssl s_client -connect "127.0.0.1:${port[$s]}" -servername "$first" </dev/null \
    2>/dev/null | openssl x509 -noout -subject 2>/dev/null) || true
  [[ $subject == *"CN = $want"* ]] || die "$s: SNI $first got \"$subject\", not CN = $want"
done

# Each cache starts full, as in a worker that has been serving for a while: the first names
# in order, as many as the cache holds. Cold misses are what (c') shows.
for s in portal_small portal_large portal_large_lowcache; do
  fill=${cache_of[$s]}
  [ "${sni_of[$s]}" -ge "$fill" ] || fill=${sni_of[$s]}
  say "filling the certificate cache of $s: $fill handshakes"
  client_run "$s" 0 0 -n "$fill" -o 1
  line=$(cat "$run/client.line")
  [ "$(field errors "$line")" = 0 ] && [ "$(field wrong_cert "$line")" = 0 ] ||
    die "$s: $line (see $run/$s/error.log)"
done

# --- measurements ------------------------------------------------------------------------
raw=$out/tls_raw.tsv
printf 'rep\tscenario\tnames\tsni_names\tcache\thandshakes\tduration_us\terrors\twrong_cert\tcpu_ns\tclient_cpu_us\tcore0_other_ns\twarmup_handshakes\trss_kb\trss_anon_kb\trss_file_kb\n' > "$raw"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
total=$(( ${#scenarios[@]} * repeat * (secs + warmup) ))
say "measuring: ${#scenarios[@]} scenarios x $repeat x ${secs}s (+${warmup}s warm-up), about ${total}s"
for rep in $(seq "$repeat"); do
  # each repetition starts one scenario further on, so that none always runs first
  n=${#scenarios[@]}
  order=()
  for i in $(seq 0 $((n - 1))); do order+=("${scenarios[$(( (i + rep - 1) % n ))]}"); done
  for s in "${order[@]}"; do
    wh=0
    if [ "$warmup" -gt 0 ]; then
      client_run "$s" "$warmup" $((rep + 1000)) -R "$rate"
      wh=$(field handshakes "$(cat "$run/client.line")")
    fi
    c0=$(cpu_ns "${worker[$s]}") k0=$(core_busy 0)
    client_run "$s" "$secs" "$rep" -R "$rate"
    c1=$(cpu_ns "${worker[$s]}") k1=$(core_busy 0)
    read -r rss anon file <<<"$(mem_kb "${worker[$s]}")"
    line=$(cat "$run/client.line")
    other=""
    if [ ${#pin_measured[@]} -gt 0 ]; then
      other=$(( (k1 - k0) * 1000000000 / clk_tck - (c1 - c0) ))
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$rep" "$s" \
      "${names_of[$s]}" "${sni_of[$s]}" "${cache_of[$s]}" "$(field handshakes "$line")" \
      "$(field duration_us "$line")" "$(field errors "$line")" "$(field wrong_cert "$line")" \
      $((c1 - c0)) "$(field cpu_us "$line")" "$other" "$wh" "$rss" "$anon" "$file" >> "$raw"
    printf '   rep %s %-22s %s worker_cpu=%s%% rss_kb=%s\n' "$rep" "$s" "${line#BENCH }" \
      "$(( (c1 - c0) / 10000000 / secs ))" "$rss" >&2
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

for s in "${scenarios[@]}"; do
  if grep -q '\[\(alert\|crit\|emerg\|error\)\]' "$run/$s/error.log"; then
    echo "bench tls: warning: $s logged:" >&2
    grep '\[\(alert\|crit\|emerg\|error\)\]' "$run/$s/error.log" | head -n 5 >&2
  fi
done

# --- instructions ------------------------------------------------------------------------
# (a), (b), (d) and (e) again in one process (master_process off) under callgrind: the cache filled
# with its instrumentation off, then the instructions of BENCH_INSTR_HANDSHAKES handshakes.
# User space only (the kernel's share of a connection does not show), so these ratios are
# larger than the CPU ratios.
instr=$out/tls_instr.tsv
rm -f "$instr"
if [ "${BENCH_INSTRUCTIONS:-1}" != 0 ] && command -v valgrind >/dev/null &&
   command -v callgrind_control >/dev/null; then
  instr_n=${BENCH_INSTR_HANDSHAKES:-500}
  printf 'scenario\thandshakes\tinstructions\n' > "$instr"
  for s in static portal_small files_small servers_small; do
    say "instructions per handshake of $s (callgrind, $instr_n handshakes)"
    sed "s/^worker_processes 1;/worker_processes 1; master_process off;/
         s|pid $run/$s/nginx.pid;|pid $run/$s/cg.pid;|
         s|listen 127.0.0.1:${port[$s]} |listen 127.0.0.1:$instr_port |" \
      "$run/$s/nginx.conf" > "$run/$s/cg.conf"
    cg_out=$run/$s/callgrind.out
    "${pin_measured[@]}" valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$cg_out" \
      /usr/sbin/nginx -p "$run/$s" -c "$run/$s/cg.conf" -e "$run/$s/cg.log" -g 'daemon off;' \
      2> "$run/$s/valgrind.log" &
    cg=$!
    child=$cg
    saved_port=${port[$s]}
    port[$s]=$instr_port
    ok=""
    for _ in $(seq 300); do
      port_free "$instr_port" || { ok=1; break; }
      kill -0 "$cg" 2>/dev/null || break
      sleep 0.1
    done
    [ -n "$ok" ] || { cat "$run/$s/valgrind.log" "$run/$s/cg.log" >&2; die "$s did not start under valgrind"; }
    fill=${cache_of[$s]:-0}
    [ "$fill" -le "${sni_of[$s]}" ] || fill=${sni_of[$s]}
    [ "$fill" -gt 0 ] || fill=50
    client_run "$s" 0 0 -n "$fill" -o 1
    callgrind_control -i on "$cg" >/dev/null
    client_run "$s" 0 3 -n "$instr_n"
    callgrind_control -i off "$cg" >/dev/null
    callgrind_control -d "$cg" >/dev/null
    kill -TERM "$cg" 2>/dev/null; wait "$cg" 2>/dev/null || true
    child=""
    port[$s]=$saved_port
    ir=$(for f in "$cg_out"*; do sed -n 's/^totals: //p' "$f"; done | sort -n | tail -n1)
    printf '%s\t%s\t%s\n' "$s" "$(field handshakes "$(cat "$run/client.line")")" "${ir:-0}" >> "$instr"
  done
fi

# --- report ------------------------------------------------------------------------------
{
  printf 'cores\t%s\n' "$cores"
  printf 'cpu\t%s\n' "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
  printf 'nginx\t%s\n' "$(/usr/sbin/nginx -v 2>&1 | sed 's/^nginx version: //')"
  printf 'openssl\t%s\n' "$(openssl version)"
  printf 'client\ttls-client (GnuTLS %s), %s connections, %s, %s x %ss (+%ss warm-up)\n' \
    "$(dpkg-query -W -f='${Version}' libgnutls30 2>/dev/null)" "$conns" \
    "$([ "$rate" -gt 0 ] && echo "paced at $rate handshakes/s" || echo "unpaced")" "$repeat" "$secs" "$warmup"
  printf 'pinning\tmeasured worker: %s; client: %s\n' "${pin_measured[*]:-none}" \
    "${pin_client[*]:-none}"
  printf 'loadavg\tbefore %s, after %s\n' "$load_before" "$load_after"
} > "$out/tls_machine.tsv"

echo
echo "TLS handshakes (issue 3)"
sed 's/\t/: /' "$out/tls_machine.tsv"
echo
BENCH_TLS_RATE=$rate perl "$here/tls-summarise.pl" "$raw" "$out/tls_prep.tsv" "$out/tls_results.tsv" "$instr"
echo
echo "results: $out/tls_results.tsv (raw runs: $raw)"
