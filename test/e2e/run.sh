#!/usr/bin/env bash
# Runs the browser end-to-end tests against bin/parley (PARLEY_BIN). Every test is bounded; the
# whole run stops by itself.
set -euo pipefail
cd "$(dirname "$0")"
./setup.sh
export PARLEY_BIN="${PARLEY_BIN:-$(cd ../.. && pwd)/bin/parley}"
status=0
mkdir -p output
# The three-minute COMPOSED recording (recording.test.mjs) is mostly waiting: it runs in a
# process of its own beside the suites of this folder (about 2.5 minutes) and is awaited after
# them, so that its stop, and its mix's last minute, come with the machine quieter.
LONG_COMPOSED=1 timeout 600 node --test --test-timeout=480000 --test-name-pattern=three-minute recording.test.mjs \
  >output/composed-long.tap 2>&1 &
long=$!
timeout 900 node --test --test-concurrency=1 --test-timeout=180000 core.test.mjs events.test.mjs recording.test.mjs simulcast.test.mjs firefox.test.mjs ipcam.test.mjs cluster.test.mjs || status=$?
wait "$long" || status=$?
cat output/composed-long.tap
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
