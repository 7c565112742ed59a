#!/usr/bin/env bash
# The cluster bed (issue 16): three Parley nodes in network namespaces on one redis-server, Debian's
# HAProxy in front as the TCP load balancer (deploy/proxy/haproxy-cluster.cfg as shipped), the
# stock openvidu-browser in three Chromiums: one joined through HAProxy, two directly to the other
# nodes; REST through every node. Mid-call, Redis restarts empty (calls go on, the nodes write their
# state back) and the node under the HAProxy participant is killed with SIGKILL (it reconnects
# through HAProxy to another node and everyone decodes it again; the others' streams never stop;
# REST on the survivors shows no ghost). Needs root; without root or namespaces it prints SKIP.
# Bounded: the runner is killed at 600 s (2-3 minutes on a quiet machine).
#
#   PARLEY_BIN     the server binary (default: bin/parley of this checkout)
#   PCL_NET        the bed's /24 as three octets (default: the first of 192.0.2, 198.51.100,
#                  203.0.113 holding no address this machine needs)
#   CLUSTERBED_OUT a file to which the test appends one JSON line of measurements (bench/cluster-kill.sh)
#   CLUSTERBED_QUICK=1  two participants instead of three (make test runs it so: test/e2e/run.sh);
#                  every check but the one of a pair of participants that never touched the dead node
#   CLUSTERBED_FORCE_MEDIA_RECONNECTION=1  the pages set openvidu-browser's
#                  forceMediaReconnectionAfterNetworkDrop (an application's choice)
set -uo pipefail
cd "$(dirname "$0")"
here=$(pwd)

skip() { echo "SKIP cluster bed: $*"; exit 0; }
fail() { echo "FAIL cluster bed: $*" >&2; exit 1; }
# shellcheck source=../netbed/lib.sh
source ../netbed/lib.sh
nb_preflight pcl
command -v redis-server >/dev/null 2>&1 || fail "redis-server is not installed (scripts/install-test-deps.sh)"
if ! command -v haproxy >/dev/null 2>&1; then
  echo "cluster bed: installing Debian's haproxy"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy >/dev/null; } ||
    fail "haproxy is not installed and could not be (apt-get install haproxy; scripts/install-test-deps.sh)"
fi
export PARLEY_BIN="${PARLEY_BIN:-$(cd ../../.. && pwd)/bin/parley}"
[ -x "$PARLEY_BIN" ] || fail "no server binary at $PARLEY_BIN (cd $(cd ../../.. && pwd) && make build)"
nb_lock 9 pcl-cluster-bed

cleanup() {
  trap - EXIT INT TERM
  nb_stop_runner
  "$here/netns.sh" down  # also ends whatever still runs inside the namespaces (parley, haproxy, redis, chromium)
}
trap cleanup EXIT
trap 'exit 130' INT TERM

nb_pick_net PCL_NET 192.0.2 198.51.100 203.0.113

echo "cluster bed: server $PARLEY_BIN, $(haproxy -v | head -1), $(redis-server --version | cut -d' ' -f1-3), network $PCL_NET.0/24"
"$here/netns.sh" up || fail "could not build the namespaces"
mkdir -p output

status=0
NODE_TLS_REJECT_UNAUTHORIZED=0 nb_run 600 node --test --test-concurrency=1 --test-reporter=spec clusterbed.test.mjs || status=$?
[ "$status" = 124 ] && echo "FAIL cluster bed: the runner overran its 600 s limit and was killed" >&2
[ "$status" != 0 ] && echo "cluster bed: logs in $here/output (node-*.log, haproxy.log, redis.log)" >&2
exit "$status"
