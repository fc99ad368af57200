#!/usr/bin/env bash
# The whole test suite: installs the real servers the tests need (OpenBao, PostgreSQL +
# Unleash) under .test-servers/, then runs every test. The tests start and stop the servers
# themselves, on 127.0.0.1 only. Run from anywhere: `bash tests/run.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."

for installer in tests/servers/install-*.sh; do
  [ -e "$installer" ] || continue
  echo "== $installer"
  bash "$installer"
done

echo "== cargo test"
cargo test --all-targets --no-fail-fast
