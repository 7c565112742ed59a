#!/usr/bin/env bash
# The firewall bed's network: three namespaces on one bridge, and the per-cell firewalls.
#
#   pfw-srv  $NET.1    parley in production mode (TCP 443, UDP 443, TCP 80)
#   pfw-a    $NET.11   participant A's Chromium
#   pfw-b    $NET.12   participant B's Chromium
#   root     $NET.254  on the bridge pfw-br: the test runner (node, playwright, page server, proxy)
#
# NET is PFW_NET (run.sh picks a TEST-NET /24 this machine does not need; alone, 203.0.113). Not a private range on purpose: Chromium's
# WebRTC (libwebrtc VerifyCandidate) drops every remote candidate on port 80 or 443 whose address is
# private (10/8, 172.16/12, 192.168/16, 100.64/10), so a server on 10.x announcing media on 443 is
# unreachable except by peer-reflexive luck. PFW_NET=10.77.0 reproduces that.
#
# usage: netns.sh up              build it (tears down any earlier copy first; idempotent)
#        netns.sh down            kill what runs in the namespaces, delete them and the bridge (idempotent)
#        netns.sh cell NS CELL    install the firewall of CELL (a|b|c|d|e|e-tls, or open) in client namespace NS
#        netns.sh show            print the namespaces, addresses and firewalls
#
# Everything this script touches carries the pfw prefix; nothing else on the host is changed. `up`
# tears down what it built if any step fails.
set -euo pipefail

PREFIX=pfw
BR=$PREFIX-br
SRV_NS=$PREFIX-srv
NS=("$SRV_NS" "$PREFIX-a" "$PREFIX-b")
NET=${PFW_NET:-203.0.113}
[[ $NET =~ ^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || { echo "netns.sh: PFW_NET must be the first three octets of a /24, e.g. 203.0.113" >&2; exit 2; }
IPS=("$NET.1" "$NET.11" "$NET.12")
RUNNER=$NET.254
SRV=$NET.1

have_ns() { ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$1"; }

# kill_ns ends every process still running inside one of our namespaces (parley, chromium):
# `ip netns pids` names exactly those, so nothing outside the bed is touched.
kill_ns() {
  local ns=$1 pids
  have_ns "$ns" || return 0
  pids=$(ip netns pids "$ns" 2>/dev/null || true)
  [ -n "$pids" ] || return 0
  # shellcheck disable=SC2086
  kill -TERM $pids 2>/dev/null || true
  for _ in $(seq 1 30); do  # up to 3 s for a clean exit, then SIGKILL
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [ -n "$pids" ] || return 0
    sleep 0.1
  done
  # shellcheck disable=SC2086
  kill -KILL $pids 2>/dev/null || true
}

down() {
  for ns in "${NS[@]}"; do
    kill_ns "$ns"
    ip netns del "$ns" 2>/dev/null || true
    ip link del "$ns-h" 2>/dev/null || true
  done
  ip link del "$BR" 2>/dev/null || true
  # The forwarding exception `up` may have added (only when the host filters bridged traffic).
  while iptables -w -D FORWARD -i "$BR" -o "$BR" -m comment --comment "$PREFIX bed" -j ACCEPT 2>/dev/null; do :; done
}

up() {
  down
  if [ -n "$(ip -o addr show to "$NET.0/24")" ]; then
    echo "netns.sh: $NET.0/24 is already in use on this host; choose another PFW_NET" >&2
    return 1
  fi
  trap 'echo "netns.sh: setup failed, tearing down" >&2; down' ERR
  ip link add "$BR" type bridge
  ip addr add "$RUNNER/24" dev "$BR"
  ip link set "$BR" up
  for i in "${!NS[@]}"; do
    local ns=${NS[$i]}
    ip netns add "$ns"
    ip link add "$ns-h" type veth peer name eth0 netns "$ns"
    ip link set "$ns-h" master "$BR" up
    ip -n "$ns" addr add "${IPS[$i]}/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
  done
  # Where the host passes bridged frames through iptables (br_netfilter), let the bed's own frames by.
  if [ "$(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null || echo 0)" = 1 ]; then
    iptables -w -I FORWARD -i "$BR" -o "$BR" -m comment --comment "$PREFIX bed" -j ACCEPT
  fi
  for ns in "${NS[@]}"; do cell_rules "$ns" open; done
  trap - ERR
}

# cell_rules installs a client's firewall. Stateful, like a real one: what may leave is the cell;
# replies (conntrack ESTABLISHED,RELATED), loopback and the runner (page server and proxy) are
# always allowed.
cell_rules() {
  local ns=$1 cell=$2
  local ipt=(ip netns exec "$ns" iptables -w)
  "${ipt[@]}" -P INPUT ACCEPT
  "${ipt[@]}" -P OUTPUT ACCEPT
  "${ipt[@]}" -P FORWARD DROP
  "${ipt[@]}" -F
  case $cell in
    open|a) return 0 ;;  # no restriction at all
    b|c|d|e|e-tls) ;;
    *) echo "netns.sh: unknown cell '$cell' (a|b|c|d|e|e-tls|open)" >&2; return 2 ;;
  esac
  "${ipt[@]}" -A OUTPUT -o lo -j ACCEPT
  "${ipt[@]}" -A INPUT -i lo -j ACCEPT
  "${ipt[@]}" -A OUTPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
  "${ipt[@]}" -A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
  "${ipt[@]}" -A OUTPUT -d "$RUNNER" -j ACCEPT
  "${ipt[@]}" -A INPUT -s "$RUNNER" -j ACCEPT
  case $cell in
    b) "${ipt[@]}" -A OUTPUT -p tcp -j ACCEPT ;;                                  # every UDP datagram dropped
    c) "${ipt[@]}" -A OUTPUT -p tcp -d "$SRV" --dport 443 -j ACCEPT ;;            # only TCP 443 to the server
    d) "${ipt[@]}" -A OUTPUT -p tcp -d "$SRV" --dport 443 -j ACCEPT
       "${ipt[@]}" -A OUTPUT -p udp -d "$SRV" --dport 443 -j ACCEPT ;;            # TCP 443 and UDP 443
    e|e-tls) ;;                                                                   # only the runner's proxies
  esac
  "${ipt[@]}" -P OUTPUT DROP
  "${ipt[@]}" -P INPUT DROP
}

show() {
  for ns in "${NS[@]}"; do
    have_ns "$ns" || { echo "$ns: absent"; continue; }
    echo "== $ns: $(ip -n "$ns" -4 -o addr show dev eth0 | awk '{print $4}')"
    ip netns exec "$ns" iptables -w -S
  done
}

case ${1:-} in
  up) up ;;
  down) down ;;
  cell) [ $# = 3 ] || { echo "usage: $0 cell NS CELL" >&2; exit 2; }; cell_rules "$2" "$3" ;;
  show) show ;;
  *) echo "usage: $0 up | down | cell NS a|b|c|d|e|e-tls|open | show" >&2; exit 2 ;;
esac
