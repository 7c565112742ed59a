#!/usr/bin/env bash
# Fan-out: 1 video + 1 audio publisher → N subscribers (steps of one run), at 640x480 and 1280x720
# VP8. Server cost per delivered RTP packet, loss, first-media latency; with --peer, LiveKit under
# the same load in alternating rounds.
#
# usage: bench/fanout.sh [--rounds R] [--window 15s] [--only 640x480|1280x720] [--peer livekit=<ws-url>,<key>,<secret>] [N …]
#   default N: 50 100 200 300; R: 2 measured rounds after a dropped warm-up round
CMDLINE="bench/fanout.sh $*"
source "$(dirname "$0")/lib.sh"
NAME=fanout ROUNDS=2 WINDOW=15s NS=() SCENARIOS="640x480:800 1280x720:1500"
while (($#)); do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --window) WINDOW=$2; shift 2 ;;
    --peer) parse_peer "$2"; shift 2 ;;
    --only) SCENARIOS=$(tr ' ' '\n' <<<"$SCENARIOS" | grep "^$2:"); shift 2 ;;
    *) NS+=("$1"); shift ;;
  esac
done
((${#NS[@]})) || NS=(50 100 200 300)
STEPS=$(IFS=,; echo "${NS[*]}")
bench_build
for scen in $SCENARIOS; do
  res=${scen%%:*} kbps=${scen##*:}
  for r in $(seq 0 "$ROUNDS"); do
    for s in $(servers_for "$r"); do
      load "$s" "$r" "$res" --video-publishers 1 --audio-publishers 1 --subscribers "$STEPS" \
        --resolution "$res" --video-kbps "$kbps" --ramp 20 --warmup 5s --window "$WINDOW" --max-participants 1000
    done
  done
done
table "fan-out: 1 video + 1 audio publisher → N subscribers"
