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
fail() { echo "FAIL proxied bed: $*" >&2; exit 1; }
# shellcheck source=../netbed/lib.sh
source ../netbed/lib.sh
nb_preflight ppx
command -v openssl >/dev/null 2>&1 || fail "openssl is not installed (apt-get install openssl)"
if ! command -v haproxy >/dev/null 2>&1; then
  echo "proxied bed: installing Debian's haproxy"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy >/dev/null; } ||
    fail "haproxy is not installed and could not be (apt-get install haproxy; scripts/install-test-deps.sh)"
fi
export PARLEY_BIN="${PARLEY_BIN:-$(cd ../../.. && pwd)/bin/parley}"
[ -x "$PARLEY_BIN" ] || fail "no server binary at $PARLEY_BIN (cd $(cd ../../.. && pwd) && go build -o bin/parley ./cmd/parley)"
nb_lock 9 ppx-proxied-bed

cleanup() {
  trap - EXIT INT TERM
  nb_stop_runner
  "$here/netns.sh" down  # also ends whatever still runs inside the namespaces (parley, haproxy, chromium)
}
trap cleanup EXIT
trap 'exit 130' INT TERM

nb_pick_net PPX_NET 198.51.100 192.0.2 203.0.113

echo "proxied bed: server $PARLEY_BIN, $(haproxy -v | head -1), network $PPX_NET.0/24"
"$here/netns.sh" up || fail "could not build the namespaces"
mkdir -p output

status=0
NODE_TLS_REJECT_UNAUTHORIZED=0 nb_run 420 node --test --test-concurrency=1 --test-reporter=spec proxied.test.mjs || status=$?
[ "$status" = 124 ] && echo "FAIL proxied bed: the runner overran its 420 s limit and was killed" >&2
[ "$status" != 0 ] && echo "proxied bed: logs in $here/output (parley.log, haproxy.log, nginx-*.log)" >&2
exit "$status"
