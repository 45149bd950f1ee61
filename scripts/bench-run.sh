#!/usr/bin/env bash
# Usage: scripts/bench-run.sh SPOTTER [THREADS] [FRAMES] [SOURCE]
# Issue #5's throughput check: the streaming pipeline (`spotter run --source SOURCE
# --max-frames FRAMES`, JSON lines to stdout, discarded) against pure inference of the same
# model at the same thread count (`spotter bench`, median latency → frames per second).
# Prints both rates and their ratio; the target is ratio >= 0.9. Exit status 0 either way
# (a number to look at, not a gate: shared CI machines are too noisy for a hard limit).
set -euo pipefail
spotter=${1:?usage: bench-run.sh SPOTTER [THREADS] [FRAMES] [SOURCE]}
threads=${2:-$(nproc)}
frames=${3:-300}
source=${4:-models/samples}

bench=$("$spotter" bench --json --threads "$threads" --runs 50)
bench_ms=$(printf '%s' "$bench" | python3 -c 'import json,sys; print(json.load(sys.stdin)["median_ms"])')

# `spotter run` logs "done after N frames in S s (F fps overall; ...)" at info level.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
"$spotter" --log info run --source "$source" --threads "$threads" --max-frames "$frames" \
  >/dev/null 2>"$log"
line=$(grep -o 'done after [0-9]* frames in [0-9.]* s' "$log" | tail -1)
[ -n "$line" ] || { echo "bench-run: no summary line from spotter run:" >&2; cat "$log" >&2; exit 1; }
python3 - "$bench_ms" "$line" "$threads" "$source" <<'PY'
import sys
bench_ms, line, threads, source = float(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
words = line.split()
n, secs = int(words[2]), float(words[5])
infer_fps = 1000.0 / bench_ms
run_fps = n / secs
print(f"bench: {bench_ms:.2f} ms median at {threads} thread(s) = {infer_fps:.1f} inferences/s")
print(f"run:   {n} frames from {source} in {secs:.2f} s = {run_fps:.1f} fps")
print(f"ratio: {run_fps / infer_fps:.2f} (issue #5 asks >= 0.9)")
PY
