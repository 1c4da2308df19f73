"""The cffi definition of uvffi's libuv binding.

CMake runs this file to emit the C source of the extension module
``uvffi._uv`` (out-of-line API mode); the module is then compiled and linked
against libuv by CMake, not by cffi/setuptools.

Declarations live in ``cdef/*.h`` (read in name order) and the C shim in
``shim/*.c``; both are split by libuv primitive so that each concern can be
extended on its own.
"""
import os
import sys

import cffi

HERE = os.path.dirname(os.path.abspath(__file__))
MODULE_NAME = "uvffi._uv"


def _read_sorted(folder, suffix):
    path = os.path.join(HERE, folder)
    names = sorted(n for n in os.listdir(path) if n.endswith(suffix))
    return [(n, open(os.path.join(path, n), encoding="utf-8").read()) for n in names]


def make_ffi():
    ffi = cffi.FFI()
    for _name, text in _read_sorted("cdef", ".h"):
        ffi.cdef(text)
    header = open(os.path.join(HERE, "shim", "uvffi_shim.h"), encoding="utf-8").read()
    source = [header]
    for name, text in _read_sorted("shim", ".c"):
        source.append("/* ---- shim/%s ---- */\n%s" % (name, text))
    ffi.set_source(MODULE_NAME, "\n".join(source))
    return ffi


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: build_ffi.py OUTPUT.c\n")
        return 2
    out = argv[1]
    make_ffi().emit_c_code(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
