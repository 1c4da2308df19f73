#!/usr/bin/env bash
# Run the test suite against an AddressSanitizer build of uvffi._uv.
#
#   tools/asan-tests.sh [python] [pytest args...]   (default args: tests)
#
# The ASAN build goes into a private copy of the tree under $TMPDIR, never
# into src/uvffi/ of this checkout: other processes load the .so there, and an
# ASAN-instrumented module only loads when libasan is preloaded.
#
# Why the environment below:
# - LD_PRELOAD=libasan: the interpreter itself is not instrumented, so the
#   ASAN runtime must be the first library loaded (ASAN refuses otherwise).
# - PYTHONMALLOC=malloc: CPython's pymalloc carves objects out of its own
#   arenas, which hides overflows and use-after-free of Python memory from
#   ASAN; with plain malloc every object is a separate, checked allocation.
#   (Ignored by PyPy, whose GC allocates in its own nursery.)
# - ASAN_OPTIONS=detect_leaks=0: the interpreter deliberately never frees
#   much of its memory at exit (interned strings, static types, module
#   state), so LeakSanitizer would report thousands of "leaks" that are not
#   ours.  Leaks of uvffi's own objects are checked by the reliability tests
#   instead (handle counts, fds and RSS before/after).
# - allocator_may_return_null=1: tests that ask for absurd sizes must get
#   MemoryError, as without ASAN, not an ASAN abort.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
py=${1:-python3}
[ $# -gt 0 ] && shift
work=$(mktemp -d "${TMPDIR:-/tmp}/uvffi-asan.XXXXXX")
trap 'rm -rf "$work"' EXIT
# A copy of the sources without build products (built .so files, build/).
tar -C "$top" --exclude=./build --exclude='./src/uvffi/*.so' \
    --exclude='./.venv*' --exclude=./vendor/libuv/.git -cf - . | tar -C "$work" -xf -
UVFFI_CMAKE_ARGS=-DUVFFI_ASAN=ON "$work/tools/devbuild.sh" "$py"
libasan=$(${CC:-cc} -print-file-name=libasan.so)
if [ ! -e "$libasan" ]; then
  echo "asan-tests: libasan.so not found (install gcc's libasan)" >&2
  exit 2
fi
libasan=$(readlink -f "$libasan")
echo "asan-tests: $("$py" -c 'import sys; print(sys.implementation.name, sys.version.split()[0])') with $libasan" >&2
cd "$work"
[ $# -gt 0 ] || set -- tests
status=0
env LD_PRELOAD="$libasan" PYTHONMALLOC=malloc PYTHONPATH="$work/src" \
    ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:abort_on_error=0:halt_on_error=1:print_summary=1" \
    "$py" -m pytest -p no:cacheprovider -q "$@" || status=$?
exit $status
