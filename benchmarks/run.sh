#!/usr/bin/env bash
# One command for the whole benchmark suite: sets up CPython and PyPy
# environments (uvffi, uvloop where it installs, httptools, matplotlib), then
# runs asyncio, uvloop and uvffi side by side and writes the report.
#   bash benchmarks/run.sh [run.py options, e.g. --full --report benchmarks/RESULTS.md]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
command -v wrk >/dev/null || { [ "$(id -u)" = 0 ] && apt-get install -y -qq wrk >/dev/null; } || true
cpy=$("$top/tools/bootstrap.sh" python3 "$top/.venv-bench" | tail -n 1)
"$cpy" -m pip install -q uvloop httptools matplotlib >&2
pythons=(--python "$cpy")
if [ "${UVFFI_SKIP_PYPY:-0}" != 1 ]; then
  ppy=$("$top/tools/bootstrap.sh" pypy3 "$top/.venv-bench-pypy" | tail -n 1)
  "$ppy" -m pip install -q httptools >&2 || echo "httptools does not install on PyPy: no HTTP figures there" >&2
  pythons+=(--python "$ppy")
fi
# matplotlib lives in the CPython venv: run the driver there
exec "$cpy" "$top/benchmarks/run.py" "${pythons[@]}" "$@"
