#!/usr/bin/env bash
# The weak-network bed's network: four namespaces on one bridge, the weak subscriber's shaping and
# transport firewall, and the byte counter of what the server sends it.
#
#   pwn-srv   $NET.1    parley in production mode (TCP 443: HTTPS, WSS, TURN/TCP, ICE-TCP; UDP 443 media)
#   pwn-pub   $NET.11   the publisher's Chromium; its uplink is shaped on pwn-srv-h (shape-pub)
#   pwn-ok    $NET.12   the unshaped subscribers' Chromium (two pages)
#   pwn-weak  $NET.13   the weak subscriber's Chromium; its downlink (veth pwn-weak-h) is shaped
#   root      $NET.254  on the bridge pwn-br: the runner (node, playwright, page server)
#
# NET is PWN_NET (run.sh picks a /24 this machine does not need, by default in 198.18.0.0/15, the
# benchmarking range: not private to Chromium, and not one of the firewall bed's TEST-NETs).
#
# usage: netns.sh up                 build it (tears down any earlier copy first)
#        netns.sh down               kill what runs in the namespaces, delete them and the bridge
#        netns.sh shape KBIT         tc tbf on the weak subscriber's downlink at KBIT kbit/s
#        netns.sh unshape            remove the shaping (the link is freed)
#        netns.sh loss PERCENT       drop PERCENT % of the weak subscriber's incoming packets at random (0: none)
#        netns.sh transport T        what the weak subscriber may use: udp (everything), tcp (no UDP to the server)
#        netns.sh bytes              bytes the server has sent the weak subscriber (iptables counter in pwn-srv)
#        netns.sh shape-pub KBIT     shape the publisher's uplink (what it sends the server) at KBIT kbit/s
#        netns.sh unshape-pub        remove that shaping
#        netns.sh pub-bytes          bytes the server has received from the publisher (after its shaped uplink)
#        netns.sh show               print addresses, qdiscs and rules
#
# Everything this script touches carries the pwn prefix; nothing else on the host changes.
set -euo pipefail

PREFIX=pwn
SRV_NS=$PREFIX-srv
WEAK_NS=$PREFIX-weak
NS=("$SRV_NS" "$PREFIX-pub" "$PREFIX-ok" "$WEAK_NS")
NET=${PWN_NET:-198.18.99} NET_VAR=PWN_NET
IPS=("$NET.1" "$NET.11" "$NET.12" "$NET.13")
WEAK=$NET.13
WEAK_VETH=$WEAK_NS-h
PUB=$NET.11
SRV_VETH=$SRV_NS-h
# shellcheck source=../netbed/lib.sh
source "$(dirname "$0")/../netbed/lib.sh"
nb_check_net

up() {
  nb_up
  # Count what the server sends the weak subscriber (media, TURN, ICE-TCP and signalling alike).
  ip netns exec "$SRV_NS" iptables -w -A OUTPUT -d "$WEAK" -m comment --comment "$PREFIX to weak" -j ACCEPT
  # And what reaches the server from the publisher (after its shaped uplink).
  ip netns exec "$SRV_NS" iptables -w -A INPUT -s "$PUB" -m comment --comment "$PREFIX from pub" -j ACCEPT
  transport udp
  trap - ERR
}

# shape puts a token bucket on the bridge side of the weak subscriber's veth: everything toward it
# (the server's media and signalling) leaves at most KBIT kbit/s. burst 4 KiB (a few packets) and a
# queue of 200 ms, like a slow access link with a modest buffer.
shape() {
  local kbit=$1
  [[ $kbit =~ ^[0-9]+$ ]] && [ "$kbit" -gt 0 ] || { echo "netns.sh: shape needs a rate in kbit/s" >&2; return 2; }
  tc qdisc replace dev "$WEAK_VETH" root tbf rate "${kbit}kbit" burst 4kb latency 200ms
}

unshape() { tc qdisc del dev "$WEAK_VETH" root 2>/dev/null || true; }

# shape_pub shapes the publisher's uplink: what it sends the server leaves the bridge toward pwn-srv
# through a token bucket of KBIT kbit/s (burst 4 KiB, 200 ms of queue, as shape). The bucket sits
# on the server's veth, not in the publisher's namespace, so the publisher's sockets never see the
# queue (a real modem's buffer is not in the sender's kernel either): an HTB root sends only the
# publisher's packets (u32 on its source address) to a class whose leaf is the tbf; everything
# else is unclassified and passes unshaped.
shape_pub() {
  local kbit=$1
  [[ $kbit =~ ^[0-9]+$ ]] && [ "$kbit" -gt 0 ] || { echo "netns.sh: shape-pub needs a rate in kbit/s" >&2; return 2; }
  unshape_pub
  tc qdisc add dev "$SRV_VETH" root handle 1: htb
  tc class add dev "$SRV_VETH" parent 1: classid 1:10 htb rate 1gbit quantum 1514
  tc qdisc add dev "$SRV_VETH" parent 1:10 handle 10: tbf rate "${kbit}kbit" burst 4kb latency 200ms
  tc filter add dev "$SRV_VETH" parent 1: protocol ip prio 1 u32 match ip src "$PUB/32" flowid 1:10
}

unshape_pub() { tc qdisc del dev "$SRV_VETH" root 2>/dev/null || true; }

# loss drops PERCENT % of what reaches the weak subscriber, at random (no netem on this kernel).
loss() {
  local pct=$1 ipt=(ip netns exec "$WEAK_NS" iptables -w) rule p
  [[ $pct =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "netns.sh: loss needs a percentage" >&2; return 2; }
  # Remove the earlier loss rule, whatever its probability.
  while rule=$("${ipt[@]}" -S INPUT | grep -m1 -- "$PREFIX loss"); do
    eval "${ipt[*]} ${rule/-A /-D }"
  done
  [ "$pct" = 0 ] && return 0
  p=$(awk -v x="$pct" 'BEGIN { printf "%.4f", x / 100 }')
  "${ipt[@]}" -I INPUT -s "$SRV" -m comment --comment "$PREFIX loss" -m statistic --mode random --probability "$p" -j DROP
}

# transport restricts the weak subscriber's own namespace: udp allows everything; tcp drops every
# UDP datagram to the server, so only ICE-TCP or TURN/TCP can carry media (the page chooses which
# by the ICE servers it gives its peer connections).
transport() {
  local ipt=(ip netns exec "$WEAK_NS" iptables -w)
  "${ipt[@]}" -D OUTPUT -p udp -d "$SRV" -m comment --comment "$PREFIX no udp" -j DROP 2>/dev/null || true
  case $1 in
    udp) ;;
    tcp) "${ipt[@]}" -A OUTPUT -p udp -d "$SRV" -m comment --comment "$PREFIX no udp" -j DROP ;;
    *) echo "netns.sh: unknown transport '$1' (udp|tcp)" >&2; return 2 ;;
  esac
}

bytes() {
  ip netns exec "$SRV_NS" iptables -w -L OUTPUT -v -x -n | awk -v d="$WEAK" '$0 ~ /pwn to weak/ && $9 == d {print $2; exit}'
}

pub_bytes() {
  ip netns exec "$SRV_NS" iptables -w -L INPUT -v -x -n | awk -v s="$PUB" '$0 ~ /pwn from pub/ && $8 == s {print $2; exit}'
}

show() {
  for ns in "${NS[@]}"; do
    nb_have_ns "$ns" || { echo "$ns: absent"; continue; }
    echo "== $ns: $(ip -n "$ns" -4 -o addr show dev eth0 | awk '{print $4}')"
    ip netns exec "$ns" iptables -w -S
  done
  tc -s qdisc show dev "$WEAK_VETH"
  tc -s qdisc show dev "$SRV_VETH"
}

case ${1:-} in
  up) up ;;
  down) nb_down ;;
  shape) [ $# = 2 ] || { echo "usage: $0 shape KBIT" >&2; exit 2; }; shape "$2" ;;
  unshape) unshape ;;
  loss) [ $# = 2 ] || { echo "usage: $0 loss PERCENT" >&2; exit 2; }; loss "$2" ;;
  transport) [ $# = 2 ] || { echo "usage: $0 transport udp|tcp" >&2; exit 2; }; transport "$2" ;;
  bytes) bytes ;;
  shape-pub) [ $# = 2 ] || { echo "usage: $0 shape-pub KBIT" >&2; exit 2; }; shape_pub "$2" ;;
  unshape-pub) unshape_pub ;;
  pub-bytes) pub_bytes ;;
  show) show ;;
  *) echo "usage: $0 up | down | shape KBIT | unshape | loss PERCENT | transport udp|tcp | bytes | shape-pub KBIT | unshape-pub | pub-bytes | show" >&2; exit 2 ;;
esac
