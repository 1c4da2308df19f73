"""Routing of exceptions raised inside libuv callbacks.

A Python exception that escapes an ``extern "Python"`` callback would be
printed by cffi and swallowed.  Every callback therefore catches what it can
report with context itself (a transport's ``_fatal_error``, say), and every
``def_extern`` is registered with :func:`onerror` as the backstop for what is
left -- including a ``KeyboardInterrupt`` raised by a signal handler before
the callback's first ``try:``.

``Exception`` goes to the loop's exception handler.  ``KeyboardInterrupt`` and
``SystemExit`` (any ``BaseException``) are stored on the loop, libuv is told to
stop, and the loop re-raises them from ``run_forever``/``run_until_complete``.
"""
import sys
import threading
import traceback
from asyncio.events import _get_running_loop

from .._uv import ffi

_driver = threading.local()


def set_driving_loop(loop):
    """Record the uvffi loop that is inside uv_run in this thread."""
    prev = getattr(_driver, "loop", None)
    _driver.loop = loop
    return prev


def driving_loop():
    """The uvffi loop whose uv_run is calling us: set explicitly around
    uv_run calls made outside run_forever (close, guest mode); otherwise the
    running loop."""
    loop = getattr(_driver, "loop", None)
    if loop is None:
        loop = _get_running_loop()
        if loop is not None and not hasattr(loop, "_store_fatal"):
            loop = None
    return loop


def report(loop, exc, message="Unhandled exception in a libuv callback"):
    """Hand *exc*, raised in a callback of *loop*, to whoever must see it."""
    if isinstance(exc, Exception):
        try:
            loop.call_exception_handler({"message": message, "exception": exc})
        except BaseException as again:  # noqa: BLE001 - never lose it
            loop._store_fatal(again)
    else:
        loop._store_fatal(exc)


def report_failure(obj, exc, message):
    """A callback of handle *obj* raised *exc*: its owner's ``on_failure``
    (a transport's ``_fatal_error``: the transport and protocol go in the
    context, and the transport closes, as asyncio does when its own I/O
    callbacks fail), else the loop's exception handler."""
    fail = obj.on_failure
    if fail is not None:
        try:
            fail(exc, message)
            return
        except Exception as again:  # noqa: BLE001 - reported below
            exc = again
    report(obj.loop, exc, message)


def onerror(exc_type, exc_value, tb):
    loop = driving_loop()
    if exc_value is None:
        exc_value = exc_type()
    if loop is not None:
        report(loop, exc_value)
    else:  # no loop to tell: behave like sys.unraisablehook would
        sys.stderr.write("uvffi: exception in a libuv callback with no loop running:\n")
        traceback.print_exception(exc_type, exc_value, tb)
    return None


def def_extern(name, error=None):
    """``ffi.def_extern`` with uvffi's error routing; *error* is what a
    callback that returns a value gives C when an exception escapes it."""
    if error is None:
        return ffi.def_extern(name=name, onerror=onerror)
    return ffi.def_extern(name=name, error=error, onerror=onerror)
