#!/usr/bin/env bash
# Print the Python the Makefile builds .venv from: $PYTHON when set, else the first of
# the candidates below that is 3.11+ and can create a virtual environment with pip.
#
# The distribution's /usr/bin/python3 comes first on purpose: Debian, Ubuntu and Fedora
# build it with profile-guided and link-time optimisation, while a pyenv or source build
# without --enable-optimizations runs the same code 15-25% slower (measured here:
# `whirr submit` executes 276M instructions on this machine's pyenv 3.11.7 against 225M
# on Debian's 3.11.2). Every whirr command starts an interpreter, so this is felt.
set -euo pipefail

usable() {
    "$1" - <<'PY' >/dev/null 2>&1
import sys, ensurepip, venv  # noqa: F401  (Debian ships venv/ensurepip separately)
sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY
}

if [ -n "${PYTHON:-}" ]; then
    echo "$PYTHON"
    exit 0
fi
for candidate in /usr/bin/python3 /usr/local/bin/python3 python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && usable "$candidate"; then
        command -v "$candidate"
        exit 0
    fi
done
echo "whirr needs Python 3.11+ with the venv module (e.g. apt-get install python3-venv)" >&2
exit 1
