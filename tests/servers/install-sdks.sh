#!/usr/bin/env bash
# Installs the real evaluators and SDKs the tests check "what services see" with, in one venv
# at .test-servers/sdks/venv (driven by the scripts under tests/sdk/):
# - openfeature-sdk + openfeature-provider-flagd (the flagd evaluator, FILE mode),
# - UnleashClient (the Unleash Python SDK),
# - flagsmith (flagsmith-python, remote and local evaluation),
# - launchdarkly-server-sdk (the LaunchDarkly Python server SDK, polling mode).
# Idempotent: returns at once when the pinned set is already there.
set -euo pipefail
cd "$(dirname "$0")/../.."

PACKAGES=(
  "openfeature-sdk==0.10.0"
  "openfeature-provider-flagd==0.6.1"
  "UnleashClient==6.9.1"
  "flagsmith==6.3.0"
  "launchdarkly-server-sdk==9.18.4"
)
PINNED="${PACKAGES[*]}"
DIR=.test-servers/sdks
VENV=$DIR/venv
PY=$VENV/bin/python

if [ -x "$PY" ] && [ "$(cat "$DIR/version" 2>/dev/null)" = "$PINNED" ]; then
  echo "sdks already installed at $VENV ($PINNED)"
  exit 0
fi

mkdir -p "$DIR"
rm -rf "$VENV"
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "${PACKAGES[@]}"
# Fail here, not in a test, when an import is broken.
"$PY" -c 'import openfeature, openfeature.contrib.provider.flagd, UnleashClient, flagsmith, ldclient'
echo "$PINNED" > "$DIR/version"
echo "sdks installed at $VENV ($PINNED)"
