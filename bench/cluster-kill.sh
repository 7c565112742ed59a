#!/usr/bin/env bash
# Kill -9 of a node (issue 16's target): runs the cluster bed (test/e2e/clusterbed: three nodes in
# network namespaces, one redis-server, HAProxy in front, three stock openvidu-browser pages in
# Chromium) RUNS times and reports, over the runs that got that far:
#   - its participant decodes video again: ms from the SIGKILL until the participant of the killed
#     node decodes both others and both others decode it (p95, nearest rank, and the median);
#   - the others: freezes, packets lost and the longest stall of the two streams that never lived
#     on the dead node, in the window from the kill until everyone decodes everyone again;
#   - REST on the survivors shows no ghost: ms from the kill until both list exactly the live
#     participants, once the registry dropped the dead node;
#   - the Redis restart: ms until every node's REST shows the session again, and the longest stall.
# A run that failed counts as failed (its bed output says why). Usage: bench/cluster-kill.sh [RUNS]
# (default 5; about 4 minutes each). Needs root, like the bed. Build first: make build.
# CLUSTERBED_FORCE_MEDIA_RECONNECTION=1 (passed to the bed): the pages set openvidu-browser's
# forceMediaReconnectionAfterNetworkDrop, so the participant's own stream is republished as soon
# as its WebSocket is back instead of once its browser's ICE gave up on the dead node.
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
out=$(mktemp /tmp/cluster-kill.XXXXXX.jsonl)
log=bench/results/cluster-kill.log
mkdir -p bench/results
: >"$log"
failed=0
for i in $(seq 1 "$runs"); do
  start=$(date +%s)
  echo -n "run $i/$runs (load $(cut -d' ' -f1-3 /proc/loadavg))"
  CLUSTERBED_OUT=$out ./test/e2e/clusterbed/run.sh >>"$log" 2>&1 || failed=$((failed + 1))
  echo ": $(($(date +%s) - start)) s, load after $(cut -d' ' -f1-3 /proc/loadavg)"
done
echo "failed runs: $failed of $runs (bed output: $log)"
node - "$out" <<'JS'
const fs = require('fs');
const rows = fs.readFileSync(process.argv[2], 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const rank = (xs, p) => { const s = xs.filter((x) => x !== null && x !== undefined).sort((a, b) => a - b); return s.length ? s[Math.max(0, Math.ceil(p * s.length) - 1)] : null; };
const show = (name, xs) => console.log(`${name}: p95 ${rank(xs, 0.95)} ms, median ${rank(xs, 0.5)} ms (n=${xs.filter((x) => x != null).length}; ${JSON.stringify(xs)})`);
show('kill -9: its participant decodes and is decoded again', rows.map((r) => r.kill?.reDecodeMs ?? null));
show('kill -9: its participant decodes the others again', rows.map((r) => r.kill?.decodesMs ?? null));
show('kill -9: the others decode it again', rows.map((r) => r.kill?.decodedMs ?? null));
show('kill -9: restored on a survivor', rows.map((r) => r.restoredMs ?? null));
show('kill -9: survivors\' REST without ghost', rows.map((r) => r.noGhostMs ?? null));
const surv = rows.flatMap((r) => Object.values(r.kill?.survivors || {}));
console.log(`kill -9: streams not on the dead node (${surv.length}): freezes ${JSON.stringify(surv.map((s) => s.freezes))}, packets lost ${JSON.stringify(surv.map((s) => s.lost))}, longest stall ms ${JSON.stringify(surv.map((s) => s.maxGapMs))}, new peer connections ${JSON.stringify(surv.map((s) => s.newPeerConnections))}`);
show('Redis restarted empty: every node lists the session again', rows.map((r) => r.redis?.rewrittenMs ?? null));
show('Redis restarted empty: longest stall of any stream', rows.map((r) => r.redis?.maxGapMs ?? null));
JS
rm -f "$out"
