#!/usr/bin/env bash
# The ACME benchmark of issue 4 (not a test: it exits 0 whatever the figures, 1 if something
# broke). Run through "scripts/bench acme" (which builds first) or "scripts/bench" (all).
# The ACME engine runs as threads inside one nginx worker ("portal_acme on"), against Debian's
# Pebble (PEBBLE_VA_NOSLEEP=1, PEBBLE_WFE_NONCEREJECT=0) and pebble-challtestsrv as the DNS,
# everything on 127.0.0.1. One nginx (2 workers, "daemon off", a child of this script) and one
# Pebble per scenario; the DNS server for all of them:
#   (1) latency: NAMES names, one after another, each alone: the time from
#       "portalctl domain add NAME" (its CNAME already set) to the first TLS handshake on nginx
#       that presents a certificate for NAME verifying against Pebble's root (GET /roots/0 of
#       Pebble's management port); median, p90, max. Default portal_acme_concurrency (4).
#   (2) burst, once per value of CONCURRENCY (portal_acme_concurrency): BURST names in one
#       "portalctl import" (their CNAMEs set before), the time until every one is served with
#       a verified certificate ("portalctl --json status" polled, then a verified handshake per
#       name it shows active). Meanwhile a load on a portal domain issued before the burst:
#       wrk over plain HTTP (proxied through "portal on" to a server of the same nginx) and
#       new HTTPS connections (verified handshake, then GET /), each failure counted (socket
#       errors, non-2xx, failed handshakes). Peak RSS (VmHWM) and CPU time of the worker that
#       runs the engine (its "this worker runs the ACME engine" line) and of the other worker.
# Results: the summary on stdout; in build/bench/: acme-results.tsv (item, metric, value),
# acme-latency.tsv (one line per name), acme-burst-cN.tsv (per name: served, active), and
# acme-status-cN.json (portalctl --json status after each burst).
# Environment: BENCH_ACME_NAMES (20), BENCH_ACME_BURST (1000; 0: no burst),
# BENCH_ACME_CONCURRENCY ("4 1": one burst per value, in that order), BENCH_ACME_TIMEOUT (60)
# seconds per latency name, BENCH_ACME_BURST_TIMEOUT (1800) seconds per burst,
# BENCH_ACME_LOAD_RPS (200) HTTP requests/s over BENCH_ACME_LOAD_CONNECTIONS (8),
# BENCH_ACME_TLS_RPS (20) new HTTPS connections/s, BENCH_ACME_BASELINE (10) seconds of the
# same load alone before each burst, BENCH_ACME_PORT (18530 and the seven after it),
# BENCH_KEEP=1 keeps the temporary directory.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD_DIR:-$root/build}
here=$root/scripts/bench.d
out=${BENCH_OUT:-$build/bench}

names=${BENCH_ACME_NAMES:-20}
burst=${BENCH_ACME_BURST:-1000}
concurrencies=${BENCH_ACME_CONCURRENCY:-4 1}
name_timeout=${BENCH_ACME_TIMEOUT:-60}
burst_timeout=${BENCH_ACME_BURST_TIMEOUT:-1800}
load_rps=${BENCH_ACME_LOAD_RPS:-200}
load_conns=${BENCH_ACME_LOAD_CONNECTIONS:-8}
tls_rps=${BENCH_ACME_TLS_RPS:-20}
baseline=${BENCH_ACME_BASELINE:-10}
base_port=${BENCH_ACME_PORT:-18530}
for v in names burst name_timeout burst_timeout load_rps load_conns tls_rps baseline base_port; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "bench acme: $v must be a number, not \"${!v}\"" >&2; exit 2; }
done
for c in $concurrencies; do
  [[ $c =~ ^[0-9]+$ ]] && [ "$c" -ge 1 ] && [ "$c" -le 64 ] ||
    { echo "bench acme: BENCH_ACME_CONCURRENCY: \"$c\" is not 1 to 64" >&2; exit 2; }
done
[ "$load_rps" -ge 1 ] && [ "$load_conns" -ge 1 ] && [ "$load_rps" -ge "$load_conns" ] &&
  [ "$baseline" -ge 1 ] && [ "$tls_rps" -ge 1 ] && [ "$name_timeout" -ge 1 ] &&
  [ "$burst_timeout" -ge 1 ] ||
  { echo "bench acme: need LOAD_RPS >= LOAD_CONNECTIONS >= 1; TLS_RPS, BASELINE, timeouts >= 1" >&2
    exit 2; }

pebble_env=(PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0)
cname_target=edge.portal.test
zone=bench-acme.test

say() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }
die() { echo "bench acme: $*" >&2; exit 1; }

for f in "$build/portalctl" "$build/ngx_http_portal_module.so"; do
  [ -e "$f" ] || die "$f is missing: run scripts/build"
done
for tool in /usr/sbin/nginx /usr/bin/pebble /usr/bin/pebble-challtestsrv wrk curl openssl perl \
            pgrep; do
  command -v "$tool" >/dev/null || die "$tool is missing (apt-get install pebble wrk curl)"
done
perl -MIO::Socket::SSL -MJSON::PP -MHTTP::Tiny -e1 2>/dev/null ||
  die "perl needs IO::Socket::SSL (libio-socket-ssl-perl)"

# Everything this script starts is stopped by PID at exit, whatever happens.
masters=()   # nginx master PIDs (run with "daemon off": our children)
procs=()     # pebble, pebble-challtestsrv, the loads: our children
child=""     # the probe in flight
run=""
stop_pid() {  # stop_pid PID: TERM, up to 5 s, then KILL; reaps it (our child)
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
stop_nginx_pid() {  # stop_nginx_pid MASTER: TERM, up to 10 s, then KILL to it and its workers
  local pid=$1 w
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    for w in $(pgrep -P "$pid"); do kill -KILL "$w" 2>/dev/null || true; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$? pid
  trap - EXIT INT TERM
  if [ -n "$child" ]; then stop_pid "$child"; fi
  for pid in "${masters[@]}"; do stop_nginx_pid "$pid"; done
  for pid in "${procs[@]}"; do stop_pid "$pid"; done
  if [ -n "$run" ] && [ "${BENCH_KEEP:-0}" != 1 ]; then rm -rf "$run"; fi
  [ -n "$run" ] && [ "${BENCH_KEEP:-0}" = 1 ] && echo "bench acme: kept $run" >&2
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Runs a command in the background (so the trap can stop it) and waits for it.
bg_wait() { "$@" & child=$!; local rc=0; wait "$child" || rc=$?; child=""; return "$rc"; }
forget() {  # forget PID: drops PID from masters and procs (it was stopped)
  local p keep=()
  for p in "${masters[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  masters=("${keep[@]}")
  keep=()
  for p in "${procs[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  procs=("${keep[@]}")
}

run=$(mktemp -d /tmp/nginx-portal-bench-acme.XXXXXX)
chmod 0755 "$run"
mkdir -p "$out"
# Copies of the binaries: a rebuild in the shared build directory during the run (minutes)
# must not change, or break, what is measured.
mkdir -p "$run/bin"
cp "$build/portalctl" "$build/ngx_http_portal_module.so" "$run/bin/"
chmod 0755 "$run/bin"
portalctl=$run/bin/portalctl
module=$run/bin/ngx_http_portal_module.so
"$portalctl" --help >/dev/null 2>&1 || die "$build/portalctl does not run (a build in progress?)"
clk_tck=$(getconf CLK_TCK)
probe=(perl "$here/acme-probe.pl")

user_line="" owner=""
if [ "$(id -u)" -eq 0 ]; then user_line="user nobody nogroup;" owner="nobody:nogroup"; fi

now() { date +%s%N; }
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

http_port=$base_port https_port=$((base_port + 1)) up_port=$((base_port + 2))
pebble_port=$((base_port + 3)) pebble_mgmt=$((base_port + 4)) pebble_tls=$((base_port + 5))
dns_port=$((base_port + 6)) dns_mgmt=$((base_port + 7))
for p in $(seq "$base_port" $((base_port + 7))); do
  port_free "$p" || die "port $p is in use (BENCH_ACME_PORT)"
done

raw=$run/raw.tsv   # item, metric, value: what the summary reads besides the per-name files
: > "$raw"
put() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$raw"; }

# --- PKI: Pebble's listener (a CA the engine trusts) and nginx's fallback certificate --------
say "making Pebble's listener certificate and nginx's fallback certificate"
pki=$run/pki
mkdir -p "$pki"
ec=(genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out)
{
  openssl "${ec[@]}" "$pki/ca.key"
  openssl req -x509 -new -sha256 -days 3 -subj '/CN=Portal Bench Pebble Listener CA' \
    -key "$pki/ca.key" -addext 'basicConstraints=critical,CA:TRUE' \
    -addext 'keyUsage=critical,keyCertSign,cRLSign' -out "$pki/ca.crt"
  openssl "${ec[@]}" "$pki/listener.key"
  openssl req -new -sha256 -subj /CN=localhost -key "$pki/listener.key" -out "$pki/listener.csr"
  printf '%s\n' 'basicConstraints = critical, CA:FALSE' \
    'keyUsage = critical, digitalSignature' 'extendedKeyUsage = serverAuth' \
    'subjectAltName = DNS:localhost, IP:127.0.0.1' > "$pki/listener.ext"
  openssl x509 -req -sha256 -days 3 -in "$pki/listener.csr" -CA "$pki/ca.crt" \
    -CAkey "$pki/ca.key" -set_serial 0x1234 -extfile "$pki/listener.ext" -out "$pki/listener.crt"
  openssl "${ec[@]}" "$pki/fallback.key"
  openssl req -x509 -new -sha256 -days 3 -subj /CN=fallback.invalid -key "$pki/fallback.key" \
    -out "$pki/fallback.crt"
} >/dev/null 2>"$run/openssl.err" || { cat "$run/openssl.err" >&2; die "openssl failed"; }
# The workers (nobody) read the CA file at every connection to Pebble, and the fallback pair.
chmod 0755 "$pki"
chmod 0644 "$pki/ca.crt" "$pki/fallback.crt" "$pki/fallback.key"

# --- DNS: pebble-challtestsrv ----------------------------------------------------------------
say "starting pebble-challtestsrv (DNS on 127.0.0.1:$dns_port, management :$dns_mgmt)"
/usr/bin/pebble-challtestsrv -dns01 "127.0.0.1:$dns_port" -http01 '' -https01 '' \
  -tlsalpn01 '' -management "127.0.0.1:$dns_mgmt" -defaultIPv4 '' -defaultIPv6 '' \
  >> "$run/challtestsrv.log" 2>&1 &
dns_pid=$!
procs+=("$dns_pid")
bg_wait "${probe[@]}" dns-wait "$dns_port" "$dns_mgmt" ||
  { cat "$run/challtestsrv.log" >&2; die "pebble-challtestsrv did not start"; }

# --- Pebble, one per scenario ------------------------------------------------------------------
pebble_pid=""
start_pebble() {  # start_pebble DIR: Pebble with its VA sending HTTP-01 to nginx's $http_port
  local dir=$1
  mkdir -p "$dir"
  cat > "$dir/pebble-config.json" <<JSON
{
  "pebble": {
    "listenAddress": "127.0.0.1:$pebble_port",
    "managementListenAddress": "127.0.0.1:$pebble_mgmt",
    "certificate": "$pki/listener.crt",
    "privateKey": "$pki/listener.key",
    "httpPort": $http_port,
    "tlsPort": $pebble_tls,
    "ocspResponderURL": "",
    "externalAccountBindingRequired": false
  }
}
JSON
  env "${pebble_env[@]}" /usr/bin/pebble -config "$dir/pebble-config.json" \
    -dnsserver "127.0.0.1:$dns_port" >> "$dir/pebble.log" 2>&1 &
  pebble_pid=$!
  procs+=("$pebble_pid")
  for _ in $(seq 200); do
    kill -0 "$pebble_pid" 2>/dev/null || { cat "$dir/pebble.log" >&2; die "pebble stopped"; }
    curl -sf --cacert "$pki/ca.crt" -o /dev/null "https://127.0.0.1:$pebble_port/dir" && break
    sleep 0.05
  done
  curl -sf --cacert "$pki/ca.crt" -o "$dir/roots.pem" "https://127.0.0.1:$pebble_mgmt/roots/0" &&
    grep -q 'BEGIN CERTIFICATE' "$dir/roots.pem" ||
    { cat "$dir/pebble.log" >&2; die "no root from Pebble's management port"; }
}
stop_pebble() { stop_pid "$pebble_pid"; forget "$pebble_pid"; pebble_pid=""; }

# --- nginx, one per scenario -------------------------------------------------------------------
master="" engine_pid="" other_pid=""
nginx_conf() {  # nginx_conf DIR DATA CONCURRENCY (empty: the default)
  local dir=$1 data=$2 conc=$3 d=$1/tmp
  cat <<CONF
load_module $module;
$user_line
worker_processes 2;
pid $dir/nginx.pid;
error_log $dir/error.log notice;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $d/body;
    proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fastcgi;
    uwsgi_temp_path $d/uwsgi;
    scgi_temp_path $d/scgi;

    portal_data $data;
    portal_acme on;
    portal_acme_directory https://127.0.0.1:$pebble_port/dir;
    portal_acme_ca_certificate $pki/ca.crt;
    portal_acme_contact mailto:ops@bench.example;
    portal_acme_cname_target $cname_target;
    portal_acme_resolver 127.0.0.1:$dns_port;
    ${conc:+portal_acme_concurrency $conc;}

    upstream bench_upstream {
        server 127.0.0.1:$up_port;
        keepalive 32;
    }
    server {  # plain HTTP: the CA's HTTP-01 requests and the wrk load
        listen 127.0.0.1:$http_port backlog=1024;
        portal on;
        location / {
            include $root/conf/portal_params;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://bench_upstream;
        }
    }
    server {  # HTTPS: the certificates the engine issues
        listen 127.0.0.1:$https_port ssl backlog=1024;
        ssl_certificate $pki/fallback.crt;
        ssl_certificate_key $pki/fallback.key;
        portal_ssl on;
        portal on;
        location / {
            include $root/conf/portal_params;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://bench_upstream;
        }
    }
    server {  # the upstream
        listen 127.0.0.1:$up_port backlog=1024;
        keepalive_requests 1000000;
        location / {
            default_type text/plain;
            return 200 "ok\n";
        }
    }
}
CONF
}

start_nginx() {  # start_nginx DIR: sets master, engine_pid, other_pid
  local dir=$1 line=""
  /usr/sbin/nginx -t -q -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" 2>&1 ||
    die "nginx in $dir: the configuration was refused (see above)"
  /usr/sbin/nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" -g 'daemon off;' &
  master=$!
  masters+=("$master")
  engine_pid=""
  for _ in $(seq 200); do
    kill -0 "$master" 2>/dev/null || { cat "$dir/error.log" >&2; die "nginx in $dir stopped"; }
    line=$(grep -m1 'portal: acme: engine started' "$dir/error.log" 2>/dev/null) &&
      engine_pid=$(grep -m1 -o '[0-9]*#[0-9]*: portal: acme: this worker runs the ACME engine' \
                   "$dir/error.log" | cut -d'#' -f1) && [ -n "$engine_pid" ] && break
    sleep 0.05
  done
  [ -n "$engine_pid" ] || { cat "$dir/error.log" >&2; die "nginx in $dir: no ACME engine in 10 s"; }
  other_pid=$(pgrep -P "$master" | grep -vx "$engine_pid" | head -n1) || true
  [ -n "$other_pid" ] || die "nginx in $dir: no second worker"
  grep -q '\[alert\]\|\[emerg\]' "$dir/error.log" && { cat "$dir/error.log" >&2; die "nginx alert"; }
  return 0
}
stop_nginx() { stop_nginx_pid "$master"; forget "$master"; master=""; }

# The load on the portal domain $load_host: wrk over HTTP, paced by acme-load.lua (until
# SIGINT), and new HTTPS connections, each verified, from acme-probe.pl (until SIGTERM).
start_loads() {  # start_loads DIR TAG
  wrk -t1 -c"$load_conns" -d7200s --timeout 5s -s "$here/acme-load.lua" \
    "http://127.0.0.1:$http_port/" -- "$load_host" "$delay_ms" > "$1/wrk-$2.out" 2>&1 &
  wrk_pid=$!
  procs+=("$wrk_pid")
  "${probe[@]}" tls-load --port "$https_port" --ca "$root_pem" --host "$load_host" \
    --rate "$tls_rps" --out "$1/tls-load-$2.out" 2> "$1/tls-load-$2.err" &
  tls_pid=$!
  procs+=("$tls_pid")
}
stop_loads() {  # stop_loads DIR TAG: sets wrk_line and tls_line
  local pid
  kill -INT "$wrk_pid" 2>/dev/null || true
  kill -TERM "$tls_pid" 2>/dev/null || true
  for pid in "$wrk_pid" "$tls_pid"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    stop_pid "$pid"
    forget "$pid"
  done
  wrk_line=$(grep '^BENCH ' "$1/wrk-$2.out") || { cat "$1/wrk-$2.out" >&2; die "no wrk result"; }
  tls_line=$(grep '^TLSLOAD ' "$1/tls-load-$2.out" 2>/dev/null) ||
    { cat "$1/tls-load-$2.err" >&2; die "no HTTPS load result"; }
}

new_data() {  # new_data DIR: data directory owned by the workers' user, snapshot and state
  mkdir -p "$1"
  [ -z "$owner" ] || chown "$owner" "$1"
  "$portalctl" --data "$1" init >/dev/null
}

scenario_dir() {  # scenario_dir NAME: $run/NAME with tmp/, readable by the workers
  mkdir -p "$run/$1/tmp"
  chmod 0755 "$run/$1" "$run/$1/tmp"
}

proc_kb() {  # proc_kb PID FIELD: VmHWM, VmRSS... in kB
  sed -n "s/^$2:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$1/status"
}
cpu_ticks() {  # cpu_ticks PID: utime + stime, in clock ticks
  local line rest
  read -r line < "/proc/$1/stat"
  rest=${line##*) }
  set -- $rest
  echo $(( ${12} + ${13} ))
}
# CPU contention: the machine's busy share (/proc/stat) and the time the workers' main threads
# (their event loops) waited for a CPU while runnable (/proc/PID/task/PID/schedstat).
phase_begin() {
  local c u n sy i io irq sirq st rest
  read -r c u n sy i io irq sirq st rest < /proc/stat
  ph_busy=$((u + n + sy + irq + sirq + st)) ph_all=$((u + n + sy + i + io + irq + sirq + st))
  ph_t=$(now)
  ph_eq=$(cut -d' ' -f2 "/proc/$engine_pid/task/$engine_pid/schedstat")
  ph_oq=$(cut -d' ' -f2 "/proc/$other_pid/task/$other_pid/schedstat")
}
phase_end() {  # phase_end ITEM PREFIX
  local c u n sy i io irq sirq st rest busy all secs eq oq
  read -r c u n sy i io irq sirq st rest < /proc/stat
  busy=$((u + n + sy + irq + sirq + st)) all=$((u + n + sy + i + io + irq + sirq + st))
  secs=$(perl -e 'print(($ARGV[1] - $ARGV[0]) / 1e9)' "$ph_t" "$(now)")
  eq=$(cut -d' ' -f2 "/proc/$engine_pid/task/$engine_pid/schedstat")
  oq=$(cut -d' ' -f2 "/proc/$other_pid/task/$other_pid/schedstat")
  put "$1" "${2}machine_busy_pct" "$(perl -e 'printf "%.0f", 100 * $ARGV[0] / ($ARGV[1] || 1)' \
    $((busy - ph_busy)) $((all - ph_all)))"
  put "$1" "${2}engine_runq_ms_per_s" "$(perl -e 'printf "%.1f", $ARGV[0] / 1e6 / $ARGV[1]' \
    $((eq - ph_eq)) "$secs")"
  put "$1" "${2}other_runq_ms_per_s" "$(perl -e 'printf "%.1f", $ARGV[0] / 1e6 / $ARGV[1]' \
    $((oq - ph_oq)) "$secs")"
}
secs_of() { perl -e 'printf "%.2f", $ARGV[0] / $ARGV[1]' "$1" "$clk_tck"; }

names_file() {  # names_file PREFIX COUNT FILE: PREFIX-0001.zone ...
  perl -e 'printf "%s-%04d.%s\n", $ARGV[0], $_, $ARGV[2] for 1 .. $ARGV[1]' "$1" "$2" "$zone" > "$3"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
put env pebble "${pebble_env[*]}"
put env pebble_version "$(dpkg-query -W -f='${Version}' pebble 2>/dev/null || echo '?')"
put env nginx "$(/usr/sbin/nginx -v 2>&1 | sed 's/^nginx version: //')"
put env cores "$(nproc)"
put env tree "$(git -C "$root" describe --always --dirty 2>/dev/null || echo '?')"
put env cpu "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"

# --- (1) latency ----------------------------------------------------------------------------
s=latency
say "latency: $names names, one after another (default portal_acme_concurrency)"
scenario_dir "$s"
new_data "$run/$s/data"
start_pebble "$run/$s/pebble"
nginx_conf "$run/$s" "$run/$s/data" "" > "$run/$s/nginx.conf"
start_nginx "$run/$s"
names_file lat "$names" "$run/$s/names"
bg_wait "${probe[@]}" dns "$dns_mgmt" "$cname_target" "$run/$s/names" || die "DNS set-up failed"
bg_wait "${probe[@]}" latency --portalctl "$portalctl" --data "$run/$s/data" \
  --port "$https_port" --ca "$run/$s/pebble/roots.pem" --timeout "$name_timeout" \
  --out "$out/acme-latency.tsv" --brand Latency "$run/$s/names" || die "the latency probe failed"
put latency names "$names"
put latency concurrency "4, the default"
put latency errors "$(grep -c '\[error\]\|\[alert\]\|\[crit\]' "$run/$s/error.log" || true)"
put latency engine_vmhwm_kb "$(proc_kb "$engine_pid" VmHWM)"
put latency other_vmhwm_kb "$(proc_kb "$other_pid" VmHWM)"
stop_nginx
stop_pebble

# --- (2) bursts -------------------------------------------------------------------------------
delay_ms=$(( load_conns * 1000 / load_rps ))
[ "$burst" -gt 0 ] || concurrencies=""  # BENCH_ACME_BURST=0: the latency part only
for c in $concurrencies; do
  s=burst-c$c
  say "burst: $burst names in one import, portal_acme_concurrency $c"
  scenario_dir "$s"
  new_data "$run/$s/data"
  start_pebble "$run/$s/pebble"
  nginx_conf "$run/$s" "$run/$s/data" "$c" > "$run/$s/nginx.conf"
  start_nginx "$run/$s"
  root_pem=$run/$s/pebble/roots.pem

  # The portal domain the load asks for, with its certificate before the burst.
  load_host=load-c$c.$zone
  echo "$load_host" > "$run/$s/load.names"
  bg_wait "${probe[@]}" dns "$dns_mgmt" "$cname_target" "$run/$s/load.names" ||
    die "DNS set-up failed"
  bg_wait "${probe[@]}" latency --portalctl "$portalctl" --data "$run/$s/data" \
    --port "$https_port" --ca "$root_pem" --timeout "$name_timeout" --out "$run/$s/load.tsv" \
    --brand Load "$run/$s/load.names" || die "the load domain's probe failed"
  [ -n "$(cut -f2 "$run/$s/load.tsv")" ] || die "$load_host got no certificate"
  curl -sf -o /dev/null -H "Host: $load_host" "http://127.0.0.1:$http_port/" ||
    die "$load_host: no 200 over HTTP"

  names_file "b$c" "$burst" "$run/$s/names"
  perl -e '
    my ($names, $json) = @ARGV;
    open my $in, "<", $names or die "$names: $!\n";
    chomp(my @h = <$in>);
    open my $out, ">", $json or die "$json: $!\n";
    print $out qq({"domains":[\n),
      join(",\n", map { qq({"host":"$h[$_]","brand":"Burst ) . ($_ + 1) . qq("}) } 0 .. $#h),
      "\n]}\n";
    close $out or die "$json: $!\n";
  ' "$run/$s/names" "$run/$s/domains.json"
  say "setting $burst CNAMEs -> $cname_target"
  bg_wait "${probe[@]}" dns "$dns_mgmt" "$cname_target" "$run/$s/names" || die "DNS set-up failed"

  # The same load alone first (the baseline), then again during the burst.
  say "load alone for ${baseline}s: $load_rps HTTP requests/s, $tls_rps HTTPS connections/s"
  start_loads "$run/$s" base
  sleep 1
  phase_begin
  sleep "$baseline"
  phase_end "$s" base_
  stop_loads "$run/$s" base
  for kv in ${wrk_line#BENCH }; do put "$s" "base_http_${kv%%=*}" "${kv#*=}"; done
  for kv in ${tls_line#TLSLOAD }; do put "$s" "base_https_${kv%%=*}" "${kv#*=}"; done
  start_loads "$run/$s" burst
  sleep 2
  e_rss0=$(proc_kb "$engine_pid" VmRSS) o_rss0=$(proc_kb "$other_pid" VmRSS)
  put "$s" engine_rssanon_before_kb "$(proc_kb "$engine_pid" RssAnon)"
  put "$s" engine_rssfile_before_kb "$(proc_kb "$engine_pid" RssFile)"
  put "$s" other_rssanon_before_kb "$(proc_kb "$other_pid" RssAnon)"
  put "$s" other_rssfile_before_kb "$(proc_kb "$other_pid" RssFile)"
  e_hwm0=$(proc_kb "$engine_pid" VmHWM) o_hwm0=$(proc_kb "$other_pid" VmHWM)
  e_cpu0=$(cpu_ticks "$engine_pid") o_cpu0=$(cpu_ticks "$other_pid")
  p_cpu0=$(cpu_ticks "$pebble_pid")
  put "$s" loadavg_before "$(cut -d' ' -f1 /proc/loadavg)"
  phase_begin

  say "burst: portalctl import of $burst names, then polling until all are served"
  bg_wait "${probe[@]}" burst --portalctl "$portalctl" --data "$run/$s/data" \
    --port "$https_port" --ca "$root_pem" --poll 0.5 --timeout "$burst_timeout" \
    --out "$out/acme-burst-c$c.tsv" "$run/$s/names" "$run/$s/domains.json" \
    > "$run/$s/burst.out" || die "the burst probe failed"
  e_cpu1=$(cpu_ticks "$engine_pid") o_cpu1=$(cpu_ticks "$other_pid")
  p_cpu1=$(cpu_ticks "$pebble_pid")
  phase_end "$s" ""
  put "$s" loadavg_after "$(cut -d' ' -f1 /proc/loadavg)"
  sleep 2  # the load goes on a little after the last certificate
  stop_loads "$run/$s" burst
  burst_line=$(grep '^BURST ' "$run/$s/burst.out") || die "no burst result"
  "$portalctl" --data "$run/$s/data" --json status > "$out/acme-status-c$c.json" || true

  for kv in ${burst_line#BURST }; do put "$s" "${kv%%=*}" "${kv#*=}"; done
  put "$s" concurrency "$c"
  for kv in ${wrk_line#BENCH }; do put "$s" "http_${kv%%=*}" "${kv#*=}"; done
  for kv in ${tls_line#TLSLOAD }; do put "$s" "https_${kv%%=*}" "${kv#*=}"; done
  put "$s" load_rps_target "$load_rps"
  put "$s" load_connections "$load_conns"
  put "$s" tls_rps_target "$tls_rps"
  put "$s" engine_pid "$engine_pid"
  put "$s" engine_vmrss_before_kb "$e_rss0"
  put "$s" other_vmrss_before_kb "$o_rss0"
  put "$s" engine_vmhwm_before_kb "$e_hwm0"
  put "$s" other_vmhwm_before_kb "$o_hwm0"
  put "$s" engine_vmhwm_kb "$(proc_kb "$engine_pid" VmHWM)"
  put "$s" other_vmhwm_kb "$(proc_kb "$other_pid" VmHWM)"
  for w in engine other; do
    wp=$engine_pid
    [ "$w" = other ] && wp=$other_pid
    put "$s" "${w}_vmrss_after_kb" "$(proc_kb "$wp" VmRSS)"
    put "$s" "${w}_rssanon_after_kb" "$(proc_kb "$wp" RssAnon)"
    put "$s" "${w}_rssfile_after_kb" "$(proc_kb "$wp" RssFile)"
  done
  put "$s" engine_threads "$(sed -n 's/^Threads:[[:space:]]*//p' "/proc/$engine_pid/status")"
  put "$s" engine_cpu_s "$(secs_of $((e_cpu1 - e_cpu0)))"
  put "$s" other_cpu_s "$(secs_of $((o_cpu1 - o_cpu0)))"
  put "$s" pebble_cpu_s "$(secs_of $((p_cpu1 - p_cpu0)))"
  put "$s" pebble_vmhwm_kb "$(proc_kb "$pebble_pid" VmHWM)"
  put "$s" state_mdb_bytes "$(stat -c %s "$run/$s/data/state/data.mdb")"
  put "$s" log_errors "$(grep -c '\[error\]\|\[alert\]\|\[crit\]' "$run/$s/error.log" || true)"
  put "$s" orders_created "$(grep -c 'portal: acme: portal domain "[^"]*": order .* created' \
                             "$run/$s/error.log" || true)"
  if grep -q '\[error\]\|\[alert\]\|\[crit\]' "$run/$s/error.log"; then
    echo "bench acme: $s logged:" >&2
    grep '\[error\]\|\[alert\]\|\[crit\]' "$run/$s/error.log" | head -n 5 >&2
  fi
  stop_nginx
  stop_pebble
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
put env loadavg "before $load_before, after $load_after"

# --- report ---------------------------------------------------------------------------------
echo
echo "ACME engine against Pebble (issue 4)"
perl "$here/acme-summarise.pl" "$raw" "$out" "$out/acme-results.tsv"
echo
echo "results: $out/acme-results.tsv (per name: $out/acme-latency.tsv, $out/acme-burst-c*.tsv)"
