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
NS=("$PREFIX-srv" "$PREFIX-a" "$PREFIX-b")
NET=${PPX_NET:-198.51.100} NET_VAR=PPX_NET
IPS=("$NET.1" "$NET.11" "$NET.12")
# shellcheck source=../netbed/lib.sh
source "$(dirname "$0")/../netbed/lib.sh"
nb_check_net

# cell installs a client's firewall, stateful: replies, loopback and the runner (the page server)
# always pass; tcp443 lets out nothing else but TCP to the server's port 443, noudp every TCP
# connection and no UDP.
cell() {
  local ns=$1 c=$2
  local ipt=(ip netns exec "$ns" iptables -w)
  case $c in
    open) nb_fw_open "$ns"; return 0 ;;
    tcp443|noudp) ;;
    *) echo "netns.sh: unknown cell '$c' (open|tcp443|noudp)" >&2; return 2 ;;
  esac
  nb_fw_stateful "$ns"
  case $c in
    tcp443) "${ipt[@]}" -A OUTPUT -p tcp -d "$SRV" --dport 443 -j ACCEPT ;;
    noudp) "${ipt[@]}" -A OUTPUT -p tcp -j ACCEPT ;;                 # every UDP datagram dropped
  esac
  nb_fw_close "$ns"
}

case ${1:-} in
  up) nb_up; trap - ERR ;;
  down) nb_down ;;
  cell) [ $# = 3 ] || { echo "usage: $0 cell NS open|tcp443|noudp" >&2; exit 2; }; cell "$2" "$3" ;;
  *) echo "usage: $0 up | down | cell NS open|tcp443|noudp" >&2; exit 2 ;;
esac
