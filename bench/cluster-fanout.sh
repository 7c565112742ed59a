#!/usr/bin/env bash
# Fan-out over a cluster (issue 16's target): 1 video + 1 audio publisher → N subscribers on one
# node ("parley") and spread over three nodes of one cluster on a redis-server ("cluster3":
# publishers on the first node, subscribers on each node in turn, so two thirds of them get the
# streams across an inter-node link). All nodes pinned to SERVER_CPU, as the one node is, so they
# share the same CPU; the table's ratio is the cluster's server CPU per delivered packet (all three
# nodes added up) over the one node's. Rounds alternate which goes first; round 0 is dropped.
# Inter-node traffic: node-1's packets sent to each other node over its publishers' packets, over
# the last window of each cluster run (bench/results/cluster-fanout-links.txt).
#
# usage: bench/cluster-fanout.sh [--rounds R] [--window 15s] [N …]   (default N: 300; R: 2)
CMDLINE="bench/cluster-fanout.sh $*"
source "$(dirname "$0")/lib.sh"
NAME=cluster-fanout ROUNDS=2 WINDOW=15s NS=()
while (($#)); do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --window) WINDOW=$2; shift 2 ;;
    *) NS+=("$1"); shift ;;
  esac
done
((${#NS[@]})) || NS=(300)
STEPS=$(IFS=,; echo "${NS[*]}")
command -v redis-server >/dev/null || { echo "redis-server is not installed (scripts/install-test-deps.sh)" >&2; exit 1; }
bench_build

# start_cluster starts a redis-server and three nodes on it: sets NODE_URLS and NODE_PIDS.
start_cluster() {
  local rport; rport=$(free_port)
  redis-server --bind 127.0.0.1 --port "$rport" --save '' --appendonly no >>"$OUT/redis.log" 2>&1 &
  REDIS_PID=$!
  STARTED+=("$REDIS_PID")
  local i
  for i in $(seq 50); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
  NODE_URLS=() NODE_PIDS=()
  METRICS_URL="127.0.0.1:$(free_port)"
  for i in 1 2 3; do
    local port; port=$(free_port)
    local metrics=off
    ((i == 1)) && metrics=$METRICS_URL # the publishers' node: what crosses to the others
    HTTPS_PORT=$port PARLEY_MEDIA_PORT=$port PARLEY_MEDIA_LISTEN_IPS=127.0.0.1 OPENVIDU_SECRET=MY_SECRET \
      DOTENV_PATH= PARLEY_LOG_LEVEL=warn PARLEY_DATA_DIR="$OUT/parley-data-$i" \
      PARLEY_REDIS_URL="redis://127.0.0.1:$rport/0" PARLEY_NODE_ID="node-$i" PARLEY_METRICS_ADDR=$metrics \
      taskset -c "$SERVER_CPU" env -u PARLEY_BIN "${PARLEY_BIN:-bin/parley}" serve >>"$OUT/parley-node-$i.log" 2>&1 &
    local pid=$!
    STARTED+=("$pid")
    await_up "parley-node-$i" "$pid" -f -u OPENVIDUAPP:MY_SECRET "http://127.0.0.1:$port/openvidu/api/config"
    NODE_URLS+=("http://127.0.0.1:$port") NODE_PIDS+=("$pid")
  done
}

stop_cluster() {
  local p
  for p in "${NODE_PIDS[@]}"; do stop_pid "$p"; done
  stop_pid "$REDIS_PID"
}

# sample_links appends, every 2 s, node-1's RTP packets in from its publishers and the RTP packets
# and bytes it sent on its links to node-2 and node-3 (Prometheus counters), one line per sample.
sample_links() {
  while :; do
    curl -s "http://$METRICS_URL/metrics" | awk -v t="$(date +%s.%N)" '
      /^parley_rtp_packets_total\{.*direction="in"/ { pin = $NF }
      /^parley_cascade_sent_packets_total\{.*peer="node-2"/ { p2 = $NF }
      /^parley_cascade_sent_packets_total\{.*peer="node-3"/ { p3 = $NF }
      /^parley_cascade_sent_bytes_total\{.*peer="node-2"/ { b2 = $NF }
      /^parley_cascade_sent_bytes_total\{.*peer="node-3"/ { b3 = $NF }
      END { printf "%s %.0f %.0f %.0f %.0f %.0f\n", t, pin, p2, p3, b2, b3 }'
    sleep 2 # a sampling period, not a synchronisation
  done
}

# link_ratios FILE prints, over the last WINDOW of the samples (the measuring window ends the
# run), what node-1 sent to each other node ÷ what its publishers sent it: 1.00 is one copy of
# each stream per remote node.
link_ratios() {
  local w=${WINDOW%s}
  awk -v w="$w" '{ t[NR] = $1; pin[NR] = $2; p2[NR] = $3; p3[NR] = $4; b2[NR] = $5; b3[NR] = $6 }
    END {
      e = NR; s = e
      while (s > 1 && t[e] - t[s - 1] <= w) s--
      d = pin[e] - pin[s]; dt = t[e] - t[s]
      if (d <= 0 || dt <= 0) { print "no samples"; exit }
      printf "over %.0f s: node-2 %.3f, node-3 %.3f of the publishers packets; link Mbit/s %.2f, %.2f\n",
        dt, (p2[e] - p2[s]) / d, (p3[e] - p3[s]) / d, 8 * (b2[e] - b2[s]) / dt / 1e6, 8 * (b3[e] - b3[s]) / dt / 1e6
    }' "$1"
}

# load_cluster ROUND ARGS… is lib.sh's load for the three nodes.
load_cluster() {
  local round=$1; shift
  local file="$OUT/$NAME-640x480-cluster3-r$round.json" links="$OUT/$NAME-640x480-cluster3-r$round.links"
  echo "== $NAME 640x480 cluster3 round $round" >&2
  start_cluster
  local urls pids
  urls=$(IFS=,; echo "${NODE_URLS[*]}") pids=$(IFS=,; echo "${NODE_PIDS[*]}")
  sample_links >"$links" &
  local sampler=$!
  taskset -c "$LOAD_CPU" bin/parley-load --url "$urls" --server-pid "$pids" --json "$@" >"$file" 2>>"$OUT/$NAME.log" \
    || { echo "parley-load failed, run not counted; see $OUT/$NAME.log" >&2; kill "$sampler"; wait "$sampler" 2>/dev/null || true; stop_cluster; return 0; }
  kill "$sampler"; wait "$sampler" 2>/dev/null || true
  stop_cluster
  echo "inter-node, round $round: $(link_ratios "$links")" | tee -a "$OUT/$NAME-links.txt" >&2
  RUNS+=("cluster3:$round:640x480=$file")
}

args=(--video-publishers 1 --audio-publishers 1 --subscribers "$STEPS" --resolution 640x480 --video-kbps 800
  --ramp 20 --warmup 5s --window "$WINDOW" --max-participants 1000)
for r in $(seq 0 "$ROUNDS"); do
  if ((r % 2 == 0)); then
    load parley "$r" 640x480 "${args[@]}"
    load_cluster "$r" "${args[@]}"
  else
    load_cluster "$r" "${args[@]}"
    load parley "$r" 640x480 "${args[@]}"
  fi
done
table "fan-out over a cluster: 1 video + 1 audio publisher → N subscribers, one node vs three nodes on one CPU"
