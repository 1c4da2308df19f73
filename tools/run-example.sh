#!/usr/bin/env bash
# The README's example command: set up (libuv, venv, build) and run an
# example on uvffi.  Usage: tools/run-example.sh [examples/NAME.py [ARGS...]]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
# default: a TCP echo server and client on uvffi (starts its own server,
# makes 10 000 round trips, prints the rate, exits)
example=${1:-examples/echo_client.py}
[ $# -gt 0 ] && shift
vpy=$("$top/tools/bootstrap.sh" python3 "$top/.venv" | tail -n 1)
cd "$top"
exec "$vpy" "$example" "$@"
