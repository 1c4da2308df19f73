#!/usr/bin/env bash
# The libuv fallback, proved end to end (CI runs it after the test suite):
#   1. a libuv source tree: Debian's (`apt-get source libuv1`, fetched from
#      the package archive, so no network beyond it), or UVFFI_LIBUV_SOURCE
#      when set;
#   2. `pip wheel .` with UVFFI_LIBUV=VENDOR UVFFI_LIBUV_SOURCE=that tree:
#      the self-contained wheel of docs/install.md;
#   3. the wheel's _uv*.so links no libuv.so and exports no uv_* symbol;
#   4. the wheel installed into a fresh venv: `python -m uvffi` says
#      "(vendored)", examples/echo_client.py runs, and the tests of the
#      libuv primitives pass.
# Usage: tools/vendored-build-check.sh [PYTHON]   (default python3)
# Skips (exit 0, saying why) without apt-get or root, unless
# UVFFI_LIBUV_SOURCE names a tree.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
py=${1:-python3}
start=$SECONDS
say() { echo "vendored-build-check: $*"; }

if [ -z "${UVFFI_LIBUV_SOURCE:-}" ]; then
  if ! command -v apt-get >/dev/null; then
    say "SKIP: no apt-get to fetch libuv's source (set UVFFI_LIBUV_SOURCE=/path/to/libuv)"
    exit 0
  fi
  if [ "$(id -u)" != 0 ]; then
    say "SKIP: not root, apt-get cannot fetch libuv's source (set UVFFI_LIBUV_SOURCE=/path/to/libuv)"
    exit 0
  fi
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/uvffi-vendored.XXXXXX")
trap 'rm -rf "$work"' EXIT
unset PYTHONPATH CMAKE_ARGS

if [ -z "${UVFFI_LIBUV_SOURCE:-}" ]; then
  # The machine's Debian sources as deb-src entries, in an apt state of our
  # own: the system's apt configuration and package lists stay untouched.
  apt_dir=$work/apt
  mkdir -p "$apt_dir/parts" "$apt_dir/lists/partial" "$apt_dir/cache" "$work/src"
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -e "$f" ] && sed 's/^Types:.*/Types: deb-src/' "$f" >"$apt_dir/parts/${f##*/}"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -e "$f" ] && sed -n 's/^deb /deb-src /p' "$f" >"$apt_dir/parts/${f##*/}"
  done
  # (downloads as root: apt's own _apt user cannot write into our mktemp dir)
  apt_opts=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$apt_dir/parts"
            -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
            -o APT::Sandbox::User=root)
  say "fetching libuv's source (apt-get source libuv1)"
  apt-get -qq "${apt_opts[@]}" update
  (cd "$work/src" && apt-get -qq "${apt_opts[@]}" source --download-only libuv1)
  origs=("$work"/src/libuv1_*.orig.tar.*)
  [ -f "${origs[0]}" ] || { say "FAIL: apt-get source libuv1 fetched no tarball"; exit 1; }
  # upstream's tree as released (Debian's patches are not applied: the
  # vendored build takes a libuv tree as libuv ships it)
  mkdir "$work/libuv"
  tar -xf "${origs[0]}" -C "$work/libuv" --strip-components=1
  export UVFFI_LIBUV_SOURCE=$work/libuv
fi
say "libuv source: $UVFFI_LIBUV_SOURCE ($((SECONDS - start)) s)"

"$py" -m venv "$work/venv"
vpy=$work/venv/bin/python
"$vpy" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
"$vpy" -m pip install -q pytest pytest-timeout

say "building the wheel (UVFFI_LIBUV=VENDOR)"
UVFFI_LIBUV=VENDOR "$vpy" -m pip wheel -q --no-deps -w "$work/wheels" "$top"
wheel=$(ls "$work"/wheels/uvffi-*.whl)
say "built $(basename "$wheel") ($((SECONDS - start)) s)"

"$vpy" -m pip install -q "$wheel"
ext=$("$vpy" -c 'import uvffi._uv as m; print(m.__file__)')
case "$ext" in
  "$work"/venv/*) ;;
  *) say "FAIL: uvffi._uv imported from $ext, not from the fresh venv"; exit 1 ;;
esac
if ldd "$ext" | grep libuv; then
  say "FAIL: $ext links a shared libuv"; exit 1
fi
exported=$(nm -D --defined-only "$ext" | awk '$3 ~ /^uv_/ {print $3}' | head -n 5)
if [ -n "$exported" ]; then
  say "FAIL: $ext exports libuv's symbols: $exported"; exit 1
fi
say "$(basename "$ext"): no libuv.so in ldd, no uv_* exported"

# away from the checkout, so that nothing but the venv's uvffi can be found
cd "$work"
"$vpy" -m uvffi | tee "$work/self-check.txt"
grep -q '^libuv .*(vendored)$' "$work/self-check.txt" ||
  { say "FAIL: python -m uvffi does not report a vendored libuv"; exit 1; }
"$vpy" "$top/examples/echo_client.py" --count 200

# one test module per libuv primitive uvffi uses (about 30 s), run from the
# checkout, where their helpers live; src/ is not on sys.path there, so they
# import the venv's uvffi
cd "$top"
"$vpy" -m pytest -q -p no:cacheprovider tests/test_loop_core.py tests/test_timers.py \
  tests/test_tcp.py tests/test_udp.py tests/test_unix.py tests/test_subprocess.py \
  tests/test_signals.py tests/test_dns.py tests/test_module_self_check.py
say "PASS ($((SECONDS - start)) s)"
