#!/usr/bin/env bash
# Installs the Debian packages the Bevy client needs at run time (X11 client libraries,
# the Vulkan loader and Mesa's software Vulkan driver) and, with --headless, Xvfb for
# rendering without a display. Packages already present are left alone.
set -euo pipefail

packages=(libvulkan1 mesa-vulkan-drivers libx11-6 libxcursor1 libxi6 libxrandr2 libxkbcommon-x11-0)
if [ "${1:-}" = "--headless" ]; then
  packages+=(xvfb xauth)
fi

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
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
