#!/usr/bin/env bash
# Builds and tears down the firewall test bed: three network namespaces on one bridge.
#
#   pnb-srv 198.51.100.1   parley (production mode, TCP 443 + UDP 443 + TCP 80)
#   pnb-a   198.51.100.11  participant A's Chromium
#   pnb-b   198.51.100.12  participant B's Chromium
#   root    198.51.100.254 the test runner: node, the page server, the HTTP CONNECT proxy
#
# usage: netns.sh up | down | cell <ns> <a|b|c|d|e|open>
set -euo pipefail
NS=(pnb-srv pnb-a pnb-b)
IP=(198.51.100.1 198.51.100.11 198.51.100.12)
BR=pnb-br
RUNNER=198.51.100.254
SRV=198.51.100.1

down() {
  for ns in "${NS[@]}"; do ip netns del "$ns" 2>/dev/null || true; ip link del "v-$ns" 2>/dev/null || true; done
  ip link del "$BR" 2>/dev/null || true
}

up() {
  down
  ip link add "$BR" type bridge
  ip addr add "$RUNNER/24" dev "$BR"
  ip link set "$BR" up
  for i in "${!NS[@]}"; do
    ns=${NS[$i]}
    ip netns add "$ns"
    ip link add "v-$ns" type veth peer name eth0 netns "$ns"
    ip link set "v-$ns" master "$BR" up
    ip -n "$ns" addr add "${IP[$i]}/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
  done
  # The bridge must forward between namespaces even where the host filters bridged traffic.
  sysctl -qw net.bridge.bridge-nf-call-iptables=0 2>/dev/null || true
}

# cell installs a client namespace's firewall. Loopback, the runner (page, proxy) and replies are
# always allowed; what else may leave is the cell.
cell() {
  local ns=$1 which=$2
  local ipt=(ip netns exec "$ns" iptables -w)
  "${ipt[@]}" -P OUTPUT ACCEPT; "${ipt[@]}" -P INPUT ACCEPT; "${ipt[@]}" -F
  [ "$which" = open ] || [ "$which" = a ] && return 0
  "${ipt[@]}" -A OUTPUT -o lo -j ACCEPT
  "${ipt[@]}" -A OUTPUT -d "$RUNNER" -j ACCEPT
  "${ipt[@]}" -A OUTPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
  "${ipt[@]}" -A INPUT -i lo -j ACCEPT
  "${ipt[@]}" -A INPUT -s "$RUNNER" -j ACCEPT
  "${ipt[@]}" -A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
  case $which in
    b) "${ipt[@]}" -A OUTPUT -p tcp -j ACCEPT; "${ipt[@]}" -A INPUT -p tcp -j ACCEPT ;;  # all UDP dropped
    c) "${ipt[@]}" -A OUTPUT -p tcp -d "$SRV" --dport 443 -j ACCEPT ;;                    # only TCP 443
    d) "${ipt[@]}" -A OUTPUT -p tcp -d "$SRV" --dport 443 -j ACCEPT
       "${ipt[@]}" -A OUTPUT -p udp -d "$SRV" --dport 443 -j ACCEPT ;;                    # TCP and UDP 443
    e) ;;                                                                                 # only the proxy
    *) echo "unknown cell $which" >&2; exit 2 ;;
  esac
  "${ipt[@]}" -P OUTPUT DROP
  "${ipt[@]}" -P INPUT DROP
}

case ${1:-} in
  up) up ;;
  down) down ;;
  cell) cell "$2" "$3" ;;
  *) echo "usage: $0 up|down|cell <ns> <open|a|b|c|d|e>" >&2; exit 2 ;;
esac
