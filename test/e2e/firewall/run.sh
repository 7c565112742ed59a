#!/usr/bin/env bash
# The firewall test bed: needs root and network namespaces; builds them, runs the cells, always
# tears everything down. Bounded: the whole run is limited to 8 minutes.
set -euo pipefail
cd "$(dirname "$0")"
if [ "$(id -u)" != 0 ] || ! ip netns list >/dev/null 2>&1 || ! command -v iptables >/dev/null; then
  echo "SKIP firewall test bed: needs root, ip netns and iptables"
  exit 0
fi
export PARLEY_BIN="${PARLEY_BIN:-$(cd ../../.. && pwd)/bin/parley}"
trap './netns.sh down' EXIT
./netns.sh up
timeout 480 node --test --test-concurrency=1 --test-timeout=120000 firewall.test.mjs
