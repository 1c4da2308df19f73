"""The Python side of examples/node/addon.c.

The addon starts Python inside Node.js and runs ``nodebridge.attach(ADDRESS)``
where ADDRESS points to its ``struct bridge``: a table of function pointers.
:func:`attach` fills the Python half of the table with cffi callbacks, so the
addon calls Python without the Python C-API (the same code runs on CPython
and PyPy), and Python calls the addon's two C functions.  Only strings cross:
JSON for arguments and results.

The program runs with :func:`uvffi.embedding.start` on Node's ``uv_loop_t``
(guest mode): Node keeps running its own loop, and asyncio's steps run inside
its iterations.  Calls from JavaScript become tasks of that loop; their
results (or errors, or cancellations) go back through ``complete(id, ...)``,
which the addon turns into the settling of a Promise.
"""
import asyncio
import functools
import importlib
import inspect
import json
import sys
import traceback

import importlib.util
import os

import cffi

uvffi = None  # imported by attach(), once it is known to be a HOST build

CDEF = """
struct bridge {
    int version;
    void *uv_loop;
    void (*complete)(uint64_t id, int status, const char *data, size_t size);
    void (*main_done)(void);
    int (*start)(const char *module, const char *function, const char *args_json);
    int (*call)(uint64_t id, const char *function, const char *args_json);
    void (*shutdown)(void);
    int (*ended)(void);
    void (*finish)(void);
    int (*pending_closes)(void);
    void (*before_finalize)(void);
};
"""
BRIDGE_VERSION = 1
STATUS_VALUE, STATUS_ERROR, STATUS_CANCELLED = 0, 1, 2
MAIN_ID = 0

ffi = cffi.FFI()
ffi.cdef(CDEF)

_bridge = None       # the addon's struct bridge *
_callbacks = []      # the cffi callbacks in the table: kept alive
_module = None       # the application's module (start's "module")
_run = None          # the uvffi.embedding.GuestRun


def _import_host_uvffi():
    """Import uvffi after making sure it is a UVFFI_LIBUV=HOST build: any
    other would bring its own libuv into Node's process (a second libuv on
    Node's uv_loop_t: unsupported, undefined behaviour)."""
    global uvffi
    spec = importlib.util.find_spec("uvffi")
    if spec is None or spec.origin is None:
        raise ImportError("uvffi is not on sys.path (build.sh puts a "
                          "UVFFI_LIBUV=HOST build first in it)")
    package = os.path.dirname(spec.origin)
    if not os.path.exists(os.path.join(package, "_libuv_host.py")):
        raise ImportError(
            "the uvffi at %s is not a UVFFI_LIBUV=HOST build: it would load a "
            "libuv of its own next to Node's. Build with examples/node/build.sh."
            % package)
    import uvffi.embedding  # (binds the global: see above)


def attach(address):
    """Fill the Python half of the addon's table at ``address``."""
    global _bridge
    _import_host_uvffi()
    bridge = ffi.cast("struct bridge *", address)
    if bridge.version != BRIDGE_VERSION:
        raise RuntimeError("addon table version %d, nodebridge.py knows %d"
                           % (bridge.version, BRIDGE_VERSION))
    for stream in (sys.stdout, sys.stderr):  # PyPy: buffered_stdio=0 unknown
        try:
            stream.reconfigure(line_buffering=True)
        except (AttributeError, ValueError):
            pass
    _bridge = bridge
    for name, ctype, func, error in (
            ("start", "int(const char *, const char *, const char *)", _start, -1),
            ("call", "int(uint64_t, const char *, const char *)", _call, -1),
            ("shutdown", "void(void)", _shutdown, None),
            ("ended", "int(void)", _ended, 1),
            ("finish", "void(void)", _finish, None),
            ("pending_closes", "int(void)", _pending_closes, 0),
            ("before_finalize", "void(void)", _before_finalize, None)):
        kw = {"onerror": _unexpected}
        if error is not None:
            kw["error"] = error
        cb = ffi.callback(ctype, func, **kw)
        _callbacks.append(cb)
        setattr(bridge, name, cb)


def _unexpected(exc_type, exc, tb):
    # a bug of nodebridge itself: say so, the addon gets the error value
    sys.stderr.write("nodebridge: unexpected error\n")
    traceback.print_exception(exc_type, exc, tb)


# -- results to the addon --------------------------------------------------------

def _complete(call_id, status, payload):
    data = json.dumps(payload, default=repr).encode("utf-8")
    _bridge.complete(call_id, status, data, len(data))


def _error_payload(exc):
    payload = {
        "type": type(exc).__name__,
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(
            type(exc), exc, exc.__traceback__)),
    }
    if isinstance(exc, SystemExit):
        payload["code"] = exc.code if isinstance(exc.code, (int, type(None))) else str(exc.code)
    return payload


def _report_outcome(call_id, outcome):
    """Report a finished future (task) to the addon."""
    if outcome.cancelled():
        _complete(call_id, STATUS_CANCELLED,
                  {"type": "CancelledError", "message": "the Python task was cancelled"})
        return
    exc = outcome.exception()
    if exc is not None:
        _complete(call_id, STATUS_ERROR, _error_payload(exc))
    else:
        _report_value(call_id, outcome.result())


def _report_value(call_id, value):
    try:
        # allow_nan=False: NaN and Infinity are not JSON (JSON.parse fails)
        data = json.dumps(value, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        _complete(call_id, STATUS_ERROR, _error_payload(exc))
        return
    _bridge.complete(call_id, STATUS_VALUE, data, len(data))


def _text(ptr):
    return ffi.string(ptr).decode("utf-8", "surrogateescape")


# -- the table's Python half ----------------------------------------------------------

def _start(module, function, args_json):
    global _module, _run
    try:
        _module = importlib.import_module(_text(module))
        main = getattr(_module, _text(function))
        coro = main(*json.loads(_text(args_json)))
        address = int(ffi.cast("uintptr_t", _bridge.uv_loop))
        _run = uvffi.embedding.start(address, coro)
    except BaseException as exc:  # noqa: BLE001 - reported to JavaScript
        _complete(MAIN_ID, STATUS_ERROR, _error_payload(exc))
        return -1
    _run.task.add_done_callback(lambda task: _bridge.main_done())
    return 0


def _call(call_id, function, args_json):
    """JavaScript's call(): runs ``module.function(*args)`` in the loop; a
    coroutine (or any awaitable) becomes a task, its outcome the Promise's."""
    name = _text(function)
    try:
        if _run is None or _run.task.done() or _run.loop.is_closed():
            raise RuntimeError("the Python program is not running")
        func = getattr(_module, name, None) if not name.startswith("_") else None
        if not callable(func):
            raise AttributeError("%s has no public function %r"
                                 % (_module.__name__, name))
        args = json.loads(_text(args_json))
        # threadsafe: it also wakes Node's poll, wherever in Node's
        # iteration this JavaScript call came from
        _run.loop.call_soon_threadsafe(_invoke, call_id, func, args)
    except Exception as exc:  # noqa: BLE001 - reported to JavaScript
        _complete(call_id, STATUS_ERROR, _error_payload(exc))
    return 0


def _invoke(call_id, func, args):
    try:
        result = func(*args)
        if inspect.isawaitable(result):
            future = asyncio.ensure_future(result)
            future.add_done_callback(functools.partial(_report_outcome, call_id))
            return
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - reported to JavaScript
        _complete(call_id, STATUS_ERROR, _error_payload(exc))
        return
    _report_value(call_id, result)


def _shutdown():
    if _run is not None and not _run.loop.is_closed():
        _run.shutdown()
        # (wakes Node's poll: the cancellation is a callback to run)
        _run.loop.call_soon_threadsafe(lambda: None)


def _ended():
    if _run is None:
        return 1
    return int(_run.done or _run.loop.guest_exception is not None)


def _finish():
    try:
        result = _run.finish()
    except asyncio.CancelledError:
        _complete(MAIN_ID, STATUS_CANCELLED,
                  {"type": "CancelledError", "message": "the main coroutine was cancelled"})
    except BaseException as exc:  # noqa: BLE001 - reported to JavaScript
        _complete(MAIN_ID, STATUS_ERROR, _error_payload(exc))
    else:
        _report_value(MAIN_ID, result)
    finally:
        # When a KeyboardInterrupt/SystemExit stopped guest mode, finish()
        # raises it as such and main's task (which holds it) would log
        # "Task exception was never retrieved" when collected.
        task = _run.task
        if task.done() and not task.cancelled():
            task.exception()


def _pending_closes():
    return uvffi.embedding.pending_close_count()


def _before_finalize():
    if sys.implementation.name == "pypy":
        # PyPy's embedding API has no Py_FinalizeEx: do its visible part
        import atexit
        atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001
            pass
