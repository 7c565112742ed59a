#!/usr/bin/env bash
# Runs the browser end-to-end tests against bin/parley (PARLEY_BIN). Every test is bounded; the
# whole run stops by itself.
set -euo pipefail
cd "$(dirname "$0")"
./setup.sh
export PARLEY_BIN="${PARLEY_BIN:-$(cd ../.. && pwd)/bin/parley}"
status=0
timeout 900 node --test --test-concurrency=1 --test-timeout=180000 core.test.mjs events.test.mjs recording.test.mjs simulcast.test.mjs ipcam.test.mjs cluster.test.mjs || status=$?
for suite in app firewall weaknet proxied; do
  if [ -x "$suite/run.sh" ]; then
    timeout 900 "$suite/run.sh" || status=$?
  fi
done
# The cluster bed with two participants (about a minute); bench/cluster-kill.sh runs it whole.
CLUSTERBED_QUICK=1 timeout 900 clusterbed/run.sh || status=$?
if [ "$status" != 0 ]; then
  echo "e2e failed; parley logs are in $(pwd)/output/*.parley.log" >&2
fi
exit "$status"
