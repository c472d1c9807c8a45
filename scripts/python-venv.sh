#!/usr/bin/env bash
# Creates (once) the Python virtual environment of the tests' independent Sparkplug B
# publisher (tests/python/sparkplug_publisher.py): paho-mqtt, protobuf and grpcio-tools
# (whose protoc compiles proto/sparkplug/sparkplug_b.proto at test time), from PyPI.
# Prints the venv's python on stdout. Usage: scripts/python-venv.sh [VENV_DIR]
# (default target/py-venv). Rerunning is cheap: a stamp file records the requirements.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${1:-$root/target/py-venv}"
requirements='paho-mqtt>=2.1,<3 protobuf>=5.28,<7 grpcio-tools>=1.66,<2'
stamp="$venv/.twin-requirements"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$requirements" ]; then
  python3 -m venv "$venv" >&2
  # shellcheck disable=SC2086
  "$venv/bin/pip" install --quiet --disable-pip-version-check $requirements >&2
  printf '%s' "$requirements" > "$stamp"
fi
echo "$venv/bin/python"
