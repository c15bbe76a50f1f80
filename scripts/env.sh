# Shared settings for the scripts: a persistent target dir and venv outside the clone, so CI
# and later runs reuse compiled dependencies.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/promlake/target}"
export PROMLAKE_VENV="${PROMLAKE_VENV:-$HOME/.cache/promlake/venv}"
export PROMLAKE_PYTHON="$PROMLAKE_VENV/bin/python"
export PROMLAKE_MOTO_SERVER="$PROMLAKE_VENV/bin/moto_server"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
