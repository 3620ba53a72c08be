#!/usr/bin/env bash
# Measures dbss-exporter's performance figures, all in one run:
#
#  1. /metrics at PROJECTS x INSTANCES series (default 1000 x 10 = 10,000),
#     plain and gzip: requests/s, mean latency, page size and peak RSS, with
#     wrk. When PEERS names the reference peers' script (metrics-serving.sh
#     of the benchmark kit: Prometheus' Go client and nginx serving the same
#     number of series), that script measures all three side by side and
#     prints the ratios; otherwise only the exporter is measured.
#  2. The first poll cycle over PROJECTS projects with the simulator
#     answering after 50 ms at concurrency 32, against its latency bound
#     (PROJECTS / 32 x 50 ms), and CPU time per 1,000 polls.
#  3. The same for 10,000 projects of one instance (10,000 series), plus the
#     mean scrape latency while a poll cycle runs against idle, and the RSS.
#
# Usage: bench/run.sh [PROJECTS] [INSTANCES] [SECONDS]
# Needs: cargo, curl, wrk (apt-get install wrk), python3.
set -euo pipefail
projects=${1:-1000}
instances=${2:-10}
secs=${3:-10}
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=$PWD/target/release/dbss-exporter
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]:-}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_seconds() { awk -v t="$(getconf CLK_TCK)" '{print ($14 + $15) / t}' "/proc/$1/stat"; }
kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }

# start_demo NAME ARGS...: starts the demo, sets $pid, $url and $t0.
start_demo() {
  local name=$1; shift
  local port; port=$(free_port)
  t0=$(date +%s.%N)
  "$bin" demo --web.listen-address="127.0.0.1:$port" "$@" 2>"$work/$name.log" &
  pid=$!; pids+=("$pid")
  url="http://127.0.0.1:$port/metrics"
  for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null && return 0
    sleep 0.1
  done
  echo "demo $name never became ready" >&2; cat "$work/$name.log" >&2; exit 1
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
echo "CPU per 1,000 polls (exporter and simulator together, start-up included): $(awk -v c="$(cpu_seconds "$pid")" -v p="$projects" 'BEGIN {printf "%.3f", c / p * 1000}') s"
series=$(curl -sf "$url" | grep -c '^dbss_instance_upgrade_status{')
echo "series served: $series; page $(curl -sf "$url" | wc -c) B plain, $(curl -sf -H 'Accept-Encoding: gzip' "$url" | wc -c) B gzip"
for mode in plain gzip; do
  if [ -n "${PEERS:-}" ]; then
    bash "$PEERS" "$url" "$series" "$secs" "$mode"
  else
    hdr=(); [ "$mode" = gzip ] && hdr=(-H 'Accept-Encoding: gzip')
    wrk -t2 -c8 -d"${secs}s" "${hdr[@]}" "$url" | awk -v m="$mode" '/Requests\/sec/ {r=$2} /Latency/ && !l {l=$2} END {printf "%s: %s req/s, mean latency %s\n", m, r, l}'
  fi
done
echo "exporter peak RSS: $(kib "$pid" VmHWM) kB, RSS now: $(kib "$pid" VmRSS) kB"
kill "$pid"; wait "$pid" 2>/dev/null || true

echo
echo "== 2. 10,000 projects x 1 instance, concurrency 32, simulator latency 50 ms"
start_demo large --demo.projects=10000 --demo.instances=1 \
  --demo.poll-interval=40s --demo.concurrency=32 --demo.latency=50ms
cycle=$(first_cycle large)
echo "first poll cycle: ${cycle}s over 10000 projects (latency bound 15.625s, ratio $(awk -v a="$cycle" 'BEGIN {printf "%.2f", a/15.625}'))"
echo "CPU per 1,000 polls: $(awk -v c="$(cpu_seconds "$pid")" 'BEGIN {printf "%.3f", c / 10}') s; RSS: $(kib "$pid" VmRSS) kB"
start=$(date +%s.%N)
# Idle: every project was polled; the next cycle starts about 40 s after start.
sleep "$(awk -v s="$start" -v t="$t0" 'BEGIN {w = t + 20 - s; print (w > 0 ? w : 0)}')"
idle=$(latency_ms "$url" 8)
sleep "$(awk -v n="$(date +%s.%N)" -v t="$t0" 'BEGIN {w = t + 42 - n; print (w > 0 ? w : 0)}')"
busy=$(latency_ms "$url" 8)
echo "mean scrape latency (gzip): idle ${idle} ms, during a poll cycle ${busy} ms (ratio $(awk -v a="$busy" -v b="$idle" 'BEGIN {printf "%.2f", a/b}'))"
echo "RSS after the second cycle: $(kib "$pid" VmRSS) kB, peak $(kib "$pid" VmHWM) kB"
