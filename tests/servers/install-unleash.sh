#!/usr/bin/env bash
# Installs what tests/unleash.rs needs: PostgreSQL 15 server binaries (Debian package) and
# unleash-server 8.2.0 (npm) under .test-servers/unleash/. Idempotent: a second run only checks.
# Nothing is started here; the tests start and stop their own throwaway servers on 127.0.0.1.
# unleash-server 8.2.0 declares Node >= 22 but runs on Debian 12's Node 20 (npm only warns).
set -euo pipefail
cd "$(dirname "$0")/../.."

UNLEASH_VERSION=8.2.0
DEST=.test-servers/unleash

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "install-unleash: node and npm are needed (Debian: apt-get install -y nodejs npm)" >&2
  exit 1
fi

pg_ok() { ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }
if ! pg_ok; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-unleash: PostgreSQL server binaries missing; run as root or: sudo apt-get install -y postgresql" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends postgresql >/dev/null 2>&1 \
    || { apt-get update >/dev/null && apt-get install -y --no-install-recommends postgresql >/dev/null; }
  # The package starts a system cluster; the tests use their own throwaway cluster.
  (command -v pg_ctlcluster >/dev/null && pg_lsclusters -h 2>/dev/null | while read -r ver name _; do
     pg_ctlcluster "$ver" "$name" stop || true; done) || true
fi

installed_version() {
  node -e "process.stdout.write(require('./$DEST/node_modules/unleash-server/package.json').version)" 2>/dev/null || true
}
if [ "$(installed_version)" != "$UNLEASH_VERSION" ]; then
  mkdir -p "$DEST"
  [ -f "$DEST/package.json" ] || echo '{"name":"killswitch-test-unleash","private":true}' > "$DEST/package.json"
  npm install --prefix "$DEST" --no-audit --no-fund --loglevel=error "unleash-server@$UNLEASH_VERSION"
fi
[ "$(installed_version)" = "$UNLEASH_VERSION" ] || { echo "install-unleash: unleash-server $UNLEASH_VERSION not installed" >&2; exit 1; }
echo "install-unleash: PostgreSQL $(ls /usr/lib/postgresql | sort -V | tail -1) and unleash-server $UNLEASH_VERSION ready in $DEST"
