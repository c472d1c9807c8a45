#!/usr/bin/env bash
# Installs the Debian packages the tests and the Bevy client need. Always: the client's
# run-time libraries (X11 client libraries, the Vulkan loader and Mesa's software Vulkan
# driver). With --headless: Xvfb for rendering without a display. With --prometheus:
# Prometheus and promtool (Debian's `prometheus` package), which the metrics test runs
# as a real scraper and rule checker. With --mqtt: the mosquitto broker and its command-
# line clients, for the Sparkplug B plant and ingest tests. With --nats: Debian's
# `nats-server` (2.9), which the distributed-experiment tests start as a single node and
# as a three-node JetStream cluster on loopback. With --yaml: PyYAML (`python3-yaml`), with
# which tests/deploy.rs parses the Kubernetes manifests. Packages already present are
# left alone.
set -euo pipefail

packages=(libvulkan1 mesa-vulkan-drivers libx11-6 libxcursor1 libxi6 libxrandr2 libxkbcommon-x11-0)
for flag in "$@"; do
  case "$flag" in
    --headless) packages+=(xvfb xauth) ;;
    --prometheus) packages+=(prometheus) ;;
    --mqtt) packages+=(mosquitto mosquitto-clients) ;;
    --nats) packages+=(nats-server) ;;
    --yaml) packages+=(python3-yaml) ;;
    *) echo "system-deps: unknown flag $flag (known: --headless, --prometheus, --mqtt, --nats, --yaml)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null; then
  echo "system-deps: not a Debian-like system; install these yourself: ${missing[*]}" >&2
  exit 1
fi
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
echo "system-deps: installing ${missing[*]}" >&2
"${sudo[@]}" apt-get update -qq
# The prometheus and mosquitto packages would start their own services where an init
# system runs; the tests start their own instances on free ports and do not need them.
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
