#!/usr/bin/env bash
# Draws docs/benchmarks.png from scripts/bench's own results (build/bench/*.tsv): the worker CPU
# per request of each HTTP scenario and per handshake of each TLS scenario, as ratios to the
# baseline of the same run, and the ACME latency from domain add to the first good handshake.
# A part whose results are missing is left out. Usage: scripts/bench.d/plot.sh [OUT.png]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${BENCH_OUT:-${BUILD_DIR:-$root/build}/bench}
out=${1:-$root/docs/benchmarks.png}
command -v gnuplot >/dev/null || { echo "plot: gnuplot is missing: run scripts/deps" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# "label<TAB>ratio" rows for the scenarios of one results file, in the given order.
ratios() {  # FILE METRIC ITEM=LABEL...
  local file=$1 metric=$2; shift 2
  local pair item label
  for pair in "$@"; do
    item=${pair%%=*} label=${pair#*=}
    awk -F'\t' -v i="$item" -v m="$metric" -v l="$label" \
      '$1 == i && $2 == m { printf "\"%s\"\t%s\n", l, $3 }' "$file"
  done
}

plots=()
if [ -f "$dir/results.tsv" ]; then
  ratios "$dir/results.tsv" vs_plain plain='plain proxy' plain2='plain again (A/A)' \
    headers='fixed headers' portal_10k='portal, 10k' portal_1m='portal, 1M' \
    portal_vars='portal, as variables' map_10k='map, 10k' > "$tmp/http"
  plots+=("set title 'HTTP: worker CPU per request / plain proxy'; set yrange [0:*]; \
plot '$tmp/http' using 2:xtic(1) with boxes notitle, 1 with lines dt 2 lc rgb 'gray' notitle")
fi
if [ -f "$dir/tls_results.tsv" ]; then
  ratios "$dir/tls_results.tsv" vs_static static='static cert' static2='static again (A/A)' \
    portal_small='portal, 1k' portal_large='portal, many' \
    files_small='$ssl_server_name, 1k' servers_small='server blocks, 1k' > "$tmp/tls"
  plots+=("set title 'TLS 1.3 full handshakes: worker CPU / static certificate'; set yrange [0:*]; \
plot '$tmp/tls' using 2:xtic(1) with boxes notitle, 1 with lines dt 2 lc rgb 'gray' notitle")
fi
if [ -f "$dir/acme-latency.tsv" ]; then
  sort -t$'\t' -k2 -g "$dir/acme-latency.tsv" | awk -F'\t' '{ print NR "\t" $2 }' > "$tmp/acme"
  plots+=("set title 'ACME: portalctl domain add -> first verified handshake (Pebble)'; \
set yrange [0:*]; set xlabel 'name (sorted)'; set ylabel 'seconds'; \
plot '$tmp/acme' using 1:2 with linespoints notitle, 3 with lines dt 2 lc rgb 'gray' title 'goal 3 s'")
fi
[ ${#plots[@]} -gt 0 ] || { echo "plot: no results in $dir: run scripts/bench first" >&2; exit 1; }

{
  echo "set terminal pngcairo noenhanced size 900,$((300 * ${#plots[@]})) font 'sans,9'"
  echo "set output '$out'"
  echo "set multiplot layout ${#plots[@]},1"
  echo "set style fill solid 0.6; set boxwidth 0.6; set grid ytics; set xtics nomirror"
  for p in "${plots[@]}"; do echo "unset xlabel; unset ylabel; $p"; done
  echo "unset multiplot"
} > "$tmp/plot.gp"
gnuplot "$tmp/plot.gp"
echo "plot: $out"
