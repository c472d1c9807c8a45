#!/usr/bin/env bash
# Runs every test of the workspace: unit, validation, CLI, end-to-end over gRPC and the
# render test of the Bevy client under Xvfb. Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/system-deps.sh --headless --prometheus --mqtt --nats --yaml

# One build of everything (benchmarks and examples included, so they cannot rot), then
# the tests reuse it.
cargo build --locked --workspace --all-targets
cargo test --locked --workspace
