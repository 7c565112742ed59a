#!/usr/bin/env bash
# Audio room: 10 audio publishers → N subscribers, each receiving all ten (Opus, 20 ms, 50 pps).
# Stresses per-packet and per-track overhead rather than bytes. With --peer, LiveKit under the same
# load in alternating rounds.
#
# usage: bench/audio-room.sh [--rounds R] [--window 15s] [--publishers 10] [--peer livekit=<ws-url>,<key>,<secret>] [N …]
#   default N: 100 300; R: 2 measured rounds after a dropped warm-up round
CMDLINE="bench/audio-room.sh $*"
source "$(dirname "$0")/lib.sh"
NAME=audio-room ROUNDS=2 WINDOW=15s PUBS=10 NS=()
while (($#)); do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --window) WINDOW=$2; shift 2 ;;
    --publishers) PUBS=$2; shift 2 ;;
    --peer) parse_peer "$2"; shift 2 ;;
    *) NS+=("$1"); shift ;;
  esac
done
((${#NS[@]})) || NS=(100 300)
STEPS=$(IFS=,; echo "${NS[*]}")
bench_build
for r in $(seq 0 "$ROUNDS"); do
  for s in $(servers_for "$r"); do
    load "$s" "$r" "audio-${PUBS}pub" --video-publishers 0 --audio-publishers "$PUBS" --subscribers "$STEPS" \
      --ramp 10 --warmup 5s --window "$WINDOW" --max-participants 1000 --duration 20m
  done
done
table "audio room: $PUBS audio publishers → N subscribers"
