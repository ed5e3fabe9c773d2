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
if [ "$#" -gt 0 ]; then
  exec python -m pytest -q -p no:cacheprovider "$@"
fi
# The fault tests spend their time waiting out leases, stalls and partitions, not
# computing: they run in a second pytest beside the rest, which halves the wall time on
# two cores (they are written to pass on a busy machine; this keeps them honest about it).
# Each lane has its own temporary directory.
fault_lane=(tests/chaos tests/e2e/test_server_stall.py tests/e2e/test_self_fencing.py)
fault_log="$(mktemp -t whirr-fault-lane.XXXXXX)"
python -m pytest -q -p no:cacheprovider --basetemp="$(mktemp -d -t whirr-fault-lane-tmp.XXXXXX)" \
  "${fault_lane[@]}" >"$fault_log" 2>&1 &
fault_pid=$!
trap 'kill "$fault_pid" 2>/dev/null || true' EXIT
rest_rc=0
python -m pytest -q -p no:cacheprovider "${fault_lane[@]/#/--ignore=}" || rest_rc=$?
fault_rc=0
wait "$fault_pid" || fault_rc=$?
section "Python tests: the fault lane (${fault_lane[*]})"
cat "$fault_log"
echo "main lane exit $rest_rc, fault lane exit $fault_rc"
[ "$rest_rc" -eq 0 ] && [ "$fault_rc" -eq 0 ]
