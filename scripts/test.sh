#!/usr/bin/env bash
# Runs every test of promlake, installing what the tests need first (idempotent):
#   Debian: prometheus (promtool + the reference server), prometheus-node-exporter, curl,
#           chromium + chromium-driver (the web UI tests drive headless Chromium over WebDriver)
#   Python venv (PyPI): pyarrow, duckdb, moto[server], grpcio, ADBC Flight SQL
# Usage: scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

need=()
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v prometheus-node-exporter >/dev/null 2>&1 || need+=(prometheus-node-exporter)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing Debian packages: ${need[*]}"
  sudo_=""; [ "$(id -u)" -ne 0 ] && sudo_="sudo"
  $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

if ! "$PROMLAKE_VENV/bin/python" -c 'import pyarrow, duckdb, moto, grpc, grpc_tools, adbc_driver_flightsql' >/dev/null 2>&1 \
   || ! cmp -s scripts/requirements-test.txt "$PROMLAKE_VENV/.requirements"; then
  echo "== creating Python venv $PROMLAKE_VENV"
  python3 -m venv "$PROMLAKE_VENV"
  "$PROMLAKE_VENV/bin/pip" install -q --disable-pip-version-check -r scripts/requirements-test.txt
  cp scripts/requirements-test.txt "$PROMLAKE_VENV/.requirements"
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked "$@"
