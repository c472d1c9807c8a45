#!/usr/bin/env bash
# Long-run memory check of the live server (issue 10's target: `twin serve` on the demo
# complex at --speed max stays within 50 MB of its starting size for 10 minutes).
# Starts the release server on a free port, samples its resident set size every
# INTERVAL seconds for MINUTES minutes, and prints the samples, the simulated time
# reached and the growth. Usage: scripts/serve-memory.sh [MINUTES] [SCENE] [INTERVAL]
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-10}
scene=${2:-scenes/demo-complex.ron}
interval=${3:-10}

cargo build --locked --release -p twin-cli >&2
log=$(mktemp)
target/release/twin serve "$scene" --addr 127.0.0.1:0 --speed max --log warn >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -f "$log"' EXIT
sleep 2
rss() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
start=$(rss)
peak=$start
printf '%8s %10s\n' "wall_s" "rss_kib"
printf '%8d %10d\n' 0 "$start"
end=$((minutes * 60))
for ((t = interval; t <= end; t += interval)); do
  sleep "$interval"
  kill -0 "$pid" 2>/dev/null || { echo "server exited early:" >&2; cat "$log" >&2; exit 1; }
  now=$(rss)
  ((now > peak)) && peak=$now
  printf '%8d %10d\n' "$t" "$now"
done
last=$(rss)
echo "start ${start} KiB, end ${last} KiB, peak ${peak} KiB, growth $(((last - start) / 1024)) MiB (peak $(((peak - start) / 1024)) MiB above start) over ${minutes} min"
