#!/usr/bin/env bash
# Soak run: the exporter's demo with random faults (200 projects polled every
# 5 s, some answers 503, 429, slow or dropped) while /metrics is scraped as
# fast as possible, for MINUTES minutes (default 3). Prints the scrapes
# served, the upstream requests and poll errors, and the exporter's memory,
# threads and open file descriptors at the start and the end.
#
# Usage: bench/soak.sh [MINUTES] [PORT]
# Everything stays on 127.0.0.1; every loop is bounded by the run time.
set -euo pipefail

minutes=${1:-3}
port=${2:-19931}
cd "$(dirname "$0")/.."

cargo build --release --quiet
bin=target/release/dbss-exporter
log=$(mktemp)
url="http://127.0.0.1:${port}/metrics"

"$bin" demo --demo.faults --demo.projects 200 --demo.poll-interval 5s \
    --web.listen-address="127.0.0.1:${port}" --log.level warn 2>"$log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -f "$log"' EXIT

for _ in $(seq 1 100); do
    curl -fs -o /dev/null "$url" && break
    sleep 0.1
done

# Figures of the exporter process: RSS, threads, open descriptors.
proc_figures() {
    local rss threads fds
    rss=$(awk '/^VmRSS/ {print $2 " " $3}' "/proc/${pid}/status")
    threads=$(awk '/^Threads/ {print $2}' "/proc/${pid}/status")
    fds=$(ls "/proc/${pid}/fd" | wc -l)
    echo "rss=${rss} threads=${threads} open_fds=${fds}"
}

# Sums a family from the page, grouped by one label (or in total).
sum_by() {
    local family=$1 label=${2:-}
    curl -fs "$url" | awk -v fam="$family" -v lab="$label" '
        index($0, fam "{") == 1 || index($0, fam " ") == 1 {
            key = "total"
            if (lab != "" && match($0, lab "=\"[^\"]*\"")) key = substr($0, RSTART, RLENGTH)
            sum[key] += $NF
        }
        END { for (k in sum) printf "  %s %d\n", k, sum[k] }' | sort
}

# Let every project be polled once before taking the first figures.
sleep 10
echo "start:  $(proc_figures)"
seconds=$((minutes * 60))

loaders=()
if command -v wrk >/dev/null; then
    wrk -t1 -c8 -d"${seconds}s" "$url" | sed 's/^/  wrk: /' &
    loaders+=($!)
else
    end=$((SECONDS + seconds))
    for _ in 1 2 3 4; do
        (n=0; while ((SECONDS < end)); do curl -fs -o /dev/null "$url" && n=$((n + 1)); done; echo "  curl worker: $n scrapes") &
        loaders+=($!)
    done
fi

for ((t = 30; t < seconds; t += 30)); do
    sleep 30
    echo "t=${t}s: $(proc_figures)"
done
# Only the load: the exporter is a background job too and never ends.
for l in "${loaders[@]}"; do
    wait "$l" 2>/dev/null || true
done
echo "end:    $(proc_figures)"

echo "scrapes served (dbss_exporter_scrapes_total):"
sum_by dbss_exporter_scrapes_total
echo "upstream API requests by code (dbss_api_requests_total):"
sum_by dbss_api_requests_total code
echo "retries (dbss_api_retries_total):"
sum_by dbss_api_retries_total
echo "failed polls by reason (dbss_poll_errors_total):"
sum_by dbss_poll_errors_total reason
echo "projects up / down (dbss_up):"
curl -fs "$url" | awk '/^dbss_up\{/ {n[$NF]++} END {printf "  up=%d down=%d\n", n["1"], n["0"]}'
echo "warn lines logged: $(grep -c 'level=warn' "$log" || true)"
