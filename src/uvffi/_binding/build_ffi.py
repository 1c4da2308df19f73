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


# Calls whose CPython wrapper keeps the GIL.  cffi's wrappers release the
# GIL around every call so that a call that waits lets other threads run;
# the release and re-acquisition cost more than these calls themselves, and
# they sit on the per-event paths (every loop iteration's poll, every
# write).  Each one returns without waiting: bookkeeping of libuv's, or a
# system call on a descriptor libuv keeps non-blocking (uvloop calls the
# same functions with the GIL held).  Python callbacks that libuv makes
# inside them find the GIL already held, which cffi allows for.  A call
# that can wait (uv_run, uvffi_run_once, spawning) must not be listed.
# PyPy does not use these wrappers.
GIL_KEPT = (
    # the zero-timeout poll of each busy loop iteration (facets/scheduler.py)
    "uvffi_run_nowait",
    # stream writes and reads (transports/stream.py, handles/stream.py,
    # transports/bufferedreads.py)
    "uvffi_try_write", "uvffi_write", "uvffi_stream_read",
    "uvffi_stream_pending_error",
    "uvffi_read_start", "uvffi_read_restart", "uv_read_stop",
    # datagrams (transports/udp.py, handles/udp.py)
    "uvffi_udp_try_send", "uvffi_udp_send",
    # timers, wake-ups and fd watches
    "uv_timer_start", "uv_timer_stop", "uvffi_timer_start_noop",
    "uv_async_send",
    "uvffi_poll_start", "uvffi_fdwatch_start", "uv_poll_stop",
    "uvffi_poll_park", "uvffi_poll_unpark",
)

_RELEASE = "  Py_BEGIN_ALLOW_THREADS\n"
_ACQUIRE = "  Py_END_ALLOW_THREADS\n"


def keep_gil(c_source, names=GIL_KEPT):
    """*c_source* (cffi's generated module) with the wrappers of *names*
    calling their function with the GIL held.  Raises ValueError for a name
    whose wrapper does not have the shape this expects (a cffi that writes
    its wrappers differently): the build stops rather than silently
    releasing the GIL where the tests expect it kept."""
    for name in names:
        start = c_source.find("\n_cffi_f_%s(PyObject *self" % name)
        end = c_source.find("\n}\n", start)
        body = c_source[start:end]
        if start < 0 or body.count(_RELEASE) != 1 or body.count(_ACQUIRE) != 1:
            raise ValueError("build_ffi.py: cffi's wrapper of %s is not in the "
                             "expected form; update keep_gil()" % name)
        body = body.replace(_RELEASE, "").replace(_ACQUIRE, "")
        c_source = c_source[:start] + body + c_source[end:]
    return c_source


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: build_ffi.py OUTPUT.c\n")
        return 2
    out = argv[1]
    make_ffi().emit_c_code(out)
    with open(out, encoding="utf-8") as f:
        c_source = f.read()
    with open(out, "w", encoding="utf-8") as f:
        f.write(keep_gil(c_source))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
