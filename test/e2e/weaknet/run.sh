#!/usr/bin/env bash
# The weak-network bed in make test (see README.md): builds the namespaces, runs weaknet.test.mjs
# (a weak subscriber at 150 kbit/s over UDP, ICE-TCP and TURN/TCP next to two unshaped ones),
# writes output/results.{json,md}, and always tears everything down. Needs root; without root or
# network namespaces it prints SKIP and exits 0. Bounded: the runner is killed after 600 s.
#
#   PARLEY_BIN  the server binary (default: bin/parley of this checkout)
#   PWN_NET     the bed's /24 as three octets (default: the first of 198.18.99, 198.19.99,
#               198.18.199 holding no registry, DNS, gateway or own address)
set -uo pipefail
cd "$(dirname "$0")"
skip() { echo "SKIP weak-network bed: $*"; exit 0; }
fail() { echo "FAIL weak-network bed: $*" >&2; exit 1; }
export PARLEY_BIN="${PARLEY_BIN:-$(cd ../../.. && pwd)/bin/parley}"
[ -x "$PARLEY_BIN" ] || fail "no server binary at $PARLEY_BIN (make build)"
mkdir -p output
rm -f output/results.json output/results.md
source ./common.sh
echo "weak-network bed: server $PARLEY_BIN, network $PWN_NET.0/24"

status=0
NODE_TLS_REJECT_UNAUTHORIZED=0 nb_run 600 node --test --test-concurrency=1 --test-reporter=spec weaknet.test.mjs || status=$?
if [ -f output/results.md ]; then
  echo
  cat output/results.md
fi
[ "$status" = 124 ] && echo "FAIL weak-network bed: the runner overran its 600 s limit and was killed" >&2
exit "$status"
