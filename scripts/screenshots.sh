#!/usr/bin/env bash
# Redoes the README's client screenshots at 1920x1080 the way the render test makes
# pictures: the real `twin serve` and the real client under Xvfb with Mesa's software
# Vulkan. Needs xvfb-run and mesa-vulkan-drivers (scripts/system-deps.sh installs them).
#
#   scripts/screenshots.sh [--release] [--wait SECONDS]
#
# --release builds optimised binaries (faster client, much longer build); --wait is how
# long the demo complex runs at x1800 before the pictures (default 80 s: about 40
# simulated hours).
set -euo pipefail
cd "$(dirname "$0")/.."

profile=debug
wait_s=80
while [ $# -gt 0 ]; do
  case "$1" in
    --release) profile=release ;;
    --wait) wait_s="$2"; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
flags=(--locked --workspace --bin twin --bin twin-client)
[ "$profile" = release ] && flags+=(--release)
cargo build "${flags[@]}"
bin="target/$profile"
out=docs/img
tmp="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  # The servers write a last checkpoint on SIGTERM: let them finish before the folder goes.
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

shot() { # shot SERVER_URL CLIENT_ARGS...
  local url="$1"; shift
  xvfb-run -a -s "-screen 0 1920x1080x24" "$bin/twin-client" --server "$url" \
    --window 1920x1080 --frames 30 --connect-timeout-s 120 "$@"
}

# The demo complex, running: normal view and presentation mode, then heat-map mode.
"$bin/twin" serve scenes/demo-complex.ron --addr 127.0.0.1:50071 --speed 1800 --log warn &
pids+=($!)
sleep "$wait_s"
shot http://127.0.0.1:50071 --screenshot "$out/client-demo-complex.png" \
  --screenshot-presentation "$out/client-presentation.png"
shot http://127.0.0.1:50071 --heat-map --screenshot "$out/client-heat-map.png"

# The training line with a viewer's token and a station picked: greyed controls, and the
# station's card with "Break this station" greyed and the reason under it.
cat > "$tmp/auth.ron" <<'RON'
Auth(tokens: [(subject: "student", role: Viewer, token: "student-token-for-screenshots")])
RON
"$bin/twin" serve scenes/training-line.ron --addr 127.0.0.1:50072 --speed 60 --log warn \
  --auth "$tmp/auth.ron" --data "$tmp/data" &
pids+=($!)
sleep 5
TWIN_TOKEN=student-token-for-screenshots shot http://127.0.0.1:50072 \
  --screenshot "$out/client-viewer-role.png" --select mill
echo "screenshots written to $out"
