#!/usr/bin/env bash
# Measures dbss-exporter's performance figures, all in one run:
#
#  1. PROJECTS x INSTANCES (default 1000 x 10 = 10,000 series): the first poll
#     cycle with the simulator answering after 50 ms at concurrency 32,
#     against its latency bound (PROJECTS / 32 x 50 ms), the time to ready
#     and the CPU per 1,000 polls; then /metrics plain and gzip: requests/s,
#     mean latency, page size and peak RSS, with wrk. When PEERS names the
#     reference peers' script (metrics-serving.sh of the benchmark kit:
#     Prometheus' Go client and nginx serving the same number of series),
#     that script measures all three side by side and prints the ratios;
#     otherwise only the exporter is measured. Then, where nginx is
#     installed, nginx serves the exporter's own page (plain, and its gzip
#     body pre-compressed) beside it: the limit for those very bytes.
#  2. The same poll figures for 10,000 projects of one instance, plus the
#     mean scrape latency while a poll cycle runs against idle, and the RSS.
#
# The simulator runs in a process of its own (`dbss-exporter simulator`), so
# CPU and memory figures are the exporter's alone.
#
# Usage: bench/run.sh [PROJECTS] [INSTANCES] [SECONDS]
# Needs: cargo, curl, wrk (apt-get install wrk), python3; nginx for the
# same-page limit (apt-get install nginx-light).
set -euo pipefail
projects=${1:-1000}
instances=${2:-10}
secs=${3:-10}
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=$PWD/target/release/dbss-exporter
work=$(mktemp -d)
pids=()
cleanup() {
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null
  for p in "${pids[@]:-}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_seconds() { awk -v t="$(getconf CLK_TCK)" '{print ($14 + $15) / t}' "/proc/$1/stat"; }
kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }

# start_demo NAME ARGS...: starts the simulator with the demo fleet that ARGS
# (demo flags) describe and, in a process of its own, the exporter on the
# configuration the simulator writes, so that every figure of the exporter is
# its own; waits for /-/ready. Sets $pid (the exporter), $sim_pid, $url, $t0
# (the exporter's start) and $ready (seconds from start to ready, to 0.1 s).
start_demo() {
  local name=$1; shift
  "$bin" simulator --simulator.config-dir="$work/$name" --log.level=warn "$@" 2>"$work/$name-sim.log" &
  sim_pid=$!; pids+=("$sim_pid")
  for _ in $(seq 1 100); do [ -f "$work/$name/config.toml" ] && break; sleep 0.1; done
  local port; port=$(free_port)
  t0=$(date +%s.%N)
  "$bin" --config.file="$work/$name/config.toml" --web.listen-address="127.0.0.1:$port" 2>"$work/$name.log" &
  pid=$!; pids+=("$pid")
  url="http://127.0.0.1:$port/metrics"
  for _ in $(seq 1 600); do
    if curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null; then
      ready=$(awk -v n="$(date +%s.%N)" -v t="$t0" 'BEGIN {printf "%.2f", n - t}')
      return 0
    fi
    sleep 0.1
  done
  echo "exporter $name never became ready" >&2; cat "$work/$name-sim.log" "$work/$name.log" >&2; exit 1
}

# first_cycle NAME: seconds from start until every target was polled once.
first_cycle() {
  grep -m1 'every target polled once' "$work/$1.log" | sed -E 's/.*seconds=([0-9.]+).*/\1/'
}

latency_ms() { # URL SECONDS: mean latency of wrk -t1 -c1 with gzip, in ms
  wrk -t1 -c1 -d"$2s" -H 'Accept-Encoding: gzip' "$1" | awk '/Latency/ {v=$2; u=v; gsub(/[0-9.]/,"",u); gsub(/[a-z]/,"",v);
    if (u=="us") v/=1000; else if (u=="s") v*=1000; printf "%.3f", v; exit}'
}

echo "== 1. /metrics at $projects x $instances series"
start_demo serve --demo.projects="$projects" --demo.instances="$instances" \
  --demo.poll-interval=5m --demo.concurrency=32 --demo.latency=50ms
cycle=$(first_cycle serve)
bound=$(awk -v p="$projects" 'BEGIN {printf "%.3f", p / 32 * 0.05}')
echo "first poll cycle: ${cycle}s over $projects projects (latency bound ${bound}s, ratio $(awk -v a="$cycle" -v b="$bound" 'BEGIN {printf "%.2f", a/b}'))"
echo "ready after ${ready}s"
echo "CPU per 1,000 polls, start-up included: exporter $(awk -v c="$(cpu_seconds "$pid")" -v p="$projects" 'BEGIN {printf "%.3f", c / p * 1000}') s, simulator $(awk -v c="$(cpu_seconds "$sim_pid")" -v p="$projects" 'BEGIN {printf "%.3f", c / p * 1000}') s"
series=$(curl -sf "$url" | grep -c '^dbss_instance_upgrade_status{')
echo "series served: $series; page $(curl -sf "$url" | wc -c) B plain, $(curl -sf -H 'Accept-Encoding: gzip' "$url" | wc -c) B gzip"
for mode in plain gzip; do
  if [ -n "${PEERS:-}" ]; then
    bash "$PEERS" "$url" "$series" "$secs" "$mode" | tee "$work/peers-$mode.txt"
    # The pages differ in size (the exporter's carries every family, the
    # peers' only the status series), so also compare bytes served per second.
    awk '/ req\/s / { for (i = 1; i <= NF; i++) if ($i == "page") b[$1] = $2 * $(i + 1) }
      END { if (b["exporter"] && b["client_golang"] && b["nginx-static"]) {
        printf "bytes/s: exporter %.0f MB/s, client_golang %.0f MB/s, nginx-static %.0f MB/s\n", b["exporter"] / 1e6, b["client_golang"] / 1e6, b["nginx-static"] / 1e6
        printf "byte-rate ratio exporter/client_golang %.2f, exporter/nginx-static %.2f\n", b["exporter"] / b["client_golang"], b["exporter"] / b["nginx-static"] } }' "$work/peers-$mode.txt"
  else
    hdr=(); [ "$mode" = gzip ] && hdr=(-H 'Accept-Encoding: gzip')
    wrk -t2 -c8 -d"${secs}s" "${hdr[@]}" "$url" | awk -v m="$mode" '/Requests\/sec/ {r=$2} /Latency/ && !l {l=$2} END {printf "%s: %s req/s, mean latency %s\n", m, r, l}'
  fi
done
echo "exporter peak RSS: $(kib "$pid" VmHWM) kB, RSS now: $(kib "$pid" VmRSS) kB"
if command -v nginx >/dev/null; then
  # The peers' page holds only the status family; the exporter's holds every
  # family, so it is several times larger. nginx serving the exporter's own
  # page (and its own gzip body, pre-compressed) is the machine's limit for
  # exactly these bytes.
  mkdir -p "$work/html"
  curl -sf "$url" > "$work/html/metrics"
  curl -sf -H 'Accept-Encoding: gzip' "$url" > "$work/html/metrics.gz"
  chmod -R a+rX "$work"
  nport=$(free_port)
  cat > "$work/nginx.conf" <<CONF
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx.err;
events { worker_connections 1024; }
http { access_log off; sendfile on; gzip_static on; default_type text/plain;
  server { listen 127.0.0.1:$nport; root $work/html; } }
CONF
  nginx -c "$work/nginx.conf" -p "$work"
  sleep 0.5
  for mode in plain gzip; do
    hdr=(); [ "$mode" = gzip ] && hdr=(-H 'Accept-Encoding: gzip')
    e=$(wrk -t2 -c8 -d"${secs}s" "${hdr[@]}" "$url" | awk '/Requests\/sec/ {print $2}')
    n=$(wrk -t2 -c8 -d"${secs}s" "${hdr[@]}" "http://127.0.0.1:$nport/metrics" | awk '/Requests\/sec/ {print $2}')
    echo "same page, $mode: exporter $e req/s, nginx static $n req/s (ratio $(awk -v a="$e" -v b="$n" 'BEGIN {printf "%.2f", a/b}'))"
  done
  kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
fi
kill "$pid" "$sim_pid"; wait "$pid" "$sim_pid" 2>/dev/null || true

echo
echo "== 2. 10,000 projects x 1 instance, concurrency 32, simulator latency 50 ms"
start_demo large --demo.projects=10000 --demo.instances=1 \
  --demo.poll-interval=40s --demo.concurrency=32 --demo.latency=50ms
cycle=$(first_cycle large)
echo "first poll cycle: ${cycle}s over 10000 projects (latency bound 15.625s, ratio $(awk -v a="$cycle" 'BEGIN {printf "%.2f", a/15.625}'))"
echo "ready after ${ready}s"
echo "CPU per 1,000 polls: exporter $(awk -v c="$(cpu_seconds "$pid")" 'BEGIN {printf "%.3f", c / 10}') s, simulator $(awk -v c="$(cpu_seconds "$sim_pid")" 'BEGIN {printf "%.3f", c / 10}') s; exporter RSS: $(kib "$pid" VmRSS) kB"
start=$(date +%s.%N)
# Idle: every project was polled; the next cycle starts about 40 s after start.
sleep "$(awk -v s="$start" -v t="$t0" 'BEGIN {w = t + 20 - s; print (w > 0 ? w : 0)}')"
idle=$(latency_ms "$url" 8)
sleep "$(awk -v n="$(date +%s.%N)" -v t="$t0" 'BEGIN {w = t + 42 - n; print (w > 0 ? w : 0)}')"
busy=$(latency_ms "$url" 8)
echo "mean scrape latency (gzip): idle ${idle} ms, during a poll cycle ${busy} ms (ratio $(awk -v a="$busy" -v b="$idle" 'BEGIN {printf "%.2f", a/b}'))"
echo "RSS after the second cycle: $(kib "$pid" VmRSS) kB, peak $(kib "$pid" VmHWM) kB"
