#!/usr/bin/env bash
# A/B of TURN relay builds: the relay load of turn-vs-coturn.sh against each server in turn,
# alternating, one line per round and server. A server is "coturn" or the path of a turnrelay
# binary (go build -o /tmp/before ./bench/turnrelay on the old commit, and so on).
#
# usage: bench/turn-ab.sh rounds server... (CL clients, MS messages, GAP ms from the environment)
set -euo pipefail
R=$1; shift
CL=${CL:-20} MS=${MS:-3000} GAP=${GAP:-5}
cleanup() { kill $(jobs -p) 2>/dev/null || true; }
trap cleanup EXIT
taskset -c 1 turnutils_peer -L 127.0.0.1 -p 3480 >/dev/null 2>&1 &
CREDS=$(mktemp)
for r in $(seq "$R"); do
  for s in "$@"; do
    if [ "$s" = coturn ]; then
      U=bench P=benchpass
      taskset -c 0 turnserver -n --listening-ip=127.0.0.1 --listening-port=3479 --relay-ip=127.0.0.1 \
        --lt-cred-mech --user=$U:$P --realm=parley --allow-loopback-peers --no-tls --no-dtls \
        --no-cli --no-stdout-log --log-file=/dev/null --user-quota=1000 --total-quota=10000 >/dev/null 2>&1 &
      SRV=$!
      for _ in $(seq 50); do ss -tln | grep -q "127.0.0.1:3479 " && break; sleep 0.1; done
    else
      : > "$CREDS"
      taskset -c 0 "$s" -listen 127.0.0.1:3479 -peer 127.0.0.1:3480 > "$CREDS" &
      SRV=$!
      for _ in $(seq 50); do [ -s "$CREDS" ] && break; sleep 0.1; done
      read -r U P < "$CREDS"
    fi
    c0=$(awk '{print $14+$15}' /proc/$SRV/stat)
    lost=$(taskset -c 1 turnutils_uclient -t -c -n "$MS" -m "$CL" -l 1000 -z "$GAP" -e 127.0.0.1 -r 3480 \
      -u "$U" -w "$P" -p 3479 127.0.0.1 2>&1 | sed -n 's/.*Total lost packets \([0-9]*\).*/\1/p' | tail -1)
    c1=$(awk '{print $14+$15}' /proc/$SRV/stat)
    echo "$r $s µs/datagram $(awk -v t=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" -v n=$((CL * MS)) \
      'BEGIN{printf "%.2f", t/hz*1e6/(2*n)}') lost ${lost:-?}"
    kill "$SRV"; wait "$SRV" 2>/dev/null || true
  done
done
rm -f "$CREDS"
