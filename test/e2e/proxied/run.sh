#!/usr/bin/env bash
# The proxied-mode bed (issue 17): Debian's HAProxy, then Debian's nginx (when installed: nginx and
# libnginx-mod-stream), holds TCP 443 and terminates TLS in front of parley
# (PARLEY_BEHIND_PROXY=true), with deploy/proxy/haproxy.cfg and nginx.conf as shipped. Two stock
# openvidu-browser participants join through https://parley.test/ and must decode each other's
# video; one of them may reach only TCP 443, so its media must come through TURN/TLS that HAProxy
# passes through by server name (turn.parley.test). REST through the proxy must show each
# participant's own address. Needs root; without root or network namespaces it prints SKIP.
# Bounded: the runner is killed at 420 s (about 2 minutes on a quiet machine); the whole bed ends within 8 minutes.
#
#   PARLEY_BIN  the server binary (default: bin/parley of this checkout)
#   PPX_NET     the bed's /24 as three octets (default: the first of 198.51.100, 192.0.2,
#               203.0.113 holding no address this machine needs)
set -uo pipefail
cd "$(dirname "$0")"
here=$(pwd)

skip() { echo "SKIP proxied bed: $*"; exit 0; }
[ "$(id -u)" = 0 ] || skip "needs root (network namespaces and iptables)"
command -v ip >/dev/null 2>&1 || skip "ip (iproute2) is not installed, so no network namespaces"
if ! ip netns add ppx-probe 2>/dev/null; then skip "ip netns is unavailable here (cannot create a namespace)"; fi
ip netns del ppx-probe

fail() { echo "FAIL proxied bed: $*" >&2; exit 1; }
command -v iptables >/dev/null 2>&1 || fail "iptables is not installed (apt-get install iptables)"
command -v openssl >/dev/null 2>&1 || fail "openssl is not installed (apt-get install openssl)"
if ! command -v haproxy >/dev/null 2>&1; then
  echo "proxied bed: installing Debian's haproxy"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy >/dev/null; } ||
    fail "haproxy is not installed and could not be (apt-get install haproxy; scripts/install-test-deps.sh)"
fi
export PARLEY_BIN="${PARLEY_BIN:-$(cd ../../.. && pwd)/bin/parley}"
[ -x "$PARLEY_BIN" ] || fail "no server binary at $PARLEY_BIN (cd $(cd ../../.. && pwd) && go build -o bin/parley ./cmd/parley)"
if [ ! -d ../node_modules/playwright-core ] || [ ! -d ../node_modules/openvidu-browser ] || [ ! -x /usr/bin/chromium ]; then
  ../setup.sh || fail "could not install Chromium and the npm packages (test/e2e/setup.sh)"
fi

{ exec 9>/run/lock/ppx-proxied-bed.lock; } 2>/dev/null || exec 9>/tmp/ppx-proxied-bed.lock
flock -w 10 9 || fail "another proxied bed is running on this machine"

runner=
cleanup() {
  trap - EXIT INT TERM
  if [ -n "$runner" ] && kill -0 "$runner" 2>/dev/null; then
    kill -TERM "$runner" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$runner" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$runner" 2>/dev/null
  fi
  "$here/netns.sh" down  # also ends whatever still runs inside the namespaces (parley, haproxy, chromium)
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# As in the firewall bed: never take a /24 that holds an address this machine needs (registries,
# DNS, gateway, its own, another bed's bridge).
needed_addrs() {
  local h
  for h in proxy.golang.org sum.golang.org registry.npmjs.org deb.debian.org; do
    getent ahostsv4 "$h" 2>/dev/null | awk '{print $1}'
  done
  awk '$1 == "nameserver" {print $2}' /etc/resolv.conf 2>/dev/null
  ip -4 route show default 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "via") print $(i+1)}'
  ip -4 -o addr show 2>/dev/null | awk '{sub(/\/.*/, "", $4); print $4}'
}
if [ -z "${PPX_NET:-}" ]; then
  taken=$(needed_addrs | awk -F. 'NF == 4 {print $1"."$2"."$3}' | sort -u)
  for cand in 198.51.100 192.0.2 203.0.113; do
    if ! grep -qx "$cand" <<<"$taken"; then PPX_NET=$cand; break; fi
  done
  [ -n "${PPX_NET:-}" ] || fail "every candidate /24 holds an address this machine needs; set PPX_NET"
fi
export PPX_NET

echo "proxied bed: server $PARLEY_BIN, $(haproxy -v | head -1), network $PPX_NET.0/24"
"$here/netns.sh" up || fail "could not build the namespaces"
mkdir -p output

NODE_TLS_REJECT_UNAUTHORIZED=0 timeout -k 10 420 node --test --test-concurrency=1 --test-reporter=spec proxied.test.mjs &
runner=$!
wait "$runner"
status=$?
runner=
[ "$status" = 124 ] && echo "FAIL proxied bed: the runner overran its 420 s limit and was killed" >&2
[ "$status" != 0 ] && echo "proxied bed: logs in $here/output (parley.log, haproxy.log, nginx-*.log)" >&2
exit "$status"
