#!/usr/bin/env bash
# The README's example command: set up (libuv, venv, build) and run an
# example on uvffi.  Usage: tools/run-example.sh [examples/NAME.py [ARGS...]]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
example=${1:-examples/tcp_echo.py}
[ $# -gt 0 ] && shift
[ -f "$top/$example" ] || example=examples/hello_world.py
vpy=$("$top/tools/bootstrap.sh" python3 "$top/.venv" | tail -n 1)
cd "$top"
exec "$vpy" "$example" "$@"
