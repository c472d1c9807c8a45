#!/usr/bin/env bash
# The programme demo: the twenty complexes of scenes/programme/ on one machine. Starts a
# NATS server (Debian's nats-server, JetStream on, free loopback port), one
# `twin serve --nats --complex ID` per complex (real time unless SPEED says otherwise,
# ports 50101-50120 or free ones), and one `twin worker`; then prints the programme table
# (`twin complexes`: value-added rate against 30%, labour productivity against each
# complex's baseline +40%, bottleneck, alarms, age of the report) every EVERY seconds for
# MINUTES minutes, and at the end the servers' resident memory and CPU time.
#
# Usage: scripts/programme.sh            (env: SPEED, default 1 = real time; MINUTES,
#        default 3; EVERY, default 30; PROFILE=debug skips the release build; TWIN=PATH
#        uses that binary and builds nothing)
# With SPEED=1 the complexes' first figures come after their 30-minute warm-up (the
# table says "warming up" until then); SPEED=60 shows figures within a minute.
set -euo pipefail
cd "$(dirname "$0")/.."

speed="${SPEED:-1}"
minutes="${MINUTES:-3}"
every="${EVERY:-30}"
profile="${PROFILE:-release}"

scripts/system-deps.sh --nats >/dev/null
if [ -n "${TWIN:-}" ]; then
  twin="$TWIN"
elif [ "$profile" = release ]; then
  cargo build --locked --release -p twin-cli --bin twin
  twin=target/release/twin
else
  cargo build --locked -p twin-cli --bin twin
  twin=target/debug/twin
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "programme: nothing listens on port $1" >&2
  return 1
}

port=$(free_port)
/usr/sbin/nats-server -a 127.0.0.1 -p "$port" -js -sd "$work/nats" >"$work/nats.log" 2>&1 &
pids+=($!)
wait_port "$port"
nats="nats://127.0.0.1:$port"
echo "programme: NATS at $nats" >&2

servers=()
for scene in scenes/programme/c*.ron; do
  id=$(basename "$scene" .ron)
  "$twin" serve "$scene" --addr 127.0.0.1:0 --speed "$speed" --nats "$nats" --complex "$id" \
    --log warn >"$work/$id.out" 2>"$work/$id.log" &
  pids+=($!)
  servers+=($!)
done
"$twin" worker --nats "$nats" --jobs 1 --log warn >/dev/null 2>"$work/worker.log" &
pids+=($!)
echo "programme: ${#servers[@]} complexes at ${speed}x and one worker started" >&2

sleep 2
end=$((SECONDS + minutes * 60))
while :; do
  echo
  date -u '+%H:%M:%S UTC'
  "$twin" complexes --nats "$nats" --wait 1s || true
  [ "$SECONDS" -ge "$end" ] && break
  sleep "$every"
done

# What the twenty servers cost: resident memory and CPU time (user + system) per server.
echo
python3 - "${servers[@]}" <<'EOF'
import os, sys
tick = os.sysconf("SC_CLK_TCK")
uptime = float(open("/proc/uptime").read().split()[0])
rss, pss, cpu, share = [], [], [], []
for pid in sys.argv[1:]:
    try:
        with open(f"/proc/{pid}/status") as f:
            rss.append(next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024)
        # Proportional set size: shared pages (the binary's code) split between sharers.
        with open(f"/proc/{pid}/smaps_rollup") as f:
            pss.append(next(int(l.split()[1]) for l in f if l.startswith("Pss:")) / 1024)
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        used = (int(fields[11]) + int(fields[12])) / tick
        cpu.append(used)
        share.append(used / max(1e-9, uptime - int(fields[19]) / tick))
    except (FileNotFoundError, StopIteration):
        print(f"server {pid} is gone")
if rss:
    print(f"{len(rss)} servers: resident memory {min(rss):.1f}-{max(rss):.1f} MiB each "
          f"(proportional, shared code split: {sum(pss):.0f} MiB in all); "
          f"CPU {100 * min(share):.2f}-{100 * max(share):.2f}% of a core each, {100 * sum(share):.1f}% in all "
          f"({sum(cpu):.1f} s of CPU)")
EOF
