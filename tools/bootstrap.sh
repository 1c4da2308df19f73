#!/usr/bin/env bash
# Set up everything uvffi needs on a fresh Debian/Ubuntu machine that has
# only Python and a C compiler:
#   - libuv's development files (apt-get when root, else the command to run),
#   - a virtual environment per interpreter, with uvffi built and installed.
# Usage: tools/bootstrap.sh PYTHON VENV_DIR [EXTRAS]
# Prints the venv's python on its last line.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
py=${1:-python3}
venv=${2:-$top/.venv}
extras=${3:-}

# What CMake can build on: a libuv source tree (UVFFI_LIBUV_SOURCE, or the
# vendor/libuv submodule when fetched: a fresh clone leaves it empty), or,
# unless UVFFI_LIBUV=VENDOR, the system's libuv >= 1.44 seen by pkg-config.
have_libuv() {
  [ -f "${UVFFI_LIBUV_SOURCE:-$top/vendor/libuv}/CMakeLists.txt" ] && return 0
  [ "${UVFFI_LIBUV:-AUTO}" != VENDOR ] && command -v pkg-config >/dev/null &&
    pkg-config --atleast-version=1.44 libuv 2>/dev/null
}

apt_install() {
  # apt-get when we can; otherwise say exactly what to run.
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    if [ -z "${UVFFI_APT_UPDATED:-}" ]; then
      apt-get update -qq >&2 || true
      export UVFFI_APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
  else
    echo "uvffi: missing system packages. Run:" >&2
    echo "  sudo apt-get install -y $*" >&2
    echo "(Fedora: sudo dnf install libuv-devel pkgconf-pkg-config; macOS: brew install libuv pkg-config)" >&2
    exit 1
  fi
}

if ! have_libuv; then
  apt_install libuv1-dev pkg-config
fi

case "$py" in
  *pypy*)
    if ! command -v "$py" >/dev/null; then apt_install pypy3 pypy3-dev pypy3-venv; fi
    ;;
esac

if [ ! -x "$venv/bin/python" ]; then
  "$py" -m venv "$venv" >&2 || { apt_install python3-venv; "$py" -m venv "$venv" >&2; }
fi
# The venv is reused as it is when nothing that goes into the build changed
# since it was installed: the package sources, the build files, the build's
# environment variables and the extras (a rebuild takes ~20 s, an example 5).
fingerprint() {
  {
    echo "extras=$extras libuv=${UVFFI_LIBUV:-} source=${UVFFI_LIBUV_SOURCE:-}" \
         "include=${UVFFI_LIBUV_INCLUDE:-} asan=${UVFFI_ASAN:-}"
    cd "$top" && find src cmake CMakeLists.txt pyproject.toml -type f \
      ! -name '*.so' ! -name '*.pyd' ! -name '*.pyc' -print 2>/dev/null |
      LC_ALL=C sort | xargs sha256sum
  } | sha256sum | cut -d' ' -f1
}
stamp="$venv/.uvffi-build-stamp"
want=$(fingerprint)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] &&
   "$venv/bin/python" -c 'import uvffi' 2>/dev/null; then
  echo "uvffi: $venv is up to date with the tree (not rebuilt)" >&2
  echo "$venv/bin/python"
  exit 0
fi
rm -f "$stamp"
"$venv/bin/python" -m pip install -q --upgrade pip >&2 2>/dev/null || true
target="$top"
[ -n "$extras" ] && target="$top[$extras]"
"$venv/bin/python" -m pip install -q "$target" >&2
echo "$want" > "$stamp"
echo "$venv/bin/python"
