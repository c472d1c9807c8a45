#!/usr/bin/env bash
# Replications per second through NATS JetStream (`twin experiment --nats` with 1 and 2
# local `twin worker` processes, one job each) against the local run (`--jobs 1`,
# `--jobs 2`), on two experiments:
#   - short: the training line, 1 simulated day per replication, 3 variants x R
#     replications: almost all queue overhead, so it gives the overhead per replication;
#   - demo:  scenes/experiments/demo-complex.ron (7 variants x 10 replications of the
#     demo complex's week): the real per-replication cost.
# Then the paper estimate for a 100 x 100 demo-complex experiment on 50 workers.
# Needs nats-server (scripts/system-deps.sh --nats). PROFILE=debug skips the release build.
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${PROFILE:-release}
short_reps=${SHORT_REPS:-200}
if [ "$profile" = release ]; then
  cargo build --release --locked -p twin-cli
else
  cargo build --locked -p twin-cli
fi
twin=target/$profile/twin

dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
nats-server -js -a 127.0.0.1 -p "$port" -sd "$dir/store" >"$dir/nats.log" 2>&1 &
nats_pid=$!
workers=()
cleanup() {
  for w in "${workers[@]}"; do kill "$w" 2>/dev/null || true; done
  kill "$nats_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
url="nats://127.0.0.1:$port"
for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done

cat >"$dir/short.ron" <<EOF
Experiment(
    name: "short",
    scene: "$PWD/scenes/training-line.ron",
    replications: $short_reps,
    seed: 3,
    run: (until: "1d", warmup: "2h"),
    kpis: ["complex.throughput_per_hour", "complex.lead_time_mean_s"],
    variants: [(name: "baseline"), (name: "mill buffer 10", edits: [SetBuffer(station: "mill", capacity: 10)])],
    sweeps: [(axes: [(param: Servers("mill"), values: [2])])],
)
EOF

# Seconds of one run, from the "N replications in S s" line twin prints.
seconds() { sed -n 's/.* replications in \([0-9.]*\)s.*/\1/p' "$1"; }

run_local() { # file jobs
  "$twin" experiment "$1" --jobs "$2" --out "$dir/out-local" >/dev/null 2>"$dir/err"
  seconds "$dir/err"
}
run_nats() { # file workers
  workers=()
  for i in $(seq "$2"); do
    "$twin" worker --nats "$url" --jobs 1 2>"$dir/worker$i.log" &
    workers+=($!)
  done
  sleep 1
  "$twin" experiment "$1" --nats "$url" --out "$dir/out-nats" >/dev/null 2>"$dir/err"
  for w in "${workers[@]}"; do kill "$w"; wait "$w" 2>/dev/null || true; done
  workers=()
  cmp -s "$dir/out-local/results.json" "$dir/out-nats/results.json" || { echo "results differ!" >&2; exit 1; }
  seconds "$dir/err"
}

echo "profile $profile, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for exp in short demo; do
  if [ "$exp" = short ]; then file=$dir/short.ron; n=$((3 * short_reps)); else file=scenes/experiments/demo-complex.ron; n=70; fi
  l1=$(run_local "$file" 1); l2=$(run_local "$file" 2)
  n1=$(run_nats "$file" 1); n2=$(run_nats "$file" 2)
  python3 - "$exp" "$n" "$l1" "$l2" "$n1" "$n2" <<'EOF'
import sys
exp, n, l1, l2, n1, n2 = sys.argv[1], int(sys.argv[2]), *map(float, sys.argv[3:])
print(f"{exp}: {n} replications")
for label, s in [("local --jobs 1", l1), ("local --jobs 2", l2), ("nats, 1 worker", n1), ("nats, 2 workers", n2)]:
    print(f"  {label:16} {s:7.2f} s  {n / s:8.1f} replications/s  {1000 * s / n:7.2f} ms each")
print(f"  queue overhead per replication (1 worker vs --jobs 1): {1000 * (n1 - l1) / n:.2f} ms")
if exp == "demo":
    per = l1 / n
    total = 100 * 100
    print(f"  100 x 100 demo-complex on 50 workers (paper): {total} x {per:.3f} s = {total * per / 3600:.2f} CPU-hours;"
          f" {total * per / 50 / 60:.1f} min on 50 workers, + queue overhead per replication (measured above)"
          f" divided over 50, + one bundle upload")
EOF
done
