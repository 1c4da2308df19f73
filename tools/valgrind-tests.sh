#!/usr/bin/env bash
# Run a subset of the test suite under valgrind (memcheck).
#
#   tools/valgrind-tests.sh [python] [pytest args...]
#
# Default subset: the loop core, TCP, UDP and the reliability suite's
# fault and bad-input tests -- the code paths where uvffi hands memory to
# libuv.  Under memcheck everything runs ~30x slower, hence a subset; pass
# your own pytest arguments to choose others.
#
# - PYTHONMALLOC=malloc: pymalloc's arenas hide overflows inside them and
#   make memcheck report its deliberate reads of uninitialised headers;
#   with plain malloc every object is a checked allocation.  (PyPy ignores
#   it; its GC allocates in its own nursery.)
# - --leak-check=no: the interpreter keeps much of its memory until exit on
#   purpose; uvffi's own leaks are what the reliability suite measures.
# - The verdict: memcheck reports about 2 000 errors in 40 contexts for a
#   one-line test of a CPython 3.11 not built --with-valgrind (small-int
#   and frame code reading digits it never wrote: _PyLong_FromByteArray,
#   _PyFrame_Clear), uvffi loaded or not.  Rather than suppress those one by
#   one, the script fails only on errors whose stack passes through uvffi's
#   extension (_uv*.so, the shim's uvffi_* functions) or libuv (uv_*, uv__*),
#   and prints them; the total is shown for reference.
# The exit status is 99 if memcheck reported an error in uvffi or libuv.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
py=${1:-python3}
[ $# -gt 0 ] && shift
if [ $# -eq 0 ]; then
  set -- tests/test_loop_core.py tests/test_tcp.py tests/test_udp_engine.py \
         tests/test_reliability_faults.py \
         "tests/test_reliability_badinput.py::test_random_operation_sequences_end_as_on_asyncio"
fi
command -v valgrind >/dev/null || { echo "valgrind-tests: install valgrind" >&2; exit 2; }
pyexe=$("$py" -c 'import sys; print(sys.executable)')
log=${UVFFI_VALGRIND_LOG:-$(mktemp "${TMPDIR:-/tmp}/uvffi-valgrind.XXXXXX.log")}
echo "valgrind-tests: $pyexe, log in $log" >&2
cd "$top"
status=0
env PYTHONMALLOC=malloc PYTHONPATH="$top/src${PYTHONPATH:+:$PYTHONPATH}" \
    UVFFI_UNDER_VALGRIND=1 \
    valgrind --tool=memcheck --leak-check=no \
      --track-origins=no --trace-children=no --num-callers=30 \
      --log-file="$log" \
      "$pyexe" -m pytest -p no:cacheprovider -q -o faulthandler_timeout=0 "$@" || status=$?
grep -E "ERROR SUMMARY" "$log" | tail -n 1 >&2 || true
# error blocks (from one "==pid== <what>" line to the blank line after its
# stack) that mention uvffi or libuv
ours=$(awk '
  /^==[0-9]+== $/ { if (blk != "" && hit) { print blk; n++ } blk = ""; hit = 0; next }
  /^==[0-9]+== / { blk = blk $0 "\n";
                   if ($0 ~ /(_uv\.|uvffi_|[ (]uv_[a-z_]+|uv__|libuv)/) hit = 1 }
  END { if (blk != "" && hit) print blk }' "$log")
if [ -n "$ours" ]; then
  printf '%b\n' "$ours" >&2
  echo "valgrind-tests: memcheck errors in uvffi or libuv (see above)" >&2
  exit 99
fi
echo "valgrind-tests: no memcheck error in uvffi or libuv" >&2
exit $status
