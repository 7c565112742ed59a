#!/usr/bin/env bash
# The weak-network matrix (bench/weaknet.mjs on the bed of test/e2e/weaknet): one publisher (coded
# canvas 640x480 + fake microphone), two unshaped subscribers and one weak subscriber whose downlink
# is shaped with tc tbf, over UDP, ICE-TCP and TURN/TCP, in stock openvidu-browser 2.32.2 in Chromium.
# Writes bench/results/weaknet.{md,json}. Needs root.
#
# usage: bench/weaknet.sh [--rounds 2] [--cells udp:150,ice-tcp:300,turn-tcp:150:5,pub-udp:300,…] [--phases 10,30,10]
#                         [--env "OPENVIDU_WEBRTC_SIMULCAST=true …"] [--capture 960x540] [--name weaknet]
#   a cell is transport:kbit[:loss%]; transports udp, ice-tcp, turn-tcp, turn-tls; phases are the seconds
#   alone / shaped / freed [/ squeezed: shaped again]; a cell pub-udp:kbit shapes the PUBLISHER's
#   uplink instead (netns.sh shape-pub: tbf on the server's veth for the publisher's packets) in the
#   same phases, with no weak subscriber, and gets its own table: what the two unshaped subscribers
#   see (fps, freeze s/min, height, latency) and what the publisher's getStats says (layers sent,
#   qualityLimitationReason, send-side estimate, PLI/s and NACK/s reaching it, up/down times);
#   a cell pubjoin-udp:kbit has the publisher JOIN over its shaped uplink (its first seconds are
#   "alone"; the log line says how long the others took to decode it);
#   --capture is the publisher's capture size
#   (default 640x480: two simulcast layers; three from 960x540; 960x540/L1T3 also has the publisher
#   encode each layer in three temporal layers, which the stock client's 'L1T1' does not: a client
#   that is not stock); --cells none runs no parley cell
#   (with LIVEKIT_BIN: LiveKit alone).
#
# LiveKit side by side: LIVEKIT_BIN=/path/to/livekit-server (v1.13.5, built as
# ../shared/reference/perf-anchors.md §1.4 says; never committed) adds, every round, the cells of
# LIVEKIT_CELLS (default udp:300,udp:600) against it with livekit-client (bench/livekit-client,
# pinned) in the same Chromium, same shaping; rounds alternate which server goes first.
set -euo pipefail
CMDLINE="bench/weaknet.sh $*"
cd "$(dirname "$0")/.."
ROUNDS=2 CELLS= PHASES=10,30,10 PARLEY_ENV= NAME=weaknet CAPTURE=
while (($#)); do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --cells) CELLS=$2; shift 2 ;;
    --phases) PHASES=$2; shift 2 ;;
    --env) PARLEY_ENV=$2; shift 2 ;;
    --name) NAME=$2; shift 2 ;;
    --capture) CAPTURE=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
skip() { echo "SKIP weak-network bench: $*"; exit 0; }
fail() { echo "FAIL weak-network bench: $*" >&2; exit 1; }
[ -n "${SKIP_BUILD:-}" ] || make build >/dev/null
mkdir -p bench/results
if [ -n "${LIVEKIT_BIN:-}" ] && [ -z "${LIVEKIT_CLIENT:-}" ]; then
  (cd bench/livekit-client && { [ -d node_modules/livekit-client ] || npm ci --no-audit --no-fund --loglevel=error; })
  export LIVEKIT_CLIENT=$PWD/bench/livekit-client/node_modules/livekit-client/dist/livekit-client.umd.js
fi
source test/e2e/weaknet/common.sh
# Unpinned by default: three Chromiums encoding and decoding 640x480 starve on one shared CPU, and a
# starved browser's freezes would be read as the server's. SERVER_CPU / LOAD_CPU pin like the other
# benchmarks.
status=0
PWN_SERVER_CPU=${SERVER_CPU:-} PWN_LOAD_CPU=${LOAD_CPU:-} ROUNDS=$ROUNDS CELLS=$CELLS PHASES=$PHASES PARLEY_ENV=$PARLEY_ENV CAPTURE=$CAPTURE \
  OUT="bench/results/$NAME" CMDLINE="$CMDLINE" nb_run 3600 node bench/weaknet.mjs || status=$?
exit "$status"
