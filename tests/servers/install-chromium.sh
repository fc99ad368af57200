#!/usr/bin/env bash
# Installs Debian's `chromium` (the headless browser tests/serve.rs renders the status page in)
# when it is missing. Idempotent: returns at once when `chromium` is on PATH.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
  echo "chromium already installed: $(chromium --version 2>/dev/null || echo unknown version)"
  exit 0
fi

SUDO=""
if [ "$(id -u)" != "0" ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
echo "chromium installed: $(chromium --version 2>/dev/null || echo unknown version)"
