#!/usr/bin/env bash
# Soak test (issue 7): `spotter run` on the sample images, looped, for SOAK_SECONDS: into an MQTT
# sink at QoS 1 to a private mosquitto when one is installed, else the stdout sink (to a scratch
# file; `spotter run` uses stdout only when no other sink is configured). Samples VmRSS
# (/proc/PID/status) and the open fd count (/proc/PID/fd) after a warm-up and at the end, prints
# both, and fails if RSS grew by more than SOAK_MAX_RSS_KB (default 1024) or fds grew at all.
#
# Usage: scripts/soak.sh [BIN]   (env: SOAK_SECONDS=60 SOAK_WARMUP=60 SOAK_FPS=10 SOAK_THREADS=1)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-${CARGO_TARGET_DIR:-target}/release/spotter}
SECONDS_RUN=${SOAK_SECONDS:-60}
WARMUP=${SOAK_WARMUP:-60}
FPS=${SOAK_FPS:-10}
THREADS=${SOAK_THREADS:-1}
MAX_RSS_KB=${SOAK_MAX_RSS_KB:-1024}
[ -x "$BIN" ] || { echo "soak: no spotter binary at $BIN (make build)" >&2; exit 2; }

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

cat > "$work/soak.toml" <<TOML
[source]
uri = "models/samples"
loop = true
[pipeline]
fps = $FPS
threads = $THREADS
TOML
# Frames processed so far: JSON lines on stdout (stdout sink), or per-frame detection messages
# the broker received (its log; the stdout sink is only used when no other sink is).
frames_total() {
  if [ -n "$mosq" ]; then grep -c "/detections'" "$work/mosquitto.log" || true
  else wc -l < "$work/stdout"; fi
}

mosq=$(command -v mosquitto || ls /usr/sbin/mosquitto 2>/dev/null || true)
if [ -n "$mosq" ]; then
  port=$(free_port)
  printf 'listener %s 127.0.0.1\nallow_anonymous true\nuser root\nlog_dest file %s\nlog_type all\n' \
    "$port" "$work/mosquitto.log" > "$work/mosquitto.conf"
  "$mosq" -c "$work/mosquitto.conf" >/dev/null 2>&1 &
  pids+=($!)
  printf '[mqtt]\nurl = "mqtt://127.0.0.1:%s"\nclient_id = "spotter-soak"\nqos = 1\n' "$port" >> "$work/soak.toml"
  sinks="mqtt (mosquitto on port $port)"
else
  sinks="stdout (no mosquitto: MQTT not soaked)"
fi

"$BIN" run --config "$work/soak.toml" >"$work/stdout" 2>"$work/spotter.log" &
pid=$!
pids+=("$pid")

sample() {
  kill -0 "$pid" 2>/dev/null || { echo "soak: spotter exited early:" >&2; tail -20 "$work/spotter.log" >&2; exit 1; }
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
  fds=$(ls "/proc/$pid/fd" | wc -l)
  echo "$rss $fds $(frames_total)"
}

echo "soak: $BIN, ${SECONDS_RUN}s after ${WARMUP}s warm-up, ${FPS} fps, sinks: $sinks"
sleep "$WARMUP"
read -r rss0 fds0 frames0 < <(sample)
echo "soak: start  RSS ${rss0} kB, ${fds0} fds, ${frames0} frames"
sleep "$SECONDS_RUN"
read -r rss1 fds1 frames1 < <(sample)
echo "soak: end    RSS ${rss1} kB, ${fds1} fds, ${frames1} frames"
kill -TERM "$pid"
wait "$pid" || true
growth=$((rss1 - rss0))
echo "soak: RSS growth ${growth} kB (limit ${MAX_RSS_KB}), fd growth $((fds1 - fds0))"
status=0
if [ "$frames1" = "?" ] || [ "$frames1" = "$frames0" ]; then echo "soak: FAIL: no frames processed during the soak" >&2; status=1; fi
if [ "$growth" -gt "$MAX_RSS_KB" ]; then echo "soak: FAIL: RSS grew by ${growth} kB" >&2; status=1; fi
if [ "$fds1" -gt "$fds0" ]; then echo "soak: FAIL: open fds grew from $fds0 to $fds1" >&2; status=1; fi
if grep -qi 'panicked' "$work/spotter.log"; then echo "soak: FAIL: spotter panicked:" >&2; grep -i -A5 panicked "$work/spotter.log" >&2; status=1; fi
[ "$status" = 0 ] && echo "soak: ok"
exit "$status"
