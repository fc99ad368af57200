#!/usr/bin/env bash
# Installs what tests/launchdarkly_spec.rs checks killswitch's LaunchDarkly requests against:
# LaunchDarkly's generated Python API client (PyPI `launchdarkly-api`), in a venv at
# .test-servers/launchdarkly-api/venv. The client is generated from LaunchDarkly's published
# OpenAPI document: every operation's method, path template and query parameters (names and
# types) and every request body schema (pydantic models) are in it. Nothing of it is committed.
# Idempotent: returns at once when the pinned version is already there.
set -euo pipefail
cd "$(dirname "$0")/../.."

VERSION=25.0.1
DIR=.test-servers/launchdarkly-api
VENV=$DIR/venv

if [ -x "$VENV/bin/python" ] && [ "$(cat "$DIR/version" 2>/dev/null)" = "$VERSION" ]; then
  echo "launchdarkly-api $VERSION already installed at $VENV"
  exit 0
fi

mkdir -p "$DIR"
rm -rf "$VENV"
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "launchdarkly-api==$VERSION"
"$VENV/bin/python" -c "import launchdarkly_api; print('launchdarkly_api', launchdarkly_api.__version__)"
echo "$VERSION" > "$DIR/version"
echo "launchdarkly-api $VERSION installed at $VENV"
