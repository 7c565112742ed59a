#!/usr/bin/env bash
# The firewall bed (see README.md): builds the network namespaces, runs the cells (a-e, e-tls) with one and
# with both participants restricted, then Firefox in cells b, c, c-tls, e and e-tls, writes
# output/results.{json,md} and output/firefox-results.md, and always tears everything down. Needs
# root; without root or network namespaces it prints SKIP and exits 0. Bounded: the runner has a
# 300 s budget and is killed at 400 s, the Firefox runner at 180 s; the whole bed ends within 10 minutes.
#
#   PARLEY_BIN     the server binary (default: bin/parley of this checkout)
#   PFW_NET        the bed's /24 as three octets (default: the first of 203.0.113, 198.51.100, 192.0.2
#                  holding no registry, DNS, gateway or own address; netns.sh says why not 10.x)
#   PFW_BUDGET_MS  the runner's time budget, at most (and by default) 300000
set -uo pipefail
cd "$(dirname "$0")"
here=$(pwd)

skip() { echo "SKIP firewall bed: $*"; exit 0; }
fail() { echo "FAIL firewall bed: $*" >&2; exit 1; }
# shellcheck source=../netbed/lib.sh
source ../netbed/lib.sh
nb_preflight pfw
export PARLEY_BIN="${PARLEY_BIN:-$(cd ../../.. && pwd)/bin/parley}"
[ -x "$PARLEY_BIN" ] || fail "no server binary at $PARLEY_BIN (cd $(cd ../../.. && pwd) && go build -o bin/parley ./cmd/parley)"
nb_lock 9 pfw-firewall-bed

cleanup() {
  trap - EXIT INT TERM
  nb_stop_runner
  "$here/netns.sh" down  # also ends whatever still runs inside the namespaces (parley, chromium)
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Never a /24 holding an address this machine needs (netbed/lib.sh nb_pick_net says why).
nb_pick_net PFW_NET 203.0.113 198.51.100 192.0.2

echo "firewall bed: server $PARLEY_BIN, network $PFW_NET.0/24"
"$here/netns.sh" up || fail "could not build the namespaces"
mkdir -p output
rm -f output/results.json output/results.md

# The runner (node, playwright, page server, proxies) lives in the root namespace, on the bridge.
budget=${PFW_BUDGET_MS:-300000}
[[ $budget =~ ^[0-9]+$ ]] && [ "$budget" -le 300000 ] || budget=300000
status=0
NODE_TLS_REJECT_UNAUTHORIZED=0 PFW_BUDGET_MS=$budget \
  nb_run 400 node --test --test-concurrency=1 --test-reporter=spec firewall.test.mjs || status=$?
[ "$status" = 124 ] && echo "FAIL firewall bed: the runner overran its 400 s limit and was killed" >&2

# Firefox restricted in pfw-a against Chromium in pfw-b (cells b, c, c-tls, e, e-tls; about 45 s).
rm -f output/firefox-results.md
fstatus=0
NODE_TLS_REJECT_UNAUTHORIZED=0 nb_run 180 node --test --test-concurrency=1 --test-reporter=spec firefox.test.mjs || fstatus=$?
[ "$fstatus" = 124 ] && echo "FAIL firewall bed: the Firefox runner overran its 180 s limit and was killed" >&2
[ "$status" = 0 ] && status=$fstatus

for f in output/results.md output/firefox-results.md; do
  if [ -f "$f" ]; then
    echo
    cat "$f"
  fi
done
exit "$status"
