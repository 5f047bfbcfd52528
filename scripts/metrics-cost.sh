#!/usr/bin/env bash
# What the metrics cost: requests per second of the catalog's product page,
# straight to the service (no nginx), release build, without and with
# TEIPSUM_METRICS_LISTEN (which turns the per-request measurements on), in
# interleaved runs of wrk (off/on, then on/off, ...) so that a machine
# getting busier or quieter does not favour one side. While the metrics
# listener is on it is scraped every second (Prometheus's default is 15 s;
# TEIPSUM_SCRAPE_EVERY=15 scrapes as Prometheus would). It also prints the
# catalog's own CPU time per request (from /proc), which a virtual machine's
# neighbours disturb far less than the request rate.
#
#   scripts/metrics-cost.sh [ROUNDS] [SECONDS] [CONNECTIONS]
#
# Needs PostgreSQL's server binaries (Debian's /usr/lib/postgresql/N/bin or
# $TEIPSUM_PG_BIN), tansu (scripts/setup.sh), wrk and curl. Everything runs
# on loopback and in a temporary directory removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds="${1:-5}"
seconds="${2:-10}"
connections="${3:-32}"
# Seconds between scrapes while the metrics listener is on (Prometheus: 15).
scrape_every="${TEIPSUM_SCRAPE_EVERY:-1}"
target="${CARGO_TARGET_DIR:-target}"

cargo build --release -p teipsum-catalog
bin="$target/release/teipsum-catalog"

pg_bin="${TEIPSUM_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | head -1)}"
tansu="${TEIPSUM_TANSU:-$(command -v tansu || echo "$HOME/.cargo/bin/tansu")}"
for tool in "$pg_bin/initdb" "$tansu" wrk curl; do
  command -v "$tool" >/dev/null || { echo "metrics-cost: $tool is missing" >&2; exit 1; }
done

work="$(mktemp -d /tmp/teipsum-metrics-cost.XXXXXX)"
chmod 755 "$work"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$work/pg/postmaster.pid" ] && as_pg "$pg_bin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# PostgreSQL refuses to run as root: the cluster belongs to `postgres` then.
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The cluster and its socket directory (no TCP: loopback sockets only).
sock="$work/sock"
mkdir "$work/pg" "$sock"
if [ "$(id -u)" = 0 ]; then chown postgres "$work/pg" "$sock"; fi
as_pg "$pg_bin/initdb" -D "$work/pg" -A trust -U postgres >/dev/null
as_pg "$pg_bin/pg_ctl" -D "$work/pg" -l "$work/pg/log" -w \
  -o "-k $sock -c listen_addresses=''" start >/dev/null
as_pg "$pg_bin/createdb" -h "$sock" -U postgres teipsum_catalog

kafka_port="$(free_port)"
"$tansu" broker --listener-url "tcp://127.0.0.1:$kafka_port" \
  --advertised-listener-url "tcp://127.0.0.1:$kafka_port" \
  --storage-engine memory://tansu/ --cluster-id teipsum-bench >"$work/tansu.log" 2>&1 &
pids+=($!)

port="$(free_port)"
metrics_port="$(free_port)"
catalog_env=(
  TEIPSUM_SERVICE=catalog
  "TEIPSUM_LISTEN=127.0.0.1:$port"
  "TEIPSUM_DATABASE=host=$sock dbname=teipsum_catalog user=postgres"
  "TEIPSUM_KAFKA_BROKERS=127.0.0.1:$kafka_port"
  TEIPSUM_KAFKA_GROUP=teipsum-catalog
  "TEIPSUM_TOPIC_PRODUCERS=inventory-events=inventory;product-events=admin-product"
  TEIPSUM_JWT_ISSUER=https://teipsum.store
  TEIPSUM_JWT_AUDIENCE=teipsum
  TEIPSUM_LOG=warn
)

catalog=""
start_catalog() { # $1: on|off
  local extra=()
  [ "$1" = on ] && extra=("TEIPSUM_METRICS_LISTEN=127.0.0.1:$metrics_port")
  env -i PATH="$PATH" "${catalog_env[@]}" "${extra[@]}" "$bin" >>"$work/catalog.log" 2>&1 &
  catalog=$!
  for _ in $(seq 600); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz")" = 200 ] && return 0
    sleep 0.1
  done
  echo "metrics-cost: the catalog did not get ready" >&2; tail -20 "$work/catalog.log" >&2; exit 1
}
stop_catalog() { kill -TERM "$catalog"; wait "$catalog" || true; }

# Migrate once, then one product in the read model (the snapshot loads the
# table at start).
start_catalog off
stop_catalog
product="0f9e8d7c-6b5a-4c3d-9e1f-2a3b4c5d6e7f"
as_pg "$pg_bin/psql" -h "$sock" -U postgres -d teipsum_catalog -q -c \
  "INSERT INTO products (id, version, name, description, sku, price_minor, currency, category, image_urls, active, created_at, updated_at)
   VALUES ('$product', 1, 'Bench', repeat('x', 120), 'BENCH-1', 1999, 'EUR', 'bench', '{}', true, now(), now())"
url="http://127.0.0.1:$port/api/products/$product"

# CPU time the catalog has used, in clock ticks (utime + stime of /proc/PID/stat).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$catalog/stat"; }
clock_ticks="$(getconf CLK_TCK)"

run() { # $1: on|off; prints requests/s and the catalog's CPU µs per request
  start_catalog "$1"
  local scraper=""
  if [ "$1" = on ]; then
    curl -sf "http://127.0.0.1:$metrics_port/metrics" >/dev/null
    (while sleep "$scrape_every"; do curl -s -o /dev/null "http://127.0.0.1:$metrics_port/metrics"; done) &
    scraper=$!
  fi
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$url")" = 200 ] || { echo "metrics-cost: no product page" >&2; exit 1; }
  wrk -t 1 -c "$connections" -d 2s "$url" >/dev/null # warm-up
  local before after report rps requests
  before="$(cpu_ticks)"
  report="$(wrk -t 1 -c "$connections" -d "${seconds}s" "$url")"
  after="$(cpu_ticks)"
  rps="$(awk '/^Requests\/sec:/ {print $2}' <<<"$report")"
  requests="$(awk '/requests in/ {print $1}' <<<"$report")"
  [ -n "$scraper" ] && { kill "$scraper"; wait "$scraper" 2>/dev/null || true; }
  stop_catalog
  echo "$rps $(python3 -c "print(f'{($after - $before) / $clock_ticks / $requests * 1e6:.2f}')")"
}

# What one scrape costs the catalog, idle: CPU time over 100 scrapes.
start_catalog on
curl -s -o /dev/null "http://127.0.0.1:$metrics_port/metrics"
scrape_before="$(cpu_ticks)"
scrape_started="$(date +%s.%N)"
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$metrics_port/metrics"; done
scrape_after="$(cpu_ticks)"
scrape_ended="$(date +%s.%N)"
stop_catalog
python3 -c "print(f'a scrape, idle: {($scrape_after - $scrape_before) / $clock_ticks / 100 * 1e3:.2f} ms of the catalog\'s CPU, {($scrape_ended - $scrape_started) * 10:.1f} ms wall (means of 100)')"

off=()
on=()
off_cpu=()
on_cpu=()
for round in $(seq "$rounds"); do
  if [ $((round % 2)) = 1 ]; then order=(off on); else order=(on off); fi
  for mode in "${order[@]}"; do
    read -r rps cpu <<<"$(run "$mode")"
    echo "round $round metrics $mode: $rps requests/s, $cpu µs of the catalog's CPU a request"
    if [ "$mode" = on ]; then on+=("$rps"); on_cpu+=("$cpu"); else off+=("$rps"); off_cpu+=("$cpu"); fi
  done
done

python3 - "${off[*]}" "${on[*]}" "${off_cpu[*]}" "${on_cpu[*]}" <<'EOF'
import statistics, sys
off = [float(x) for x in sys.argv[1].split()]
on = [float(x) for x in sys.argv[2].split()]
off_cpu = [float(x) for x in sys.argv[3].split()]
on_cpu = [float(x) for x in sys.argv[4].split()]
mo, mn = statistics.median(off), statistics.median(on)
print(f"median without metrics: {mo:.0f} requests/s (runs: {', '.join(f'{x:.0f}' for x in off)})")
print(f"median with metrics:    {mn:.0f} requests/s (runs: {', '.join(f'{x:.0f}' for x in on)})")
print(f"difference of the medians: {100 * (mn - mo) / mo:+.1f} %")
# Each round's two runs are back to back: their ratio is less exposed to
# the machine's load drifting over the whole run than the medians are.
ratios = [b / a for a, b in zip(off, on)]
print(f"median of the rounds' on/off ratios: {100 * (statistics.median(ratios) - 1):+.1f} %"
      f" (rounds: {', '.join(f'{100 * (r - 1):+.1f}' for r in ratios)})")
# The catalog's own CPU time per request: what the measurements cost it,
# whatever else the machine (a VM with neighbours) does meanwhile.
co, cn = statistics.median(off_cpu), statistics.median(on_cpu)
print(f"catalog CPU a request, medians: {co:.2f} µs without, {cn:.2f} µs with metrics: {100 * (cn - co) / co:+.1f} %"
      f" (runs without: {', '.join(f'{x:.2f}' for x in off_cpu)}; with: {', '.join(f'{x:.2f}' for x in on_cpu)})")
EOF
