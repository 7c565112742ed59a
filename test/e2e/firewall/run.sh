#!/usr/bin/env bash
# The firewall bed (see README.md): builds the network namespaces, runs the cells (a-e, e-tls) with one and
# with both participants restricted, writes output/results.{json,md}, and always tears everything
# down. Needs root; without root or network namespaces it prints SKIP and exits 0. Bounded: the
# runner has a 240 s budget and is killed at 330 s; the whole bed ends within 6 minutes.
#
#   PARLEY_BIN     the server binary (default: bin/parley of this checkout)
#   PFW_NET        the bed's /24 as three octets (default: the first of 203.0.113, 198.51.100, 192.0.2
#                  holding no registry, DNS, gateway or own address; netns.sh says why not 10.x)
#   PFW_BUDGET_MS  the runner's time budget, at most (and by default) 240000
set -uo pipefail
cd "$(dirname "$0")"
here=$(pwd)

skip() { echo "SKIP firewall bed: $*"; exit 0; }
[ "$(id -u)" = 0 ] || skip "needs root (network namespaces and iptables)"
command -v ip >/dev/null 2>&1 || skip "ip (iproute2) is not installed, so no network namespaces"
if ! ip netns add pfw-probe 2>/dev/null; then skip "ip netns is unavailable here (cannot create a namespace)"; fi
ip netns del pfw-probe

fail() { echo "FAIL firewall bed: $*" >&2; exit 1; }
command -v iptables >/dev/null 2>&1 || fail "iptables is not installed (apt-get install iptables)"
export PARLEY_BIN="${PARLEY_BIN:-$(cd ../../.. && pwd)/bin/parley}"
[ -x "$PARLEY_BIN" ] || fail "no server binary at $PARLEY_BIN (cd $(cd ../../.. && pwd) && go build -o bin/parley ./cmd/parley)"
if [ ! -d ../node_modules/playwright-core ] || [ ! -d ../node_modules/openvidu-browser ] || [ ! -x /usr/bin/chromium ]; then
  ../setup.sh || fail "could not install Chromium and the npm packages (test/e2e/setup.sh)"
fi

# One bed at a time on a machine: the namespaces and addresses are fixed.
# (The braces keep 2>/dev/null to this line: on exec itself it would silence the script's stderr,
# its FAIL messages included, for good.)
{ exec 9>/run/lock/pfw-firewall-bed.lock; } 2>/dev/null || exec 9>/tmp/pfw-firewall-bed.lock
flock -w 10 9 || fail "another firewall bed is running on this machine (lock /run/lock/pfw-firewall-bed.lock)"

runner=
cleanup() {
  trap - EXIT INT TERM
  if [ -n "$runner" ] && kill -0 "$runner" 2>/dev/null; then
    kill -TERM "$runner" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$runner" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$runner" 2>/dev/null
  fi
  "$here/netns.sh" down  # also ends whatever still runs inside the namespaces (parley, chromium)
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The bed's /24 sits on a bridge in the root namespace, so it shadows any real host in it. Sandboxes
# and CI machines may reach their package registries through TEST-NET addresses (203.0.113.x was seen
# here): taking that /24 would cut go, npm and apt off for as long as the bed runs. So, unless
# PFW_NET is given, take the first public-looking candidate that holds no address this machine needs.
needed_addrs() {
  local h
  for h in proxy.golang.org sum.golang.org registry.npmjs.org deb.debian.org; do
    getent ahostsv4 "$h" 2>/dev/null | awk '{print $1}'
  done
  awk '$1 == "nameserver" {print $2}' /etc/resolv.conf 2>/dev/null
  ip -4 route show default 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "via") print $(i+1)}'
  ip -4 -o addr show 2>/dev/null | awk '{sub(/\/.*/, "", $4); print $4}'
}
if [ -z "${PFW_NET:-}" ]; then
  taken=$(needed_addrs | awk -F. 'NF == 4 {print $1"."$2"."$3}' | sort -u)
  for cand in 203.0.113 198.51.100 192.0.2; do
    if ! grep -qx "$cand" <<<"$taken"; then PFW_NET=$cand; break; fi
  done
  [ -n "${PFW_NET:-}" ] || fail "every candidate /24 for the bed holds an address this machine needs; set PFW_NET"
fi
export PFW_NET

echo "firewall bed: server $PARLEY_BIN, network $PFW_NET.0/24"
"$here/netns.sh" up || fail "could not build the namespaces"
mkdir -p output
rm -f output/results.json output/results.md

# The runner (node, playwright, page server, proxies) lives in the root namespace, on the bridge.
budget=${PFW_BUDGET_MS:-240000}
[[ $budget =~ ^[0-9]+$ ]] && [ "$budget" -le 240000 ] || budget=240000
NODE_TLS_REJECT_UNAUTHORIZED=0 PFW_BUDGET_MS=$budget \
  timeout -k 10 330 node --test --test-concurrency=1 --test-reporter=spec firewall.test.mjs &
runner=$!
wait "$runner"
status=$?
runner=

if [ -f output/results.md ]; then
  echo
  cat output/results.md
fi
[ "$status" = 124 ] && echo "FAIL firewall bed: the runner overran its 330 s limit and was killed" >&2
exit "$status"
