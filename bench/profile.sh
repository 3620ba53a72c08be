#!/usr/bin/env bash
# Where the exporter's CPU goes while /metrics is served as fast as wrk can
# ask: starts the demo at PROJECTS x INSTANCES, records it with perf during a
# wrk run (plain or gzip), and prints the split between the kernel and the
# exporter's own code, then the hottest symbols.
#
# Usage: bench/profile.sh [PROJECTS] [INSTANCES] [SECONDS] [plain|gzip]
# Needs: cargo, curl, wrk and perf (apt-get install wrk linux-perf), python3.
set -euo pipefail
projects=${1:-1000}
instances=${2:-10}
secs=${3:-8}
mode=${4:-plain}
cd "$(dirname "$0")/.."
cargo build --release --quiet
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
target/release/dbss-exporter demo --web.listen-address="127.0.0.1:$port" \
  --demo.projects="$projects" --demo.instances="$instances" --demo.poll-interval=1h 2>"$work/log" &
pid=$!
for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null && break; sleep 0.1; done
hdr=(); [ "$mode" = gzip ] && hdr=(-H 'Accept-Encoding: gzip')
echo "page: $(curl -sf "${hdr[@]}" "http://127.0.0.1:$port/metrics" | wc -c) B ($mode)"
perf record -q -F 499 -g -p "$pid" -o "$work/perf.data" -- sleep "$secs" 2>/dev/null &
rec=$!
wrk -t2 -c8 -d"${secs}s" "${hdr[@]}" "http://127.0.0.1:$port/metrics" | grep -E 'Requests/sec|Transfer/sec'
wait "$rec" || true
echo "-- CPU samples by object"
perf report -i "$work/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null | grep '%' | head -5
echo "-- hottest symbols"
perf report -i "$work/perf.data" --no-children --sort sym --stdio -g none 2>/dev/null | grep '%' | head -12
