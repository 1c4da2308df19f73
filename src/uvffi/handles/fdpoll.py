"""The handles under add_reader/add_writer and the sock_* methods
(facets/fdwatch.py): a poll per watched fd, and the guard that checks fds
before libuv's poll phase registers them.

``FdPoll`` is started with the shim's own C callback (``_uvffi_fdwatch_cb``,
below: it dispatches to the fd's reader and writer), not ``Poll``'s
generic one.  ``FdGuard`` is a ``uv_prepare_t`` whose C callback
calls Python only while armed (``flags``), with an epoll probe that tells
whether libuv's ``epoll_ctl`` would fail for an fd (libuv aborts if it does).
"""
import os
import select
import sys

from .._uv import ffi, lib
from .callbacks import def_extern, report
from .core import Prepare
from .errors import exception_from_uv
from .poll import READABLE as _READABLE, WRITABLE as _WRITABLE, Poll

_WINDOWS = sys.platform == "win32"
_EPOLL = hasattr(select, "epoll")
_poll_start_c = lib.uvffi_fdwatch_start
_BOTH = _READABLE | _WRITABLE
_from_handle = ffi.from_handle


class FdPoll(Poll):
    """The poll handle of one watched fd and its reader/writer Handles."""

    __slots__ = ("reader", "writer", "stale", "idle", "parked", "ident",
                 "rwait", "wwait")

    def __init__(self, loop, fd):
        if not _WINDOWS:
            blocking = os.get_blocking(fd)  # EBADF surfaces here, as OSError
        super().__init__(loop, fd, None)
        if not _WINDOWS and blocking:
            os.set_blocking(fd, True)
        self.reader = None
        self.writer = None
        # the SockWaits of the sock_* calls (facets/sockmethods.py), once there were any
        self.rwait = None
        self.wwait = None
        # started, but the fd was found unregistrable before libuv got to it
        self.stale = False
        # neither reader nor writer: closed by the next guard run
        self.idle = False
        # idle, out of epoll, but started for libuv (with self.events)
        self.parked = False
        # (st_dev, st_ino) of the fd when last found registrable
        self.ident = ffi.new("uint64_t[2]")

    def start(self, events):
        # (our own C callback: _fdwatch_cb, not Poll's generic one)
        rc = _poll_start_c(self.ptr, events)
        if rc < 0:
            raise exception_from_uv(rc)
        self.events = events

    def _close_for_loop_shutdown(self):
        watches = self.loop._fd_watches
        if watches is not None and watches.get(self.fd) is self:
            del watches[self.fd]
        self.close()


@def_extern("_uvffi_fdwatch_cb")
def _fdwatch_cb(handle, status, events):
    """libuv's event for a watched fd: its reader and writer go to the ready
    queue, where _process_events would put them; the SockWait of a sock_*
    call (``rwait``/``wwait``, facets/fdwatch.py) runs at once unless the
    poll defers I/O.  One C->Python crossing per ready fd."""
    p = _from_handle(handle.data)
    loop = p.loop
    try:
        if p.idle:
            # an event libuv had already collected before the park
            if status < 0:  # libuv stopped the handle: no longer parked
                p.parked = False
                p.events = 0
            return
        if status < 0:
            # POLLERR: a selector reports the fd both readable and writable
            # (level-triggered, so again on every poll).  libuv has stopped
            # the handle; start it again to keep reporting like epoll.
            events = _BOTH
            mask = p.events
            if mask and not p.closing:
                p.events = 0
                loop._fdwatch_start(p, mask)
        reader = p.reader
        if events & _READABLE and reader is not None:
            if reader._cancelled:
                loop._remove_reader(p.fd)
            elif reader is p.rwait and not loop._uv_defer_io:
                reader._callback(reader)
            else:
                loop._uv_ready_append(reader)
        writer = p.writer
        if events & _WRITABLE and writer is not None:
            if writer._cancelled:
                loop._remove_writer(p.fd)
            elif writer is p.wwait and not loop._uv_defer_io:
                writer._callback(writer)
            else:
                loop._uv_ready_append(writer)
    except Exception as exc:
        report(loop, exc)


class FdGuard(Prepare):
    """The uv_prepare_t that runs just before libuv's poll phase, and the
    probe that tells whether libuv's epoll_ctl would fail for an fd."""

    __slots__ = ("_probe", "flags")

    def __init__(self, loop, callback):
        super().__init__(loop, callback)
        self.ref(False)  # never keeps uv_run(DEFAULT) alive
        self._probe = select.epoll() if _EPOLL else None
        rc = lib.uvffi_fdguard_start(self.flags)
        if rc < 0:
            self.close()
            raise exception_from_uv(rc)

    def _new_memory(self):
        # uvffi_fdguard_t: the uv_prepare_t, then the flag that lets its C
        # callback call ours (armed: see FdWatchMixin._fdwatch_arm)
        self.flags = ffi.new("uvffi_fdguard_t *")
        return ffi.cast("uv_prepare_t *", self.flags)

    def close(self):
        loop = self.loop
        if loop._fd_guard is self:
            loop._fd_guard = loop._fd_guard_flags = None
        super().close()

    def probe(self, fd):
        """The OSError that registering *fd* with the backend would give
        (EBADF: closed; EPERM: a regular file...), or None."""
        ep = self._probe
        if ep is None:  # kqueue & co. take any open fd
            try:
                os.fstat(fd)
            except OSError as exc:
                return exc
            return None
        try:
            ep.register(fd, select.EPOLLIN)
        except OSError as exc:
            return exc
        ep.unregister(fd)
        return None

    def _on_close(self):
        if self._probe is not None:
            self._probe.close()
        super()._on_close()
