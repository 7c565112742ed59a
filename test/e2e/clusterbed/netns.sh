#!/usr/bin/env bash
# The cluster bed's network: one namespace per machine of a three-node deployment, on one bridge.
#
#   pcl-n1 .. pcl-n3  $NET.1 .. $NET.3  the Parley nodes (TCP 443/80, media on UDP 443)
#   pcl-lb            $NET.10           HAProxy, the TCP load balancer on 443 (deploy/proxy/haproxy-cluster.cfg)
#   pcl-rd            $NET.20           redis-server
#   pcl-a .. pcl-c    $NET.11 .. .13    the participants' Chromium
#   root              $NET.254          on the bridge pcl-br: the runner (node, playwright, REST, the page server)
#
# NET is PCL_NET (run.sh picks a TEST-NET /24 this machine does not use; firewall/netns.sh says
# why not a private range). Everything carries the pcl prefix; nothing else on the host changes.
#
# usage: netns.sh up | down
set -euo pipefail

PREFIX=pcl
NS=("$PREFIX-n1" "$PREFIX-n2" "$PREFIX-n3" "$PREFIX-lb" "$PREFIX-rd" "$PREFIX-a" "$PREFIX-b" "$PREFIX-c")
NET=${PCL_NET:-192.0.2} NET_VAR=PCL_NET
IPS=("$NET.1" "$NET.2" "$NET.3" "$NET.10" "$NET.20" "$NET.11" "$NET.12" "$NET.13")
# shellcheck source=../netbed/lib.sh
source "$(dirname "$0")/../netbed/lib.sh"
nb_check_net

case ${1:-} in
  up) nb_up; trap - ERR ;;
  down) nb_down ;;
  *) echo "usage: $0 up | down" >&2; exit 2 ;;
esac
