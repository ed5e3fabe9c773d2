#!/usr/bin/env bash
# Make sure Debian's Chromium and ChromeDriver are installed for the dashboard's browser
# tests (they fail, not skip, without them). Idempotent; needs root to install.
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  echo "browser: $(chromium --version 2>/dev/null | head -n 1)"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "browser: chromium/chromedriver missing; install them (apt-get install chromium chromium-driver) as root" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium chromium-driver >/dev/null
echo "browser: installed $(chromium --version 2>/dev/null | head -n 1)"
