#!/usr/bin/env bash
# Issue 14's numbers for BENCHMARKS.md: `status` table vs JSON at 5,000 flags x 6 environments
# (and one ~50 MB flag file), and a 1 MB paste into the note field. Uses the release build of
# the binary and generated local flagd workspaces; needs no servers.
#   ROBUST_RUNS=5 bash benches/robust.sh
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr), $(date -u +%F)"
cargo bench --bench robust
