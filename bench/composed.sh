#!/usr/bin/env bash
# COMPOSED recordings ready at stop (issue 15): a two-person meeting of parley-load media (both
# publish VP8 640x480 + Opus and subscribe to each other) is recorded COMPOSED at 1280x720/25 for
# CALL seconds, then stopped. Reported per run: stop -> ready (wall), the mixing CPU per second of
# call (user+system of parley's finished children, i.e. every ffmpeg, from start to ready: CPU
# seconds are steadier than wall time on a shared machine), the load average at ready, and from
# the recording's .compose.log how many segments were mixed during the call and after the stop and
# how long the mixing after stop and the join took. Medians over the runs at the end.
#
# A call longer than the machine-wide lock's 15 minutes runs without it (start the script niced,
# say nice -n 10, so others' beds keep their CPU) and takes it with --lock-before-stop SECONDS
# that long before the stop, holding it until the recording is ready: stop -> ready is then
# measured without a concurrent bed, while the live mix still keeps up with a live call (which
# goes on while the lock is awaited: the call then lasts longer than --call). Once it holds the
# lock the script puts parley (every thread; the live mixes set their own niceness) back to
# niceness 0, as a deployment runs it: after stop the mix runs at parley's own priority.
# --keep keeps the recording's folder (segments, parts, .compose.log) and prints where it is.
#
# usage: [SERVER_CPU=0] bench/composed.sh [--call 3600] [--runs 3] [--lock-before-stop 300] [--keep]
CMDLINE="bench/composed.sh $*"
# Parley on both CPUs unless told otherwise: its ffmpeg children inherit its affinity, and pinned
# to one CPU the mixing after stop ran one segment at a time on it (the 60-minute run of
# 2026-12-06). parley-load stays on CPU 1.
SERVER_CPU=${SERVER_CPU:-0,1}
source "$(dirname "$0")/lib.sh"
NAME=composed CALL=3600 RUNS_N=3 LOCK_BEFORE= KEEP=
LOCK=/tmp/parley-heavy.lock
while (($#)); do
  case $1 in
    --call) CALL=$2; shift 2 ;;
    --runs) RUNS_N=$2; shift 2 ;;
    --lock-before-stop) LOCK_BEFORE=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
bench_build
TICKS=$(getconf CLK_TCK)
AUTH=(-s -u OPENVIDUAPP:MY_SECRET)
# children_cpu PID: user+system seconds of the process's waited-for children (fields 16, 17).
children_cpu() { awk -v t="$TICKS" '{sub(/.*\) /, ""); print ($14 + $15) / t}' "/proc/$1/stat"; }
now() { date +%s.%N; }
results=()
for run in $(seq "$RUNS_N"); do
  rec_dir=$(mktemp -d /tmp/parley-bench-composed-XXXX)
  export OPENVIDU_RECORDING=true OPENVIDU_RECORDING_PATH=$rec_dir OPENVIDU_RECORDING_AUTOSTOP_TIMEOUT=600
  : >"$OUT/parley.log"
  start_parley
  prefix=rec$run$$
  taskset -c "$LOAD_CPU" bin/parley-load --url "$PARLEY_URL" --server-pid "$PARLEY_PID" --mode meeting --meeting 2 \
    --rooms 1 --room-prefix "$prefix" --warmup 5s --window "$((CALL + 60))s" --duration "$((CALL + 1800))s" --json \
    >"$OUT/$NAME-load-r$run.json" 2>>"$OUT/$NAME.log" &
  LOAD_PID=$!
  STARTED+=("$LOAD_PID")
  session=
  for _ in $(seq 300); do
    session=$(curl "${AUTH[@]}" "$PARLEY_URL/openvidu/api/sessions" | python3 -c '
import json,sys
for s in json.load(sys.stdin).get("content", []):
    pubs = sum(len(c.get("publishers") or []) for c in s["connections"]["content"])
    if s["sessionId"].startswith(sys.argv[1]) and pubs >= 2: print(s["sessionId"]); break' "$prefix" || true)
    [ -n "$session" ] && break
    sleep 0.2
  done
  [ -n "$session" ] || { echo "run $run: no two-publisher session; see $OUT/$NAME.log" >&2; stop_pid "$LOAD_PID"; stop_parley; continue; }
  cpu0=$(children_cpu "$PARLEY_PID")
  id=$(curl "${AUTH[@]}" -H 'Content-Type: application/json' -d "{\"session\":\"$session\",\"outputMode\":\"COMPOSED\",\"name\":\"bench\"}" \
    "$PARLEY_URL/openvidu/api/recordings/start" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  t_start=$(now)
  if [ -n "$LOCK_BEFORE" ]; then
    sleep "$((CALL > LOCK_BEFORE ? CALL - LOCK_BEFORE : 0))"
    load_before=$(cut -d' ' -f1-3 /proc/loadavg)
    exec 9>>"$LOCK"
    flock 9
    t_locked=$(now)
    for task in /proc/"$PARLEY_PID"/task/*; do renice -n 0 -p "${task##*/}" >/dev/null; done
    # The live mix's progress then: the window it last started (pieces a-b).
    window=$(grep -o '^live: pieces [0-9]*-[0-9]*' "$rec_dir/$id/.compose.log" | tail -1 || true)
    echo "run $run: ${window:+at the lock the live mix was at ${window#live: }; }lock taken $(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.0f}')" "$t_start" "$t_locked") s into the call (load average before it ${load_before})" >&2
    rest=$(python3 -c "import sys; print(max(0.0, float(sys.argv[1]) + float(sys.argv[2]) - float(sys.argv[3])))" "$t_start" "$CALL" "$t_locked")
    sleep "$rest"
  else
    sleep "$CALL"
  fi
  load_stop=$(cut -d' ' -f1-3 /proc/loadavg)
  t_stop=$(now)
  status=$(curl "${AUTH[@]}" -X POST "$PARLEY_URL/openvidu/api/recordings/stop/$id" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
  t_answer=$(now)
  # Bounded: a recording still not ready 15 minutes after stop is reported as such.
  for _ in $(seq 9000); do
    st=$(curl "${AUTH[@]}" "$PARLEY_URL/openvidu/api/recordings/$id" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
    [ "$st" = ready ] || [ "$st" = failed ] && break
    sleep 0.1
  done
  t_ready=$(now)
  cpu1=$(children_cpu "$PARLEY_PID")
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  lag=$(grep -o 'live mix lag at stop.*' "$rec_dir/$id/.compose.log" | tail -1 || true)
  joined=$(grep -o 'composed recording: joined.*' "$rec_dir/$id/.compose.log" | tail -1)
  pieces=$(grep -o 'after stop: piece .*' "$rec_dir/$id/.compose.log" | sed 's/after stop: piece //' | paste -sd, - || true)
  dur=$(curl "${AUTH[@]}" "$PARLEY_URL/openvidu/api/recordings/$id" | python3 -c 'import json,sys; print(json.load(sys.stdin)["duration"])')
  stop_pid "$LOAD_PID"
  stop_parley
  if [ -n "$LOCK_BEFORE" ]; then flock -u 9; exec 9>&-; fi
  line=$(python3 -c "
import sys
call, stop, ans, ready, c0, c1 = map(float, sys.argv[1:7])
print(f'{ready-stop:.2f} {(c1-c0)/call:.3f} {ans-stop:.3f}')" "$dur" "$t_stop" "$t_answer" "$t_ready" "$cpu0" "$cpu1")
  read -r to_ready cpu_per_s answer <<<"$line"
  echo "run $run: call ${dur} s, stop answered '$status' in ${answer} s, $st ${to_ready} s after stop, mixing ${cpu_per_s} CPU-s per s of call, load average ${load_stop} at stop, ${load} at ready; ${lag:+$lag; }${joined#composed recording: }${pieces:+ (after stop: piece $pieces)}" >&2
  results+=("$to_ready $cpu_per_s")
  if [ -n "$KEEP" ]; then echo "run $run: recording kept in $rec_dir/$id" >&2; else rm -rf "$rec_dir"; fi
done
printf '%s\n' "${results[@]}" | python3 -c '
import statistics, sys
rows = [list(map(float, l.split())) for l in sys.stdin if l.strip()]
if rows:
    print(f"median of {len(rows)} runs: ready {statistics.median(r[0] for r in rows):.2f} s after stop, "
          f"mixing {statistics.median(r[1] for r in rows):.3f} CPU-s per s of call")'
echo "($CMDLINE)"
