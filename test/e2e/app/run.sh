#!/usr/bin/env bash
# Browser tests of Parley's built-in app, device test and network test (test/e2e/app/app.test.mjs).
# Needs a binary built with the web app embedded (make build) and Debian's Chromium.
set -euo pipefail
cd "$(dirname "$0")"
repo=$(cd ../../.. && pwd)
export PARLEY_BIN=${PARLEY_BIN:-$repo/bin/parley}
if [ ! -x "$PARLEY_BIN" ]; then
  echo "run.sh: $PARLEY_BIN is missing: run make build" >&2
  exit 1
fi
# playwright-core: test/e2e's node_modules when the shared suite installed it (Node looks in parent
# folders), else this folder's own pinned copy.
if ! node -e "require.resolve('playwright-core')" >/dev/null 2>&1; then
  npm ci --no-audit --no-fund
fi
mkdir -p "$repo/test-output"
# Every test has its own timeout too; this bounds the whole run whatever happens.
exec timeout --kill-after=10 900 node --test --test-concurrency=1 --test-reporter=spec app.test.mjs
