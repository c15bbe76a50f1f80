#!/usr/bin/env bash
# The main job, end to end on a fresh Debian machine with the Rust toolchain:
# build promlake, generate a node-exporter-like dataset, write it as real Prometheus blocks
# with promtool, import the blocks into a Parquet lake, list the lake and query it with DuckDB.
# Usage: scripts/demo.sh [LAKE_DIR]   (default: ./demo-lake; the blocks go to ./demo-native)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
lake="$(realpath -m "${1:-demo-lake}")"
native="$(realpath -m demo-native)"

if ! command -v promtool >/dev/null 2>&1; then
  echo "== installing Debian's prometheus package (promtool)"
  sudo_=""; [ "$(id -u)" -ne 0 ] && sudo_="sudo"
  $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq --no-install-recommends prometheus
fi

echo "== building (release)"
cargo build --release --locked -p promlake -p promlake-benches
bin="$CARGO_TARGET_DIR/release"

if [ ! -d "$native" ]; then
  echo "== generating 20 hosts x 6h of node-exporter-like data and writing Prometheus blocks"
  tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
  "$bin/promlake-bench" gen --hosts 20 --hours 6 --out "$tmp/data.om"
  promtool tsdb create-blocks-from openmetrics "$tmp/data.om" "$native" >/dev/null
fi

echo "== importing $native into file://$lake"
"$bin/promlake" tools import --bucket "file://$lake" --label cluster=demo "$native"
echo "== the lake"
"$bin/promlake" tools bucket ls --bucket "file://$lake"

if "$PROMLAKE_PYTHON" -c 'import duckdb' >/dev/null 2>&1; then
  echo "== DuckDB reads the Parquet files as plain tables"
  "$PROMLAKE_PYTHON" - "$lake" <<'PY'
import sys, duckdb
lake = sys.argv[1]
print(duckdb.sql(f"SELECT count(*) AS samples, min(timestamp) AS first, max(timestamp) AS last FROM '{lake}/*/samples*.parquet'"))
PY
else
  echo "(run scripts/test.sh once to get the Python venv with DuckDB, then: duckdb -c \"SELECT count(*) FROM '$lake/*/samples*.parquet'\")"
fi
