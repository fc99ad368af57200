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
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
cargo test --all-targets --no-fail-fast 2>&1 | tee "$log" || status=$?
# One closing line for the whole suite, summed over every test binary (`suite: N passed, N failed`).
passed=$(grep -aE '^test result: ' "$log" | sed -E 's/.* ([0-9]+) passed.*/\1/' | awk '{s+=$1} END {print s+0}')
failed=$(grep -aE '^test result: ' "$log" | sed -E 's/.* ([0-9]+) failed.*/\1/' | awk '{s+=$1} END {print s+0}')
echo
echo "suite: ${passed} passed, ${failed} failed"
exit "$status"
