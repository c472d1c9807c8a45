#!/usr/bin/env bash
# Runs the twin on the bundled demo complex: the gRPC server plus the 3D client when a
# display is available, otherwise a headless run that prints the KPI report.
#
# With --live: the live twin. Starts a mosquitto broker on a free loopback port,
# `twin plant` as the real plant (with the bundled drift file: one station 20% slower,
# which the twin is not told about), and `twin serve --mqtt` following it with a durable
# telemetry log; then the 3D client, or headless `twin watch`, which prints the ingest
# status, the live / stale sources and the deviation alarms every few seconds.
# Usage: scripts/demo.sh [--live] [SCENE]   (env: SPEED, default 60; MINUTES for the
# headless live demo, default 3)
set -euo pipefail
cd "$(dirname "$0")/.."

live=0
if [ "${1:-}" = "--live" ]; then
  live=1
  shift
fi
scene="${1:-scenes/demo-complex.ron}"
[ -f "$scene" ] || scene=scenes/training-line.ron
addr=127.0.0.1:50051
headless=0
[ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ] && headless=1

if [ "$live" = 0 ]; then
  if [ "$headless" = 1 ]; then
    echo "No display: running $scene headless for one simulated week and printing its report." >&2
    cargo run --locked --release -p twin-cli --bin twin -- run "$scene" --until 7d
    exit 0
  fi
  scripts/system-deps.sh
  cargo build --locked --release -p twin-cli -p twin-client
  target/release/twin serve "$scene" --addr "$addr" &
  server=$!
  trap 'kill $server 2>/dev/null || true' EXIT
  target/release/twin-client --server "http://$addr"
  exit 0
fi

speed="${SPEED:-60}"
drift=scenes/drift/demo-slow-station.ron
[ "$scene" = scenes/demo-complex.ron ] || drift=""
scripts/system-deps.sh --mqtt
if [ "$headless" = 1 ]; then
  cargo build --locked --release -p twin-cli
else
  cargo build --locked --release -p twin-cli -p twin-client
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# QoS 1 to the twin: many messages in flight (the twin acknowledges after each group
# commit) and a deep queue (mosquitto drops QoS 1 messages beyond max_queued_messages).
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_inflight_messages 1000\nmax_queued_messages 1000000\n' \
  "$port" >"$work/mosquitto.conf"
mosquitto -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
mqtt="mqtt://127.0.0.1:$port"
echo "broker: mosquitto at $mqtt" >&2

target/release/twin serve "$scene" --addr "$addr" --speed "$speed" --mqtt "$mqtt" --data "$work/data" \
  --log warn &
pids+=($!)
sleep 2
plant_args=(plant "$scene" --mqtt "$mqtt" --speed "$speed" --log warn)
[ -n "$drift" ] && plant_args+=(--drift "$drift")
target/release/twin "${plant_args[@]}" &
pids+=($!)
echo "plant: $scene at ${speed}x${drift:+ with drift $drift}; twin: http://$addr" >&2

if [ "$headless" = 1 ]; then
  minutes="${MINUTES:-3}"
  target/release/twin watch --server "http://$addr" --every 10s --count $((minutes * 6))
else
  target/release/twin-client --server "http://$addr"
fi
