#!/usr/bin/env bash
# How much of Dapr's Grafana dashboards a Tandem sidecar fills: for each dashboard JSON in the
# folder given (Dapr's `grafana/`, e.g. from a clone of github.com/dapr/dapr), the number of panels
# whose PromQL returns data from a real Prometheus scraping a real sidecar that hosts actors, after
# HTTP, gRPC, actor, timer and reminder traffic (sidecar/tests/metrics/dashboards.rs).
#
#   scripts/dashboards-check.sh ~/src/dapr/grafana
#
# Prints one line per dashboard ("N/M panels with data") and each panel without data with its
# first query. Grafana variables are filled in as a user who picked the sidecar would
# ($dapr_app_id=dash, $namespace=default, $dapr_actor_type=Counter).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/lib/deps.sh

dir="${1:?usage: scripts/dashboards-check.sh <folder of Grafana dashboard JSON files>}"
dir="$(cd "$dir" && pwd)"
ls "$dir"/*.json >/dev/null 2>&1 || { echo "dashboards-check.sh: no *.json in $dir" >&2; exit 64; }
ensure_promtool
out="$(mktemp "${TMPDIR:-/tmp}/tandem-dashboards.XXXXXX")"
trap 'rm -f "$out"' EXIT
TANDEM_DASHBOARDS_DIR="$dir" cargo test -p tandem-sidecar --test metrics --locked \
  dashboards::dapr_dashboard_queries_answer_from_a_real_prometheus -- --exact --nocapture >"$out" 2>&1 ||
  { cat "$out" >&2; exit 1; }
grep '^dashboard ' "$out" | sed 's/^dashboard //'
