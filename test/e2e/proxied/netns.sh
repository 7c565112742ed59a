#!/usr/bin/env bash
# The proxied-mode bed's network: three namespaces on one bridge.
#
#   ppx-srv  $NET.1    HAProxy on TCP 443/80 (deploy/proxy/haproxy.cfg) and parley behind it
#                      (plain HTTP on 127.0.0.1:5443, TURN/ICE-TCP on TCP 5349, media on UDP 443)
#   ppx-a    $NET.11   participant A's Chromium (open network)
#   ppx-b    $NET.12   participant B's Chromium (cell tcp443: only TCP 443 to the server)
#   root     $NET.254  on the bridge ppx-br: the runner (node, playwright, the page server)
#
# NET is PPX_NET (run.sh picks a TEST-NET /24 this machine does not use; firewall/netns.sh says
# why not a private range). Everything carries the ppx prefix; nothing else on the host changes.
#
# usage: netns.sh up | down | cell NS open|tcp443|noudp
set -euo pipefail

PREFIX=ppx
BR=$PREFIX-br
NS=("$PREFIX-srv" "$PREFIX-a" "$PREFIX-b")
NET=${PPX_NET:-198.51.100}
[[ $NET =~ ^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || { echo "netns.sh: PPX_NET must be three octets, e.g. 198.51.100" >&2; exit 2; }
IPS=("$NET.1" "$NET.11" "$NET.12")
RUNNER=$NET.254
SRV=$NET.1

have_ns() { ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$1"; }

# kill_ns ends what still runs inside one of our namespaces (parley, haproxy, chromium): `ip
# netns pids` names exactly those.
kill_ns() {
  local ns=$1 pids
  have_ns "$ns" || return 0
  pids=$(ip netns pids "$ns" 2>/dev/null || true)
  [ -n "$pids" ] || return 0
  # shellcheck disable=SC2086
  kill -TERM $pids 2>/dev/null || true
  for _ in $(seq 1 30); do
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
  while iptables -w -D FORWARD -i "$BR" -o "$BR" -m comment --comment "$PREFIX bed" -j ACCEPT 2>/dev/null; do :; done
}

up() {
  down
  if [ -n "$(ip -o addr show to "$NET.0/24")" ]; then
    echo "netns.sh: $NET.0/24 is already in use on this host; choose another PPX_NET" >&2
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
  if [ "$(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null || echo 0)" = 1 ]; then
    iptables -w -I FORWARD -i "$BR" -o "$BR" -m comment --comment "$PREFIX bed" -j ACCEPT
  fi
  trap - ERR
}

# cell installs a client's firewall, stateful: replies, loopback and the runner (the page server)
# always pass; tcp443 lets out nothing else but TCP to the server's port 443, noudp every TCP
# connection and no UDP.
cell() {
  local ns=$1 c=$2
  local ipt=(ip netns exec "$ns" iptables -w)
  "${ipt[@]}" -P INPUT ACCEPT
  "${ipt[@]}" -P OUTPUT ACCEPT
  "${ipt[@]}" -F
  case $c in
    open) return 0 ;;
    tcp443|noudp) ;;
    *) echo "netns.sh: unknown cell '$c' (open|tcp443|noudp)" >&2; return 2 ;;
  esac
  "${ipt[@]}" -A OUTPUT -o lo -j ACCEPT
  "${ipt[@]}" -A INPUT -i lo -j ACCEPT
  "${ipt[@]}" -A OUTPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
  "${ipt[@]}" -A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
  "${ipt[@]}" -A OUTPUT -d "$RUNNER" -j ACCEPT
  "${ipt[@]}" -A INPUT -s "$RUNNER" -j ACCEPT
  case $c in
    tcp443) "${ipt[@]}" -A OUTPUT -p tcp -d "$SRV" --dport 443 -j ACCEPT ;;
    noudp) "${ipt[@]}" -A OUTPUT -p tcp -j ACCEPT ;;                 # every UDP datagram dropped
  esac
  "${ipt[@]}" -P OUTPUT DROP
  "${ipt[@]}" -P INPUT DROP
}

case ${1:-} in
  up) up ;;
  down) down ;;
  cell) [ $# = 3 ] || { echo "usage: $0 cell NS open|tcp443|noudp" >&2; exit 2; }; cell "$2" "$3" ;;
  *) echo "usage: $0 up | down | cell NS open|tcp443|noudp" >&2; exit 2 ;;
esac
