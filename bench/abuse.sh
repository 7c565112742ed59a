#!/usr/bin/env bash
# The abuse bed (issue 14): starts Parley (dev mode, pinned to CPU 0) and runs each attack of
# bench/abuse against it, one line per attack: what it cost the server (RSS, CPU, open files)
# and what a legitimate user saw meanwhile. SERVER_BIN runs another build (e.g. an older
# commit's) for a before/after; ATTACKS picks a subset.
#
# usage: bench/abuse.sh            (ATTACKS="idle prejoin …", N_<ATTACK>=size, ABUSE_ARGS="-sources 64"
#                                  from the environment)
source "$(dirname "$0")/lib.sh"
ulimit -n "$(ulimit -Hn)" # 10,000 attacker connections and their server side
bench_build
go build -o bin/abuse ./bench/abuse
BIN=${SERVER_BIN:-bin/parley}
for a in ${ATTACKS:-idle}; do
  port=$(free_port)
  users=() # the guess attack needs the account it guesses (bench/abuse guessUser)
  if [ "$a" = guess ]; then users=(PARLEY_APP_USERS=alice:correct-horse-battery-staple); fi
  env "${users[@]}" HTTPS_PORT=$port PARLEY_MEDIA_PORT=$port PARLEY_MEDIA_LISTEN_IPS=127.0.0.1 OPENVIDU_SECRET=MY_SECRET \
    DOTENV_PATH= PARLEY_LOG_LEVEL=warn PARLEY_DATA_DIR="$OUT/parley-data" \
    taskset -c "$SERVER_CPU" "$BIN" serve >>"$OUT/parley.log" 2>&1 &
  PARLEY_PID=$!
  STARTED+=("$PARLEY_PID")
  await_up parley "$PARLEY_PID" -f -u OPENVIDUAPP:MY_SECRET "http://127.0.0.1:$port/openvidu/api/config"
  n_var=N_${a^^}
  taskset -c "$LOAD_CPU" bin/abuse -addr "127.0.0.1:$port" -pid "$PARLEY_PID" ${!n_var:+-n ${!n_var}} ${ABUSE_ARGS:-} "$a"
  stop_pid "$PARLEY_PID"
done
