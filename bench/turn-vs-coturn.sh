#!/usr/bin/env bash
# TURN relay cost, Parley's embedded TURN vs a stock coturn, driven by the same load over TCP (what
# browsers behind firewalls use), on loopback:
#   relay: turnutils_uclient at a fixed rate through each server to turnutils_peer and back;
#          server CPU per relayed datagram and lost packets;
#   alloc: bench/turnalloc (pion's client) opening connections and allocating as fast as it can;
#          allocations/s and server CPU per allocation.
# Servers run on CPU 0, load on CPU 1; rounds alternate coturn/parley and the first is discarded.
# Writes bench/results/turn-vs-coturn.{md,json} and prints the Markdown.
#
# usage: bench/turn-vs-coturn.sh [rounds] [clients] [messages] [interval_ms] [alloc_workers] [alloc_seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-4} CLIENTS=${2:-20} MSGS=${3:-3000} GAP=${4:-5} AWORKERS=${5:-20} ASECS=${6:-8}
OUT=bench/results; mkdir -p "$OUT"
go build -o bin/turnrelay ./bench/turnrelay
go build -o bin/turnalloc ./bench/turnalloc
cleanup() { kill $(jobs -p) 2>/dev/null || true; }
trap cleanup EXIT
taskset -c 1 turnutils_peer -L 127.0.0.1 -p 3480 >/dev/null 2>&1 &
HZ=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }

start_server() { # name → sets SRV PORT USER PASS
  if [ "$1" = coturn ]; then
    PORT=3478 USER=bench PASS=benchpass
    taskset -c 0 turnserver -n --listening-ip=127.0.0.1 --listening-port=$PORT --relay-ip=127.0.0.1 \
      --lt-cred-mech --user=$USER:$PASS --realm=parley --allow-loopback-peers --no-tls --no-dtls \
      --no-cli --no-stdout-log --log-file=/dev/null --user-quota=1000 --total-quota=10000 >/dev/null 2>&1 &
    SRV=$!
    for _ in $(seq 50); do ss -tln | grep -q "127.0.0.1:$PORT " && break; sleep 0.1; done
  else
    PORT=3479
    rm -f "$OUT/turnrelay.creds"
    taskset -c 0 ./bin/turnrelay -listen 127.0.0.1:$PORT -peer 127.0.0.1:3480 > "$OUT/turnrelay.creds" &
    SRV=$!
    for _ in $(seq 50); do [ -s "$OUT/turnrelay.creds" ] && break; sleep 0.1; done
    read -r USER PASS < "$OUT/turnrelay.creds"
  fi
}
stop_server() { kill "$SRV"; wait "$SRV" 2>/dev/null || true; }

relay_round() { # → "µs_per_datagram lost sent"
  local c0 c1 log lost sent
  c0=$(cpu "$SRV")
  log=$(taskset -c 1 turnutils_uclient -t -c -n "$MSGS" -m "$CLIENTS" -l 1000 -z "$GAP" \
    -e 127.0.0.1 -r 3480 -u "$USER" -w "$PASS" -p "$PORT" 127.0.0.1 2>&1 || true)
  c1=$(cpu "$SRV")
  lost=$(echo "$log" | sed -n 's/.*Total lost packets \([0-9]*\).*/\1/p' | tail -1)
  sent=$(echo "$log" | sed -n 's/.*tot_send_msgs=\([0-9]*\).*/\1/p' | tail -1)
  sent=${sent:-$((CLIENTS * MSGS))}
  # each message goes client → relay → peer and back: two relayed datagrams
  awk -v t=$((c1 - c0)) -v hz="$HZ" -v n="$sent" -v l="${lost:-0}" 'BEGIN{printf "%.2f %d %d", t/hz*1e6/(2*n), l, n}'
}

alloc_round() { # → "allocs_per_s µs_per_alloc failures"
  local c0 c1 res n
  c0=$(cpu "$SRV")
  res=$(taskset -c 1 ./bin/turnalloc -server 127.0.0.1:$PORT -u "$USER" -w "$PASS" \
    -workers "$AWORKERS" -duration "${ASECS}s" 2>>"$OUT/turnalloc.err")
  c1=$(cpu "$SRV")
  n=$(echo "$res" | awk '{print $2}')
  echo "$res" | awk -v t=$((c1 - c0)) -v hz="$HZ" -v n="$n" '{printf "%s %.0f %s", $8, t/hz*1e6/(n>0?n:1), $4}'
}

ROWS=()
: > "$OUT/turnalloc.err" # first error of each allocation round, if any
for r in $(seq 0 "$ROUNDS"); do
  for s in coturn parley; do
    start_server $s
    read -r per lost sent <<< "$(relay_round)"
    stop_server
    start_server $s
    read -r aps apc afail <<< "$(alloc_round)"
    stop_server
    [ "$r" = 0 ] && continue # warm-up round
    ROWS+=("$r $s $per $lost $((2 * sent)) $aps $apc $afail")
  done
done

median() { sort -g | awk '{a[NR]=$1} END{print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
col() { printf '%s\n' "${ROWS[@]}" | awk -v s="$1" -v c="$2" '$2==s{print $c}'; }
ratios() { # column → per-round ratio parley/coturn, median
  paste <(col coturn "$1") <(col parley "$1") | awk '{print $2/$1}' | median
}
C_PER=$(col coturn 3 | median) P_PER=$(col parley 3 | median)
C_APS=$(col coturn 6 | median) P_APS=$(col parley 6 | median)
C_APC=$(col coturn 7 | median) P_APC=$(col parley 7 | median)
C_LOST=$(col coturn 4 | paste -sd+ | bc) P_LOST=$(col parley 4 | paste -sd+ | bc)
R_PER=$(ratios 3) R_APS=$(ratios 6) R_APC=$(ratios 7)

{
  echo "TURN/TCP, $CLIENTS clients × $MSGS messages of 1000 B every $GAP ms (turnutils_uclient); allocations: $AWORKERS workers for ${ASECS}s (bench/turnalloc). Servers on CPU 0, load on CPU 1, first round discarded."
  echo "$(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), kernel $(uname -r), coturn $(dpkg-query -W -f='${Version}' coturn 2>/dev/null || echo '?'), parley $(git rev-parse --short HEAD)"
  echo
  echo "| round | server | µs CPU / datagram | lost | datagrams | allocations/s | µs CPU / allocation | failed allocations |"
  echo "|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${ROWS[@]}" | awk '{printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8}'
  echo
  echo "| median | coturn | parley | parley / coturn (median of per-round ratios) |"
  echo "|---|---|---|---|"
  echo "| µs CPU / relayed datagram | $C_PER | $P_PER | $R_PER |"
  echo "| lost packets (all rounds) | $C_LOST | $P_LOST | |"
  echo "| allocations/s | $C_APS | $P_APS | $R_APS |"
  echo "| µs CPU / allocation | $C_APC | $P_APC | $R_APC |"
} > "$OUT/turn-vs-coturn.md"
cat > "$OUT/turn-vs-coturn.json" <<EOF
{"clients": $CLIENTS, "messages": $MSGS, "interval_ms": $GAP, "alloc_workers": $AWORKERS, "alloc_seconds": $ASECS,
 "cpus": $(nproc), "kernel": "$(uname -r)", "commit": "$(git rev-parse --short HEAD)",
 "coturn": {"us_per_datagram": $C_PER, "lost": $C_LOST, "allocs_per_s": $C_APS, "us_per_alloc": $C_APC},
 "parley": {"us_per_datagram": $P_PER, "lost": $P_LOST, "allocs_per_s": $P_APS, "us_per_alloc": $P_APC},
 "ratio_parley_over_coturn": {"us_per_datagram": $R_PER, "allocs_per_s": $R_APS, "us_per_alloc": $R_APC}}
EOF
cat "$OUT/turn-vs-coturn.md"
