#!/usr/bin/env bash
# Time to first frame in headless Chromium with the stock openvidu-browser 2.32.2 (bench/ttff.mjs):
# publisher first, then JOINS sequential subscriber joins, p50/p95 from connect() to the first
# decoded remote frame. Parley on CPU 0, node and Chromium on CPU 1.
#
# usage: bench/ttff.sh [--joins 30] [--rounds 1]
CMDLINE="bench/ttff.sh $*"
source "$(dirname "$0")/lib.sh"
NAME=ttff JOINS=30 ROUNDS=1
while (($#)); do
  case $1 in
    --joins) JOINS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
make build >/dev/null
test/e2e/setup.sh
start_parley
PARLEY_URL=$PARLEY_URL JOINS=$JOINS ROUNDS=$ROUNDS OUT="$OUT/ttff" CMDLINE="$CMDLINE" \
  timeout 900 taskset -c "$LOAD_CPU" node bench/ttff.mjs
stop_parley
