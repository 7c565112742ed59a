# Shared by the benchmark scripts (sourced, not run): building, a pinned Parley per run, the load
# generators, and the results table. Server on CPU 0, load on CPU 1; only processes started here
# are stopped here.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=bench/results
mkdir -p "$OUT"
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
STARTED=()
RUNS=()
cleanup() {
  local p
  for p in "${STARTED[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${STARTED[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

# bench_build builds the server, the generator and the table maker (and livekit-load with a peer).
bench_build() {
  make build >/dev/null
  go build -o bin/benchtab ./bench/benchtab
  if [ -n "${PEER:-}" ]; then (cd bench/livekit-load && go build -o ../../bin/livekit-load .); fi
}

# free_port prints a TCP and UDP port nobody on this machine listens on.
free_port() {
  local p
  for p in $(shuf -i 20000-29999 -n 50); do
    if ! ss -Htlnu "sport = :$p" | grep -q .; then echo "$p"; return; fi
  done
  return 1
}

# start_parley starts bin/parley (or PARLEY_BIN, another build to compare) pinned to SERVER_CPU on a free port: sets PARLEY_URL, PARLEY_PID.
start_parley() {
  local port; port=$(free_port)
  HTTPS_PORT=$port PARLEY_MEDIA_PORT=$port PARLEY_MEDIA_LISTEN_IPS=127.0.0.1 OPENVIDU_SECRET=MY_SECRET \
    DOTENV_PATH= PARLEY_LOG_LEVEL=warn PARLEY_DATA_DIR="$OUT/parley-data" \
    taskset -c "$SERVER_CPU" env -u PARLEY_BIN "${PARLEY_BIN:-bin/parley}" serve >>"$OUT/parley.log" 2>&1 &
  PARLEY_PID=$!
  STARTED+=("$PARLEY_PID")
  PARLEY_URL=http://127.0.0.1:$port
  await_up parley "$PARLEY_PID" -f -u OPENVIDUAPP:MY_SECRET "$PARLEY_URL/openvidu/api/config"
}

stop_parley() { stop_pid "$PARLEY_PID"; }

# await_up NAME PID CURL-ARGS… polls with curl until the server answers (15 s at most), failing
# early if its process has gone; its log is $OUT/NAME.log.
await_up() {
  local name=$1 pid=$2 i; shift 2
  for i in $(seq 150); do
    curl -s -o /dev/null "$@" && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "$name did not start; see $OUT/$name.log" >&2
  return 1
}

stop_pid() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# start_livekit, when LIVEKIT_BIN names a livekit-server the operator built (and LIVEKIT_ARGS its
# flags, default "--dev"), starts it pinned to SERVER_CPU for one run, like Parley: a process that
# lived through earlier rounds keeps their memory, so its RSS growth per track would read as zero.
# Without LIVEKIT_BIN the server behind --peer is used as it runs, and only its CPU is comparable.
start_livekit() {
  LK_PID=
  [ -n "${LIVEKIT_BIN:-}" ] || return 0
  local hostport=${LK_URL#*://}; hostport=${hostport%%/*}
  # shellcheck disable=SC2086 # LIVEKIT_ARGS is a list of flags
  taskset -c "$SERVER_CPU" "$LIVEKIT_BIN" ${LIVEKIT_ARGS:---dev} >>"$OUT/livekit.log" 2>&1 &
  LK_PID=$!
  STARTED+=("$LK_PID")
  await_up livekit "$LK_PID" "http://$hostport/"
}

stop_livekit() { [ -z "${LK_PID:-}" ] || stop_pid "$LK_PID"; }

# parse_peer reads --peer livekit=<ws-url>,<key>,<secret> into LK_URL, LK_KEY, LK_SECRET.
parse_peer() {
  local kind=${1%%=*} rest=${1#*=}
  [ "$kind" = livekit ] || { echo "--peer: only livekit=<url>,<key>,<secret> is known" >&2; exit 2; }
  IFS=, read -r LK_URL LK_KEY LK_SECRET <<<"$rest"
  [ -n "$LK_URL" ] && [ -n "$LK_KEY" ] && [ -n "$LK_SECRET" ] || { echo "--peer livekit=<url>,<key>,<secret>" >&2; exit 2; }
  PEER=livekit
}

# load SERVER ROUND SCENARIO ARGS… runs one measurement with the generator pinned to LOAD_CPU
# and records it for the table. Parley gets a fresh process per run.
load() {
  local server=$1 round=$2 scenario=$3; shift 3
  local file="$OUT/$NAME-$scenario-$server-r$round.json"
  echo "== $NAME $scenario $server round $round" >&2
  case $server in
    parley)
      start_parley
      taskset -c "$LOAD_CPU" bin/parley-load --url "$PARLEY_URL" --server-pid "$PARLEY_PID" --json "$@" >"$file" 2>>"$OUT/$NAME.log" \
        || { echo "parley-load failed, run not counted; see $OUT/$NAME.log" >&2; stop_parley; return 0; }
      stop_parley ;;
    livekit)
      start_livekit
      taskset -c "$LOAD_CPU" bin/livekit-load --url "$LK_URL" --api-key "$LK_KEY" --api-secret "$LK_SECRET" \
        ${LK_PID:+--server-pid "$LK_PID"} --json "$@" >"$file" 2>>"$OUT/$NAME.log" \
        || { echo "livekit-load failed, run not counted; see $OUT/$NAME.log" >&2; stop_livekit; return 0; }
      stop_livekit ;;
  esac
  RUNS+=("$server:$round:$scenario=$file")
}

# servers_for ROUND prints the servers in this round's order: A B, then B A, so neither always
# runs on a machine the other just warmed.
servers_for() {
  if [ -z "${PEER:-}" ]; then echo parley
  elif (( $1 % 2 == 0 )); then echo "parley $PEER"
  else echo "$PEER parley"; fi
}

# table TITLE writes $OUT/$NAME.md and .json from the recorded runs.
table() {
  bin/benchtab -out "$OUT/$NAME" -title "$1" -cmd "$CMDLINE" "${RUNS[@]}"
}
