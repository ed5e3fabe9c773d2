#!/usr/bin/env bash
# The whole test suite: lint and types, PostgreSQL started for the store and server tests,
# the Python tests, and the Rust worker's build, tests, clippy and fmt.
# Called by `make test` (which sets up .venv first) and so by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

section() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

section "lint and types"
ruff check whirr tests tools
ruff format --check whirr tests tools
mypy

section "PostgreSQL"
if [ -z "${WHIRR_TEST_POSTGRES_URL:-}" ]; then
  if [ "$(id -u)" -eq 0 ]; then
    eval "$(bash tools/ci/postgres.sh)"
  elif [ -n "${CI:-}" ]; then
    echo "CI needs PostgreSQL: run as root or set WHIRR_TEST_POSTGRES_URL" >&2
    exit 1
  else
    echo "WHIRR_TEST_POSTGRES_URL not set and not root: PostgreSQL tests will be skipped" >&2
  fi
fi
echo "PostgreSQL: ${WHIRR_TEST_POSTGRES_URL:-none}"

if [ -f tools/ci/browser.sh ]; then
  section "browser for the dashboard tests"
  bash tools/ci/browser.sh
fi

if [ -d worker-rust ]; then
  section "Rust worker"
  (
    cd worker-rust
    cargo build --release --locked
    cargo test --locked
    cargo clippy --locked --all-targets -- -D warnings
    cargo fmt --check
  )
fi

section "Python tests"
python -m pytest -q -p no:cacheprovider "$@"
