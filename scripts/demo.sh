#!/usr/bin/env bash
# Runs the twin on the bundled demo complex: the gRPC server plus the 3D client when a
# display is available, otherwise a headless run that prints the KPI report.
# Usage: scripts/demo.sh [SCENE]
set -euo pipefail
cd "$(dirname "$0")/.."

scene="${1:-scenes/demo-complex.ron}"
[ -f "$scene" ] || scene=scenes/training-line.ron
addr=127.0.0.1:50051

if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
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
