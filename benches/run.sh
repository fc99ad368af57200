#!/usr/bin/env bash
# Runs every benchmark and prints the numbers BENCHMARKS.md is written from:
#   criterion (benches/dashboard.rs): render, filter keystroke, reload at 5,000 flags x 6 envs;
#   benches/e2e.rs: time to kill, cold start, peak memory, non-interactive kill (the real binary);
#   benches/floor.sh: the curl floor the end-to-end numbers are compared with;
#   benches/robust.rs: status table vs JSON at 5,000 flags x 6 envs, a 1 MB paste (issue 14).
# Needs the servers tests/run.sh installs (OpenBao, PostgreSQL + Unleash) for the vendor rows.
set -euo pipefail
cd "$(dirname "$0")/.."
for installer in tests/servers/install-*.sh; do
  [ -e "$installer" ] && bash "$installer"
done
echo "== machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr), $(date -u +%F)"
cargo bench --bench dashboard -- --noplot 2>&1 | grep -E "^[a-z].*|time:" | grep -v "^Benchmarking\|^Gnuplot\|^Found\|^  [0-9]"
cargo bench --bench e2e
cargo bench --bench robust
