#!/usr/bin/env bash
# Cascading between two nodes (issue 16): two Parley nodes in one process on a real redis-server,
# pion peers. Prints the median (min–max) of RUNS runs of the time from receiveVideoFrom to the
# first video packet for a subscriber on the publisher's node, the first one on the other node and
# a second one there, and the bytes crossing between the nodes ÷ what the publisher sends, with
# three subscribers on the other node. Usage: bench/cascade.sh [RUNS] (default 9).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v redis-server >/dev/null || { echo "redis-server is not installed (scripts/install-test-deps.sh)" >&2; exit 1; }
PARLEY_CASCADE_RUNS="${1:-9}" go test -count=1 -run '^TestCascadeNumbers$' -v ./internal/server/ 2>&1 |
  grep -E 'cascade_numbers_test|^(--- |ok|FAIL)'
