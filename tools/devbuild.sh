#!/usr/bin/env bash
# Developer build: compile uvffi._uv into src/uvffi/ for the given Python
# (default: python3), so that `PYTHONPATH=src python -m pytest` runs the tree
# as it is.  Serialised with flock so that parallel callers do not collide.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
py=${1:-python3}
tag=$("$py" -c 'import sys; print(sys.implementation.cache_tag)')
bdir="$top/build/dev-$tag"
mkdir -p "$top/build"
exec 9>"$top/build/.devbuild.lock"
flock 9
pyexe=$("$py" -c 'import sys; print(sys.executable)')
cmake -S "$top" -B "$bdir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DPython_EXECUTABLE="$pyexe" ${UVFFI_CMAKE_ARGS:-} >/dev/null
cmake --build "$bdir" >/dev/null
# Install by rename, never by overwriting: a running process has the old
# .so mapped, and rewriting that inode in place crashes it (seen: SIGSEGV in
# uv_async_send of a test running while another build copied over it).
# (_uv and _capsule, the PyCapsule side of embedding: see CMakeLists.txt)
for so in "$bdir"/_*.so; do
  name=$(basename "$so")
  cp "$so" "$top/src/uvffi/.$name.tmp"
  mv -f "$top/src/uvffi/.$name.tmp" "$top/src/uvffi/$name"
done
