#!/usr/bin/env bash
# Meetings: rooms of 4 and of 10 where everyone publishes audio+video (VP8 640x480) and
# subscribes to everyone else; steps add rooms.
#
# usage: bench/meeting.sh [--rounds R] [--window 15s] [--rooms4 1,3,5] [--rooms10 1,2]
CMDLINE="bench/meeting.sh $*"
source "$(dirname "$0")/lib.sh"
NAME=meeting ROUNDS=2 WINDOW=15s R4=1,3,5 R10=1,2
while (($#)); do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --window) WINDOW=$2; shift 2 ;;
    --rooms4) R4=$2; shift 2 ;;
    --rooms10) R10=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
bench_build
for size in 4:$R4 10:$R10; do
  m=${size%%:*} rooms=${size#*:}
  for r in $(seq 0 "$ROUNDS"); do
    load parley "$r" "meeting-$m" --mode meeting --meeting "$m" --rooms "$rooms" \
      --ramp 10 --warmup 5s --window "$WINDOW" --max-participants 1000
  done
done
table "meetings: rooms of 4 and 10, everyone publishes and subscribes to everyone"
