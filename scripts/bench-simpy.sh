#!/usr/bin/env bash
# Times `twin run` on M/M/1 against SimPy 4.1.2 on the same model, in the same run, and
# prints the ratio (see scripts/bench_simpy.py). SimPy lives in target/simpy-venv.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/simpy-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q simpy==4.1.2
fi
cargo build --release --locked -p twin-cli
"$venv/bin/python" scripts/bench_simpy.py target/release/twin "$@"
