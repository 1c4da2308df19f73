#!/usr/bin/env bash
# The README's test command: set up (libuv, venvs, build) and run the whole
# test suite on CPython and, unless UVFFI_SKIP_PYPY=1, on PyPy 3.
# Extra arguments go to pytest (UVFFI_EXTRA_PYTHONS: more interpreters,
# see below).  The venvs get the `test` and `integration`
# extras (uvicorn, aiohttp, anyio, pytest-asyncio, build, mypy), so the
# tests with real libraries run too; UVFFI_EXTRAS=test skips installing them
# (those tests then skip, saying why).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
status=0
pythons=("${UVFFI_PYTHON:-python3}")
[ "${UVFFI_SKIP_PYPY:-0}" = 1 ] || pythons+=(pypy3)
# UVFFI_EXTRA_PYTHONS="python3.13 python3.12": more interpreters, each in a
# venv of its own (some bugs show only on 3.12+, where Server.wait_closed()
# waits for the connections)
read -r -a extra <<< "${UVFFI_EXTRA_PYTHONS:-}"
pythons+=(${extra[@]+"${extra[@]}"})
for py in "${pythons[@]}"; do
  name=$(basename "$py")
  echo "==== uvffi tests on $name ===="
  # aiohttp's C speedups are CPython-only: pure Python on PyPy
  case "$name" in *pypy*) export AIOHTTP_NO_EXTENSIONS=1 ;; esac
  vpy=$("$top/tools/bootstrap.sh" "$py" "$top/.venv-$name" \
        "${UVFFI_EXTRAS:-test,integration}" | tail -n 1)
  # Run against the installed package, not the source tree.
  "$vpy" -m pytest -p no:cacheprovider -q "$@" tests || status=$?
done
exit $status
