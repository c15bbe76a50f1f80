#!/usr/bin/env bash
# PromQL range-query benchmark: serves the same node-exporter-shaped blocks with Prometheus 2.42
# and with `promlake query`, runs a fixed list of range queries (1h, 6h and 24h ranges) against
# both and prints median latencies, their ratios, the geometric mean and the worst ratio.
#
#   scripts/bench-query.sh                       # 5 hosts x 24h
#   BENCH_HOSTS=20 BENCH_HOURS=48 scripts/bench-query.sh
#   BENCH_RUNS=5 BENCH_JSON=1 scripts/bench-query.sh
#
# Needs promtool and prometheus (Debian/Ubuntu: apt-get install prometheus). The data lives under
# $BENCH_WORK_DIR (default $CARGO_TARGET_DIR/promlake-bench/HOSTSxHOURSh) and is reused while the
# data flags stay the same.
set -euo pipefail

cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/root/.cache/promlake/target}"
hosts="${BENCH_HOSTS:-5}"
hours="${BENCH_HOURS:-24}"
work_dir="${BENCH_WORK_DIR:-$CARGO_TARGET_DIR/promlake-bench}/${hosts}x${hours}h"
extra=(--runs "${BENCH_RUNS:-3}")
[[ "${BENCH_JSON:-0}" == 1 ]] && extra+=(--json)

for tool in promtool prometheus; do
  command -v "$tool" >/dev/null || { echo "bench-query.sh: $tool not found (apt-get install prometheus)" >&2; exit 1; }
done

cargo build --release -p promlake -p promlake-benches
"$CARGO_TARGET_DIR/release/promlake-bench" query --hosts "$hosts" --hours "$hours" \
  --work-dir "$work_dir" --promlake "$CARGO_TARGET_DIR/release/promlake" \
  --prometheus "$(command -v prometheus)" "${extra[@]}"
