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
#        netns.sh cell NS CELL    install the firewall of CELL (a|b|c|c-tls|d|e|e-tls, or open) in client namespace NS
#        netns.sh show            print the namespaces, addresses and firewalls
#
# Everything this script touches carries the pfw prefix; nothing else on the host is changed. `up`
# tears down what it built if any step fails.
set -euo pipefail

PREFIX=pfw
NS=("$PREFIX-srv" "$PREFIX-a" "$PREFIX-b")
NET=${PFW_NET:-203.0.113} NET_VAR=PFW_NET
IPS=("$NET.1" "$NET.11" "$NET.12")
# shellcheck source=../netbed/lib.sh
source "$(dirname "$0")/../netbed/lib.sh"
nb_check_net

up() {
  nb_up
  for ns in "${NS[@]}"; do cell_rules "$ns" open; done
  hosts_up
  trap - ERR
}

# hosts_up gives the client namespaces a hosts file naming the server parley.test: `ip netns exec`
# mounts /etc/netns/NS/hosts over /etc/hosts. Firefox needs it (Chromium has --host-resolver-rules;
# Firefox's network.dns.forceResolve would send the runner's page address to the server too).
hosts_up() {
  local ns
  for ns in "${NS[@]:1}"; do
    mkdir -p "/etc/netns/$ns"
    printf '127.0.0.1\tlocalhost\n%s\tparley.test\n' "$SRV" >"/etc/netns/$ns/hosts"
  done
}

down() {
  nb_down
  local ns
  for ns in "${NS[@]}"; do rm -rf "/etc/netns/$ns"; done
  rmdir /etc/netns 2>/dev/null || true  # only when no one else keeps a file there
}

# cell_rules installs a client's firewall. Stateful, like a real one: what may leave is the cell;
# replies (conntrack ESTABLISHED,RELATED), loopback and the runner (page server and proxy) are
# always allowed.
cell_rules() {
  local ns=$1 cell=$2
  local ipt=(ip netns exec "$ns" iptables -w)
  "${ipt[@]}" -P FORWARD DROP
  case $cell in
    open|a) nb_fw_open "$ns"; return 0 ;;  # no restriction at all
    b|c|c-tls|d|e|e-tls) ;;
    *) echo "netns.sh: unknown cell '$cell' (a|b|c|c-tls|d|e|e-tls|open)" >&2; return 2 ;;
  esac
  nb_fw_stateful "$ns"
  case $cell in
    b) "${ipt[@]}" -A OUTPUT -p tcp -j ACCEPT ;;                                  # every UDP datagram dropped
    c) "${ipt[@]}" -A OUTPUT -p tcp -d "$SRV" --dport 443 -j ACCEPT ;;            # only TCP 443 to the server
    c-tls) tls_only_443 "$ns"
       "${ipt[@]}" -A OUTPUT -p tcp -d "$SRV" --dport 443 -j ACCEPT ;;            # only TLS on TCP 443 to the server
    d) "${ipt[@]}" -A OUTPUT -p tcp -d "$SRV" --dport 443 -j ACCEPT
       "${ipt[@]}" -A OUTPUT -p udp -d "$SRV" --dport 443 -j ACCEPT ;;            # TCP 443 and UDP 443
    e|e-tls) ;;                                                                   # only the runner's proxies
  esac
  nb_fw_close "$ns"
}

# tls_only_443 makes a client's firewall identify applications on TCP 443 to the server, as a
# next-generation firewall does: a connection whose first payload is not a TLS handshake record
# (16 03) is reset, so HTTPS, WSS and TURN over TLS pass while TURN over TCP and ICE-TCP (plain
# STUN) do not. It sits first in OUTPUT because the stateful ESTABLISHED rule would pass the
# first payload; connmark remembers a connection that showed TLS.
tls_only_443() {
  local ipt=(ip netns exec "$1" iptables -w)
  # the first payload byte's offset: the IP header length, then the TCP data offset
  local payload='0>>22&0x3C@12>>26&0x3C@'
  "${ipt[@]}" -N "$PREFIX-tls443"
  "${ipt[@]}" -A "$PREFIX-tls443" -m connmark --mark 0x1/0x1 -j RETURN
  "${ipt[@]}" -A "$PREFIX-tls443" -m u32 ! --u32 "${payload}0>>24=0:255" -j RETURN  # no payload yet (SYN, ACK)
  "${ipt[@]}" -A "$PREFIX-tls443" -m u32 --u32 "${payload}0>>16=0x1603" -j CONNMARK --set-mark 0x1/0x1
  "${ipt[@]}" -A "$PREFIX-tls443" -m connmark --mark 0x1/0x1 -j RETURN
  "${ipt[@]}" -A "$PREFIX-tls443" -p tcp -j REJECT --reject-with tcp-reset
  "${ipt[@]}" -I OUTPUT 1 -p tcp -d "$SRV" --dport 443 -j "$PREFIX-tls443"
}

show() {
  for ns in "${NS[@]}"; do
    nb_have_ns "$ns" || { echo "$ns: absent"; continue; }
    echo "== $ns: $(ip -n "$ns" -4 -o addr show dev eth0 | awk '{print $4}')"
    ip netns exec "$ns" iptables -w -S
  done
}

case ${1:-} in
  up) up ;;
  down) down ;;
  cell) [ $# = 3 ] || { echo "usage: $0 cell NS CELL" >&2; exit 2; }; cell_rules "$2" "$3" ;;
  show) show ;;
  *) echo "usage: $0 up | down | cell NS a|b|c|c-tls|d|e|e-tls|open | show" >&2; exit 2 ;;
esac
