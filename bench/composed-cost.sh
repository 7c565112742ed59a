#!/usr/bin/env bash
# What mixing a COMPOSED recording during the call costs against mixing it at stop (issue 15):
# BenchmarkMixing (internal/recording/compose) mixes the same 60 s two-person call (VP8 640x480
# with a keyframe a second, Opus) into 1280x720/25: "at-stop" with one ffmpeg for the whole call
# (the original design, x264 "fast"); "window" as the live mix does now, one ffmpeg (one thread)
# making the call's whole 5.12 s pieces and one more the rest, as at stop; "live-5.12s" and
# "live-10.24s" as it did before, one ffmpeg (one thread) per segment; all appended to the MP4.
# The ways alternate round by round (each round runs each once). Prints the median ffmpeg CPU seconds per second of call of
# each over the rounds.
#
# usage: bench/composed-cost.sh [--rounds 5]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=5
while (($#)); do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
mkdir -p bench/results
out=bench/results/composed-cost.txt
# go test's -count repeats each sub-benchmark in a row; a round here runs every way once, so the
# ways alternate (one test binary, run once per round; each run makes the inputs anew, untimed).
bin=$(mktemp /tmp/compose-bench-XXXX)
trap 'rm -f "$bin"' EXIT
go test -c -o "$bin" ./internal/recording/compose
: >"$out"
for _ in $(seq "$ROUNDS"); do
  (cd internal/recording/compose && "$bin" -test.run '^$' -test.bench BenchmarkMixing -test.benchtime 1x) | tee -a "$out"
done
python3 - "$out" <<'PY'
import re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    m = re.match(r'BenchmarkMixing/(\S+?)(-\d+)?\s.*?([\d.]+) cpu_s/call_s', line)
    if m:
        rows.setdefault(m.group(1), []).append(float(m.group(3)))
for name, xs in rows.items():
    print(f"{name}: median {statistics.median(xs):.3f} CPU-s per s of call over {len(xs)} rounds ({', '.join(f'{x:.3f}' for x in xs)})")
PY
echo "(bench/composed-cost.sh --rounds $ROUNDS, load average $(cut -d' ' -f1-3 /proc/loadavg))"
