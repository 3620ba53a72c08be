#!/usr/bin/env bash
# Starts `dbss-exporter demo` on a free loopback port, waits until it is
# ready, and runs `promtool check metrics` on its /metrics page (plain and
# gzip). Usage: check-metrics.sh PATH_TO_BINARY
set -euo pipefail
bin=${1:?usage: check-metrics.sh BINARY}
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log=$(mktemp)
"$bin" demo --web.listen-address="127.0.0.1:$port" --demo.projects=6 --demo.instances=4 2>"$log" &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$log"' EXIT

for _ in $(seq 1 100); do
  if curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null; then break; fi
  sleep 0.2
done
curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null || { cat "$log"; echo "demo never became ready" >&2; exit 1; }

page=$(mktemp)
curl -sf "http://127.0.0.1:$port/metrics" >"$page"
promtool check metrics <"$page"
curl -sf -H 'Accept-Encoding: gzip' "http://127.0.0.1:$port/metrics" | gunzip | promtool check metrics
series=$(grep -c '^dbss_instance_upgrade_status{' "$page")
rm -f "$page"
[ "$series" -eq 24 ] || { echo "expected 24 upgrade-status series, got $series" >&2; exit 1; }
echo "promtool check metrics: OK ($series upgrade-status series)"
