#!/usr/bin/env bash
# Build examples/node: uvffi in HOST mode (its libuv is the one inside the
# node executable) and the Node-API addon that embeds Python.
#
#   examples/node/build.sh [OUTDIR]      (default: build/node-host/<python tag>)
#
# Environment:
#   PYTHON        the Python to embed (default python3).  A venv's python
#                 works: the embedded Python then has the venv's packages
#                 (cffi).  CPython needs its shared library (libpython3.X.so;
#                 Debian/Ubuntu: python3-dev), PyPy libpypy3.X-c.so.
#   NODE          node (default: the one on PATH)
#   NODE_INCLUDE  Node's headers, node_api.h (default <node's prefix>/include/node:
#                 /usr/include/node for the nodejs packages of NodeSource)
#   UV_INCLUDE    the uv.h of the libuv inside node (default NODE_INCLUDE;
#                 a node linked to the system's libuv: /usr/include)
#   CC            the C compiler (default cc)
#
# OUTDIR gets uvffi_node.node (the addon), site/uvffi (uvffi, HOST build),
# config.json (read by python.js) and uvffi-build/ (CMake's build tree).
# Without OUTDIR, build/node-host/last names it: python.js's default.
# Nothing is downloaded: the headers are those installed with Node.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
die() { echo "build.sh: $*" >&2; exit 1; }

py=${PYTHON:-python3}
command -v "$py" >/dev/null || die "no Python '$py' (set PYTHON)"
node=$(command -v "${NODE:-node}") || die "no node on PATH (set NODE)"
node_include=${NODE_INCLUDE:-$(dirname "$(dirname "$(readlink -f "$node")")")/include/node}
[ -f "$node_include/node_api.h" ] || die "no node_api.h in $node_include: install \
Node's headers (NodeSource's nodejs package has them in /usr/include/node; Debian's \
own: libnode-dev) or set NODE_INCLUDE"
uv_include=${UV_INCLUDE:-$node_include}
for h in uv.h uv/version.h; do
  [ -f "$uv_include/$h" ] || die "no $h in $uv_include: set UV_INCLUDE to the \
headers of the libuv that $node runs on"
done
cc=${CC:-cc}

# What to compile and link against, from the Python itself (the same
# information as python3-config --embed, which a venv does not have).
eval "$("$py" - <<'EOF'
import glob, os, shlex, sys, sysconfig
v = sysconfig.get_config_var
def out(**kw):
    for k, val in kw.items():
        print("%s=%s" % (k, shlex.quote(str(val))))
impl = sys.implementation.name
tag = sys.implementation.cache_tag
if impl == "pypy":
    names = ["libpypy%d.%d-c.so" % sys.version_info[:2], "libpypy3-c.so", "libpypy3.so"]
    dirs = [os.path.dirname(os.path.realpath(sys.executable)), v("LIBDIR") or "",
            sys.base_prefix + "/lib", sys.base_prefix + "/bin",
            "/usr/lib/" + (v("MULTIARCH") or "x86_64-linux-gnu"), "/usr/lib"]
    cflags = "-DUVFFI_NODE_PYPY"
else:
    ldversion = v("LDVERSION") or "%d.%d" % sys.version_info[:2]
    names = ["libpython%s.so" % ldversion, "libpython%s.so.1.0" % ldversion,
             "libpython%s.dylib" % ldversion]
    dirs = [v("LIBDIR") or "", v("LIBPL") or "",
            "/usr/lib/" + (v("MULTIARCH") or ""), sys.base_prefix + "/lib"]
    cflags = "-I" + shlex.quote(sysconfig.get_paths()["include"])
lib = next((os.path.join(d, n) for n in names for d in dirs
            if d and os.path.exists(os.path.join(d, n))), "")
out(py_impl=impl, py_tag=tag, py_exe=sys.executable, py_cflags=cflags,
    py_lib=lib, py_lib_names=" ".join(names))
EOF
)"
[ -n "$py_lib" ] || die "no shared Python library ($py_lib_names) for $py_exe: \
install it (Debian/Ubuntu: python3-dev; pyenv: PYTHON_CONFIGURE_OPTS=--enable-shared)"

out=${1:-$top/build/node-host/$py_tag}
mkdir -p "$out"
out=$(cd "$out" && pwd)
exec 9>"$out/.lock"
if command -v flock >/dev/null; then flock 9; fi  # parallel builds wait

# 1. uvffi, UVFFI_LIBUV=HOST: compiled against Node's uv.h, linked to no
#    libuv; its uv_* symbols are bound to node's when Python imports it.
#    (pip does the same: UVFFI_LIBUV=HOST UVFFI_LIBUV_INCLUDE=... pip install
#    --target DIR --no-deps .  -- see README.md)
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
if [ -f "$out/uvffi-build/CMakeCache.txt" ]; then generator=(); fi
command -v cmake >/dev/null || die "cmake is needed (pip install cmake, or apt-get install cmake)"
cmake -S "$top" -B "$out/uvffi-build" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DPython_EXECUTABLE="$py_exe" -DUVFFI_LIBUV=HOST \
      -DUVFFI_LIBUV_INCLUDE="$uv_include" >"$out/uvffi-build.log" 2>&1 \
  || { cat "$out/uvffi-build.log" >&2; die "configuring uvffi failed"; }
cmake --build "$out/uvffi-build" >>"$out/uvffi-build.log" 2>&1 \
  || { cat "$out/uvffi-build.log" >&2; die "building uvffi failed"; }
# the package: the sources of src/uvffi, the two modules, the HOST marker
# (never the developer builds that may sit in src/uvffi)
rm -rf "$out/site.new"
mkdir -p "$out/site.new/uvffi"
# the package's Python files, its folders included (no build products)
(cd "$top/src/uvffi" && tar cf - --exclude=_binding --exclude=__pycache__ \
   --exclude='*.so' --exclude=_libuv_host.py .) | tar xf - -C "$out/site.new/uvffi"
cp "$out"/uvffi-build/_uv.*.so "$out"/uvffi-build/_capsule.*.so \
   "$out"/uvffi-build/_libuv_host.py "$out/site.new/uvffi/"
rm -rf "$out/site"
mv "$out/site.new" "$out/site"

# 2. the addon: Node-API (C) + the Python embedding API.  -ldl: dladdr/dlopen
#    (libpython becomes RTLD_GLOBAL at run time, see addon.c).
libdir=$(dirname "$py_lib")
# shellcheck disable=SC2086
"$cc" -shared -fPIC -O2 -g -Wall -Wextra -Wno-unused-parameter \
      -I"$node_include" -I"$uv_include" $py_cflags -o "$out/uvffi_node.node.tmp" "$here/addon.c" \
      "$py_lib" -Wl,-rpath,"$libdir" -ldl
mv -f "$out/uvffi_node.node.tmp" "$out/uvffi_node.node"

"$py" - "$out" "$py_exe" "$py_impl" "$py_lib" "$node_include" "$uv_include" <<'EOF'
import json, os, sys
out, exe, impl, lib, include, uv_include = sys.argv[1:]
with open(os.path.join(out, "config.json"), "w") as f:
    json.dump({"python": exe, "implementation": impl, "libpython": lib,
               "site": os.path.join(out, "site"), "node_include": include,
               "uv_include": uv_include}, f, indent=2)
EOF
# python.js uses the last build when UVFFI_NODE_BUILD does not name one
[ "$#" -gt 0 ] || echo "$out" > "$top/build/node-host/last"
echo "build.sh: built $out (Python: $py_exe, $py_impl; Node headers: $node_include)" >&2
echo "$out"
