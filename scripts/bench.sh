#!/usr/bin/env bash
# End-to-end TSDB -> Parquet conversion benchmark (DESIGN.md §6): generates node-exporter-shaped
# data, builds Prometheus 2.42 blocks with promtool, converts them with `promlake tools import`
# and prints bytes per sample and samples per CPU-second for each size.
#
#   scripts/bench.sh                 # small (20 hosts x 6h, 11M samples) and medium (50 hosts x 12h, 54M)
#   BENCH_SIZES="50x24" scripts/bench.sh
#   BENCH_JSON=1 scripts/bench.sh    # JSON reports
#
# Needs promtool (Debian/Ubuntu: apt-get install prometheus). Work dirs live under
# $BENCH_WORK_DIR (default $CARGO_TARGET_DIR/promlake-bench) and are replaced on every run;
# set BENCH_REUSE=1 to keep the promtool blocks of a previous run with the same sizes.
set -euo pipefail

cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/root/.cache/promlake/target}"
sizes="${BENCH_SIZES:-20x6 50x12}"   # HOSTSxHOURS, space-separated
work_root="${BENCH_WORK_DIR:-$CARGO_TARGET_DIR/promlake-bench}"
extra=()
[[ "${BENCH_JSON:-0}" == 1 ]] && extra+=(--json)
[[ "${BENCH_REUSE:-0}" == 1 ]] && extra+=(--reuse)

command -v promtool >/dev/null || { echo "bench.sh: promtool not found (apt-get install prometheus)" >&2; exit 1; }

cargo build --release -p promlake -p promlake-benches
bench="$CARGO_TARGET_DIR/release/promlake-bench"
promlake="$CARGO_TARGET_DIR/release/promlake"

for size in $sizes; do
  hosts="${size%x*}"
  hours="${size#*x}"
  echo "== convert: $hosts hosts x ${hours}h =="
  "$bench" convert --hosts "$hosts" --hours "$hours" --promlake "$promlake" \
    --work-dir "$work_root/${hosts}x${hours}h" ${extra[@]+"${extra[@]}"}
  echo
done
