"""What ``Loop._run_once`` calls its selector: one libuv iteration.

asyncio's scheduling core (ready deque, timer heap, stop semantics, debug
slow-callback warnings; see scheduler.py) decides how long the loop may
sleep; where the selector loop would call ``select(timeout)`` we run
``uv_run`` once.  One libuv timer per loop (C no-op callback) wakes the poll
at the earliest ``call_later`` deadline, so a timer costs a heap push as in
asyncio and no libuv handle of its own.  I/O callbacks run inside
``uv_run`` and reach their protocols directly.
"""
from .._uv import lib
from .scheduler import timeout_to_ms

_run_once = lib.uvffi_run_once


class UVSelector:
    """Stands in for ``loop._selector``: ``select`` runs libuv once."""

    __slots__ = ("_loop",)

    def __init__(self, loop):
        self._loop = loop

    def select(self, timeout=None):
        # (_run_once polls loops uvffi created without a timeout itself,
        # through the one-argument uvffi_run_nowait: see scheduler.py)
        loop = self._loop
        if loop._uv_loop is None:  # never hand libuv a NULL loop
            raise RuntimeError("Event loop is closed")
        if loop._io_dirty:  # see Stream.io_polluted
            loop._io_context.run(_run_once, loop._uv_loop,
                                 loop._uv_wakeup_ptr, timeout_to_ms(timeout))
        else:
            _run_once(loop._uv_loop, loop._uv_wakeup_ptr, timeout_to_ms(timeout))
        exc = loop._fatal
        if exc is not None:
            loop._fatal = None
            raise exc
        return ()

    def close(self):
        pass
