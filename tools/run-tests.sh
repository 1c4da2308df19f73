#!/usr/bin/env bash
# The README's test command: set up (libuv, venvs, build) and run the whole
# test suite on CPython and, unless UVFFI_SKIP_PYPY=1, on PyPy 3.
# Extra arguments go to pytest.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
status=0
pythons=("${UVFFI_PYTHON:-python3}")
[ "${UVFFI_SKIP_PYPY:-0}" = 1 ] || pythons+=(pypy3)
for py in "${pythons[@]}"; do
  name=$(basename "$py")
  echo "==== uvffi tests on $name ===="
  vpy=$("$top/tools/bootstrap.sh" "$py" "$top/.venv-$name" test | tail -n 1)
  # Run against the installed package, not the source tree.
  "$vpy" -m pytest -p no:cacheprovider -q "$@" tests || status=$?
done
exit $status
