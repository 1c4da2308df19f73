"""The handles under add_reader/add_writer and the sock_* methods
(facets/fdwatch.py): a poll per watched fd, and the guard that checks fds
before libuv's poll phase registers them.

``FdPoll`` is started with the shim's own C callback (``_uvffi_fdwatch_cb``,
which the facet defines: it dispatches to the fd's reader and writer), not
``Poll``'s generic one.  ``FdGuard`` is a ``uv_prepare_t`` whose C callback
calls Python only while armed (``flags``), with an epoll probe that tells
whether libuv's ``epoll_ctl`` would fail for an fd (libuv aborts if it does).
"""
import os
import select
import sys

from .._uv import ffi, lib
from .core import Prepare
from .errors import exception_from_uv
from .poll import Poll

_WINDOWS = sys.platform == "win32"
_EPOLL = hasattr(select, "epoll")
_poll_start_c = lib.uvffi_fdwatch_start


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
