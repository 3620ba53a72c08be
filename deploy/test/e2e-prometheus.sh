#!/usr/bin/env bash
# End-to-end check of the deploy kit against a real Prometheus.
#
#   deploy/test/e2e-prometheus.sh PATH_TO_DBSS_EXPORTER_BINARY
#
# Starts `dbss-exporter demo` and a Prometheus that scrapes it every 5s with
# deploy/prometheus/alerts.yml loaded, both on 127.0.0.1 only, then checks
# through Prometheus' HTTP API that:
#   - the exporter is scraped and dbss_instance_upgrade_status has series;
#   - Prometheus loaded every rule of alerts.yml and none of them errors;
#   - every rule expression and every query of the Grafana dashboard
#     (variables replaced by match-all regexes, intervals by 5m) evaluates;
#   - DbssUpgradeStepFailed reaches "firing" for the demo's failed step.
#
# It installs nothing: prometheus, promtool, curl and python3 must be on PATH
# (Debian: apt-get install prometheus curl python3). Each wait is bounded by
# E2E_TIMEOUT seconds (default 120). Both processes are stopped on exit, and
# their logs are printed when a check fails. The last line reads
# "e2e: N passed, M failed"; the exit status is non-zero if M is not 0.

set -euo pipefail

usage() {
    echo "usage: $0 PATH_TO_DBSS_EXPORTER_BINARY" >&2
    exit 2
}

[[ $# -eq 1 ]] || usage
binary=$1
timeout_s=${E2E_TIMEOUT:-120}
deploy_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
rules_file=$deploy_dir/prometheus/alerts.yml
dashboard=$deploy_dir/grafana/dbss-exporter.json
prometheus_rule=$deploy_dir/kubernetes/prometheusrule.yaml

if [[ ! -x $binary ]]; then
    echo "e2e: $binary is not an executable file" >&2
    exit 2
fi
missing=()
for tool in prometheus promtool curl python3; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    echo "e2e: missing on PATH: ${missing[*]}" >&2
    echo "e2e: install them first, for example: apt-get install -y prometheus curl python3" >&2
    exit 2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/dbss-e2e.XXXXXX")
exporter_pid=""
prometheus_pid=""
show_logs=0

# Stops one process we started, politely first. This and cleanup run from
# the EXIT trap, which shellcheck does not follow.
# shellcheck disable=SC2317
stop() {
    local pid=$1
    [[ -n $pid ]] || return 0
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
}

# shellcheck disable=SC2317
cleanup() {
    stop "$prometheus_pid"
    stop "$exporter_pid"
    if [[ $show_logs -eq 1 ]]; then
        echo "---- last lines of the exporter's log" >&2
        tail -n 40 "$work/exporter.log" >&2 2>/dev/null || true
        echo "---- last lines of Prometheus' log" >&2
        tail -n 40 "$work/prometheus.log" >&2 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until URL answers 200, or gives up after the timeout.
wait_http_ok() {
    local url=$1 what=$2 pid=$3
    local deadline=$((SECONDS + timeout_s))
    while ((SECONDS < deadline)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "e2e: $what exited early" >&2
            return 1
        fi
        if curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; then
            return 0
        fi
        sleep 0.5
    done
    echo "e2e: $what did not answer $url within ${timeout_s}s" >&2
    return 1
}

exporter_port=$(free_port)
prometheus_port=$(free_port)
while [[ $prometheus_port == "$exporter_port" ]]; do
    prometheus_port=$(free_port)
done
exporter_addr=127.0.0.1:$exporter_port
prometheus_url=http://127.0.0.1:$prometheus_port

# --- the exporter
"$binary" demo --web.listen-address="$exporter_addr" >"$work/exporter.log" 2>&1 &
exporter_pid=$!
if ! wait_http_ok "http://$exporter_addr/-/healthy" "dbss-exporter demo" "$exporter_pid"; then
    show_logs=1
    exit 1
fi
echo "e2e: exporter demo serving on $exporter_addr"

# --- Prometheus
cat >"$work/prometheus.yml" <<EOF
global:
  scrape_interval: 5s
  scrape_timeout: 4s
  evaluation_interval: 5s
rule_files:
  - $rules_file
scrape_configs:
  - job_name: dbss-exporter
    static_configs:
      - targets: ["$exporter_addr"]
EOF
if ! promtool check config "$work/prometheus.yml" >"$work/promtool.log" 2>&1; then
    cat "$work/promtool.log" >&2
    echo "e2e: promtool rejected the generated configuration" >&2
    exit 1
fi
prometheus \
    --config.file="$work/prometheus.yml" \
    --storage.tsdb.path="$work/data" \
    --web.listen-address="127.0.0.1:$prometheus_port" \
    >"$work/prometheus.log" 2>&1 &
prometheus_pid=$!
if ! wait_http_ok "$prometheus_url/-/ready" "prometheus" "$prometheus_pid"; then
    show_logs=1
    exit 1
fi
echo "e2e: prometheus serving on 127.0.0.1:$prometheus_port"

# --- the checks, through the HTTP API
set +e
python3 - "$prometheus_url" "$rules_file" "$dashboard" "$prometheus_rule" "$timeout_s" <<'PYTHON'
import json
import re
import sys
import time
import urllib.parse
import urllib.request

base, rules_file, dashboard_file, prometheus_rule_file = sys.argv[1:5]
timeout_s = int(sys.argv[5])
passed = 0
failed = 0


def api(path, **params):
    url = base + path
    data = urllib.parse.urlencode(params).encode() if params else None
    try:
        with urllib.request.urlopen(url, data=data, timeout=10) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as err:
        # Prometheus answers 400/422 with a JSON body for a bad query.
        try:
            return json.load(err)
        except ValueError:
            return {"status": "error", "error": f"HTTP {err.code}"}
    except (urllib.error.URLError, OSError, ValueError) as err:
        return {"status": "error", "error": str(err)}


def query(expr):
    return api("/api/v1/query", query=expr)


def check(ok, what, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok    {what}")
    else:
        failed += 1
        print(f"FAIL  {what}")
        if detail:
            print(f"      {detail}")


def wait_for(what, probe):
    """Calls probe() until it returns a true value or the time is up."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(2)


def series_count(expr):
    answer = query(expr)
    if answer.get("status") != "success":
        return 0
    return len(answer["data"]["result"])


# (a) data arrives.
start = time.monotonic()
count = wait_for("data", lambda: series_count("dbss_instance_upgrade_status"))
check(count > 0, f"dbss_instance_upgrade_status has series ({count} after "
      f"{time.monotonic() - start:.0f}s)", f"none within {timeout_s}s")
check(series_count('up{job="dbss-exporter"} == 1') == 1, 'up{job="dbss-exporter"} is 1')

# Rules: all loaded, none erroring, and every expression evaluates.
expected = 0
with open(rules_file, encoding="utf-8") as f:
    for line in f:
        if re.match(r"^\s*-\s*(alert|record):", line):
            expected += 1


def loaded_rules():
    answer = api("/api/v1/rules")
    if answer.get("status") != "success":
        return []
    rules = [r for g in answer["data"]["groups"] for r in g["rules"]]
    # Wait until every rule has been evaluated at least once.
    if any(r.get("health") == "unknown" for r in rules):
        return []
    return rules


rules = wait_for("rules", loaded_rules)
check(len(rules) == expected, f"Prometheus loaded {len(rules)} of the {expected} rules in alerts.yml")
for rule in rules:
    name = rule["name"]
    check(rule.get("health") == "ok", f"rule {name} evaluates without error",
          rule.get("lastError", ""))
    answer = query(rule["query"])
    check(answer.get("status") == "success", f"rule {name}: expression evaluates",
          f"{answer.get('error')}\n      query: {rule['query']}")

# The PrometheusRule must carry alerts.yml unchanged: its spec is the file
# from "groups:" on, indented by two spaces.
with open(rules_file, encoding="utf-8") as f:
    text = f.read()
want = text[text.find("groups:"):]
with open(prometheus_rule_file, encoding="utf-8") as f:
    text = f.read()
spec = text[text.find("\nspec:\n") + len("\nspec:\n"):]
got = "".join(line[2:] if line.startswith("  ") else line for line in spec.splitlines(True))
check(want == got, "kubernetes/prometheusrule.yaml holds the same rules as alerts.yml",
      "regenerate its spec from alerts.yml")

# (b) every dashboard query evaluates once its variables are replaced.
def substitute(expr):
    expr = re.sub(r"\$\{?__(rate_interval|interval|range)\}?(?!\w)", "5m", expr)
    expr = re.sub(r"\$\{\w+(:\w+)?\}", ".*", expr)
    return re.sub(r"\$\w+", ".*", expr)


def dashboard_queries(node, title=""):
    if isinstance(node, dict):
        title = node.get("title", title)
        if isinstance(node.get("expr"), str):
            yield title, node["expr"]
        for value in node.values():
            yield from dashboard_queries(value, title)
    elif isinstance(node, list):
        for value in node:
            yield from dashboard_queries(value, title)


with open(dashboard_file, encoding="utf-8") as f:
    dashboard = json.load(f)
panel_queries = list(dashboard_queries(dashboard.get("panels", [])))
check(len(panel_queries) > 0, f"the dashboard has queries ({len(panel_queries)})")
with_data = 0
for title, expr in panel_queries:
    answer = query(substitute(expr))
    ok = answer.get("status") == "success"
    if ok and answer["data"]["result"]:
        with_data += 1
    check(ok, f"panel {title!r}: query evaluates",
          f"{answer.get('error')}\n      query: {substitute(expr)}")
print(f"      ({with_data} of {len(panel_queries)} dashboard queries returned data)")

# Template variables: label_values(SELECTOR, LABEL) must select something valid.
for var in dashboard.get("templating", {}).get("list", []):
    if var.get("type") != "query":
        continue
    q = var.get("query")
    q = q.get("query", "") if isinstance(q, dict) else q or ""
    m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\)\s*", q)
    if not m:
        check(False, f"variable {var.get('name')}: unexpected query form", q)
        continue
    expr = f"count by ({m.group(2)}) ({substitute(m.group(1))})"
    answer = query(expr)
    check(answer.get("status") == "success", f"variable {var.get('name')}: selector evaluates",
          f"{answer.get('error')}\n      query: {expr}")


# (c) the demo's failed upgrade step fires its alert.
def step_failed_firing():
    answer = api("/api/v1/alerts")
    if answer.get("status") != "success":
        return None
    for alert in answer["data"]["alerts"]:
        if alert["labels"].get("alertname") == "DbssUpgradeStepFailed" and alert["state"] == "firing":
            return alert
    return None


start = time.monotonic()
alert = wait_for("alert", step_failed_firing)
if alert:
    labels = alert["labels"]
    check(True, f"DbssUpgradeStepFailed is firing after {time.monotonic() - start:.0f}s "
          f"(instance_id={labels.get('instance_id')}, step={labels.get('step')}, "
          f"result_code={labels.get('result_code')})")
else:
    check(False, f"DbssUpgradeStepFailed is firing within {timeout_s}s",
          f"alerts: {json.dumps(api('/api/v1/alerts').get('data'))[:600]}")

# The exporter itself must look healthy to its own alerts. DbssExporterDown
# may be pending from an evaluation before the first scrape; it must clear.
def alerts_about_exporter():
    answer = api("/api/v1/alerts")
    return sorted({a["labels"]["alertname"] for a in answer.get("data", {}).get("alerts", [])
                   if a["labels"]["alertname"] in ("DbssExporterDown", "DbssExporterConfigReloadFailed")})


start = time.monotonic()
cleared = wait_for("exporter alerts", lambda: not alerts_about_exporter())
check(cleared, "no alert about the exporter itself is pending or firing",
      f"still active after {time.monotonic() - start:.0f}s: {alerts_about_exporter()}")

print(f"e2e: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PYTHON
status=$?
set -e
if [[ $status -ne 0 ]]; then
    show_logs=1
fi
exit "$status"
