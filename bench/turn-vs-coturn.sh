#!/usr/bin/env bash
# TURN relay cost, Parley's embedded TURN vs a stock coturn, driven by the same turnutils_uclient
# load over TCP (what browsers behind firewalls use), on loopback. Server and load are pinned to
# different CPUs; rounds alternate A/B and the first round is discarded.
#
# usage: bench/turn-vs-coturn.sh [rounds] [clients] [messages] [interval_ms]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-4} CLIENTS=${2:-20} MSGS=${3:-1500} GAP=${4:-5}
OUT=bench/results; mkdir -p "$OUT"
go build -o bin/turnrelay ./bench/turnrelay
cleanup() { kill $(jobs -p) 2>/dev/null || true; }
trap cleanup EXIT
taskset -c 1 turnutils_peer -L 127.0.0.1 -p 3480 >/dev/null 2>&1 &
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }

run() { # name pid port user pass → "cpu_ticks lost sent"
  local name=$1 pid=$2 port=$3 user=$4 pass=$5
  local c0; c0=$(cpu "$pid")
  local log; log=$(taskset -c 1 turnutils_uclient -t -c -n "$MSGS" -m "$CLIENTS" -l 1000 -z "$GAP" \
    -e 127.0.0.1 -r 3480 -u "$user" -w "$pass" -p "$port" 127.0.0.1 2>&1 || true)
  local c1; c1=$(cpu "$pid")
  local lost sent
  lost=$(echo "$log" | sed -n 's/.*Total lost packets \([0-9]*\).*/\1/p' | tail -1)
  sent=$(echo "$log" | sed -n 's/.*Total transmit time is.*//p; s/.*tot_send_msgs=\([0-9]*\).*/\1/p' | tail -1)
  echo "$((c1 - c0)) ${lost:-?} ${sent:-$((CLIENTS * MSGS))}"
}

taskset -c 0 turnserver -n --listening-ip=127.0.0.1 --listening-port=3478 --relay-ip=127.0.0.1 \
  --lt-cred-mech --user=bench:benchpass --realm=parley --allow-loopback-peers --no-tls --no-dtls \
  --no-cli --no-stdout-log --log-file=/dev/null --user-quota=1000 --total-quota=10000 &
COTURN=$!
taskset -c 0 ./bin/turnrelay -listen 127.0.0.1:3479 -peer 127.0.0.1:3480 > "$OUT/turnrelay.creds" &
OURS=$!
for _ in $(seq 50); do [ -s "$OUT/turnrelay.creds" ] && break; sleep 0.1; done
read -r OUSER OPASS < "$OUT/turnrelay.creds"
HZ=$(getconf CLK_TCK)
echo "| round | server | CPU ms | datagrams relayed | µs CPU / datagram | lost |" > "$OUT/turn-vs-coturn.md"
echo "|---|---|---|---|---|---|" >> "$OUT/turn-vs-coturn.md"
for r in $(seq 0 "$ROUNDS"); do
  for s in coturn parley; do
    if [ $s = coturn ]; then res=$(run coturn $COTURN 3478 bench benchpass); else res=$(run parley $OURS 3479 "$OUSER" "$OPASS"); fi
    read -r ticks lost sent <<< "$res"
    ms=$((ticks * 1000 / HZ))
    # each message goes client → relay → peer and back: two relayed datagrams
    per=$(awk -v t="$ticks" -v hz="$HZ" -v n="$sent" 'BEGIN{printf "%.2f", t/hz*1e6/(2*n)}')
    [ "$r" = 0 ] && continue
    echo "| $r | $s | $ms | $((2 * sent)) | $per | $lost |" >> "$OUT/turn-vs-coturn.md"
  done
done
cat "$OUT/turn-vs-coturn.md"
