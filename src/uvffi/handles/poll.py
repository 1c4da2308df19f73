"""uv_poll_t: readiness of a file descriptor (or, on Windows, a socket).

The primitive under ``add_reader``/``add_writer``, the ``sock_*`` methods
and the signal wake-up socket.  ``callback(status, events)`` runs on each
event; a negative status is a libuv error for the descriptor.  A poll made
with ``defers_io`` stands for what asyncio's loop would run as a reader or
writer callback: in a poll phase that began with callbacks already queued
(``loop._uv_defer_io``) its event goes to the ready queue, behind them.
"""
import errno
import sys

from .._uv import lib
from .errors import exception_from_uv
from .core import UVHandle
from .callbacks import def_extern, report
from .._uv import ffi

READABLE = lib.UV_READABLE
WRITABLE = lib.UV_WRITABLE
DISCONNECT = lib.UV_DISCONNECT
_UV_EEXIST = -errno.EEXIST  # libuv codes are negated errnos on Unix (the only user)

_from_handle = ffi.from_handle


class Poll(UVHandle):
    __slots__ = ("callback", "fd", "events", "defers_io")
    CTYPE = "uv_poll_t *"

    def __init__(self, loop, fd, callback, defers_io=False):
        super().__init__(loop)
        self.callback = callback
        self.defers_io = defers_io
        self.fd = fd
        self.events = 0
        if sys.platform == "win32":
            rc = lib.uv_poll_init_socket(loop._uv_loop, self.ptr, fd)
        else:
            rc = lib.uv_poll_init(loop._uv_loop, self.ptr, fd)
            if rc == _UV_EEXIST and loop._fdwatch_evict_stale(fd):
                # the number was held by an add_reader watch of a closed fd
                rc = lib.uv_poll_init(loop._uv_loop, self.ptr, fd)
        self._init_done(rc)

    def start(self, events):
        rc = lib.uvffi_poll_start(self.ptr, events)
        if rc < 0:
            raise exception_from_uv(rc)
        self.events = events

    def stop(self):
        if not self.closing:
            lib.uv_poll_stop(self.ptr)
        self.events = 0

    def held_event(self, status, events):
        # (defers_io, from the ready queue)
        if not self.closing:
            self.callback(status, events)


@def_extern("_uvffi_poll_cb")
def _poll_cb(handle, status, events):
    obj = _from_handle(handle.data)
    if obj.defers_io and obj.loop._uv_defer_io:
        obj.loop.call_soon(obj.held_event, status, events)
        return
    try:
        obj.callback(status, events)
    except Exception as exc:
        report(obj.loop, exc)
