"""What ``BaseEventLoop._run_once`` calls its selector: one libuv iteration.

asyncio's scheduling core (ready deque, timer heap, stop semantics, debug
slow-callback warnings) stays CPython's own code; where the selector loop
would call ``select(timeout)`` we run ``uv_run`` once.  One libuv timer per
loop wakes the poll at the earliest ``call_later`` deadline, so timers cost
a heap push like in asyncio and no libuv handle each.  I/O callbacks run
inside ``uv_run`` and reach their protocols directly.
"""
import math

from ._uv import lib
from . import _callbacks


class UVSelector:
    """Stands in for ``loop._selector``: ``select`` runs libuv once."""

    __slots__ = ("_loop",)

    def __init__(self, loop):
        self._loop = loop

    def select(self, timeout=None):
        loop = self._loop
        if timeout is None:
            ms = -1
        elif timeout <= 0:
            ms = 0
        else:
            ms = math.ceil(timeout * 1000.0)
        prev = _callbacks.set_driving_loop(loop)
        try:
            lib.uvffi_run_once(loop._uv_loop, loop._uv_wakeup_ptr, ms)
        finally:
            _callbacks.set_driving_loop(prev)
        exc = loop._fatal
        if exc is not None:
            loop._fatal = None
            raise exc
        return ()

    def close(self):
        pass
