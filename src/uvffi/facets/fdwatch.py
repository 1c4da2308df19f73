"""add_reader/remove_reader/add_writer/remove_writer on uv_poll_t.

asyncio's selector loop keeps one selector key per fd holding a
``(reader, writer)`` pair of ``asyncio.Handle``; we keep one ``uv_poll_t``
per fd holding the same pair, and its event mask follows which of the two
is set.  When libuv reports readiness the handles go to the ready queue,
exactly where ``_process_events`` would put them, so ordering relative to
``call_soon`` callbacks is the selector loop's.

Two libuv traits need care:

* ``uv_poll_start`` does not call ``epoll_ctl`` itself; the registration is
  queued and done at the next ``uv_run``, and libuv *aborts the process* if
  that ``epoll_ctl`` fails (fd closed meanwhile, or reused by a regular
  file).  asyncio registers synchronously and merely stops hearing from a
  closed fd.  So every start is checked by a ``uv_prepare_t`` that runs just
  before libuv's poll phase; a poll whose fd can no longer be registered is
  stopped quietly (its callbacks stay registered, as a stale selector key
  would) instead of taking the interpreter down.
* ``uv_poll_init`` switches the fd to non-blocking mode; asyncio's
  ``add_reader`` leaves the mode alone, so we put a blocking fd back.

When an fd has neither reader nor writer left its poll is kept *idle* until
the guard's next run, which closes it: the ``sock_*`` methods remove their
reader when the call completes and the task usually adds it again in the
same batch of callbacks, and a fresh poll per wait costs a handle
allocation, a close callback, an fcntl, an ioctl and several ``epoll_ctl``
where asyncio's selector needs two. On Linux an idle poll is *parked*
(``uvffi_poll_park``): its epoll registration is silenced by one
``EPOLL_CTL_MOD`` (``EPOLLONESHOT``, ``data.fd = -1``: at most one
EPOLLHUP/EPOLLERR report, which libuv skips) while libuv still counts the
poll as started; taking it back is one ``EPOLL_CTL_MOD``, which fails when
the number no longer names the file registered.  asyncio unregisters with
``EPOLL_CTL_DEL`` instead; the DEL/ADD pair costs far more than two MODs
under load (docs/performance-notes.md, "sock_* methods"), and a file
that outlives a closed fd (dup, fork) can leave only a silenced entry
behind (``tests/test_fdwatch_idle.py``).  Elsewhere, or when libuv still
has a change queued, the idle poll is stopped, and taken back only for
the same socket (``uvffi_fd_same``).

An idle poll must not outlive the batch: a parked one holds libuv's slot
for its fd number, and closing a poll unregisters whatever file has that
number.  The guard closes them right before libuv's poll phase, the only
place where registrations reach epoll, so a handle that took the number
meanwhile is not registered yet.  Handles that take the number before
that are opened by uvffi: the paths where libuv checks for a duplicate
(``uv_*_open``, ``uv_poll_init``) evict the idle poll on EEXIST, the others
(accept, spawn, tty, sockets libuv creates) call ``_fdwatch_flush_idle``
first.
"""
import contextvars
import sys
from asyncio import events

from ..handles import poll as _poll
from .._uv import lib
from ..handles.fdpoll import FdGuard, FdPoll
from .scheduler import Handle

_READABLE = _poll.READABLE
_WRITABLE = _poll.WRITABLE
_WINDOWS = sys.platform == "win32"
_unpark = lib.uvffi_poll_unpark


def _fileobj_to_fd(fileobj):
    """The fd of *fileobj*, with the selectors module's checks/messages."""
    if isinstance(fileobj, int):
        fd = fileobj
    else:
        try:
            fd = int(fileobj.fileno())
        except (AttributeError, TypeError, ValueError):
            raise ValueError(f"Invalid file object: {fileobj!r}") from None
    if fd < 0:
        raise ValueError(f"Invalid file descriptor: {fd}")
    return fd


class SockWait(Handle):
    """The reader (or writer) that the ``sock_*`` methods install on an fd:
    one per poll and direction, kept on the poll and reused by every call
    that waits there (facets/sockmethods.py fills in the call: future, socket,
    operation).  The poll's callback (handles/fdpoll.py) runs it right away,
    inside the poll, unless callbacks were already queued when the poll
    began (``loop._uv_defer_io``): then it goes to the ready queue behind
    them, as any reader does.  Running it right away saves the loop iteration
    that asyncio spends between the reader's callback and the task it
    wakes, as uvloop and the streams' reads do."""

    __slots__ = ("poll", "reading", "fut", "sock", "op", "args")

    def __init__(self, loop, poll, reading, callback):
        # Handle's fields, as scheduler.call_soon fills them in; _args is
        # (self,): the callback takes the SockWait
        self._loop = loop
        self._context = contextvars.Context()
        self._callback = callback
        self._args = (self,)
        self._cancelled = False
        self._repr = None
        self._source_traceback = None
        self.poll = poll
        self.reading = reading
        self.fut = self.sock = self.op = self.args = None

    def __repr__(self):
        # (Handle's repr would format _args, which holds self)
        return "<SockWait fd=%s %s %s>" % (
            self.poll.fd, "reading" if self.reading else "writing", self.op)


class FdWatchMixin:
    """Loop methods for watching file descriptors."""

    # the loop's slots for this concern, and their initial values (loop.py)
    _LOOP_STATE = {
        "_fd_watches": None,      # fd -> FdPoll (handles/fdpoll.py)
        "_fd_pending": None,      # polls started since libuv last polled
        "_fd_idle": None,         # idle polls (parked or stopped), for reuse
        "_fd_guard": None,        # the FdGuard that checks them
        "_fd_guard_flags": None,  # its uvffi_fdguard_t (.armed)
    }

    # -- public API (argument checks first, as selector_events does) -----------

    def add_reader(self, fd, callback, *args):
        """Add a reader callback."""
        self._ensure_fd_no_transport(fd)
        self._add_reader(fd, callback, *args)

    def remove_reader(self, fd):
        """Remove a reader callback."""
        self._ensure_fd_no_transport(fd)
        return self._remove_reader(fd)

    def add_writer(self, fd, callback, *args):
        """Add a writer callback.."""
        self._ensure_fd_no_transport(fd)
        self._add_writer(fd, callback, *args)

    def remove_writer(self, fd):
        """Remove a writer callback."""
        self._ensure_fd_no_transport(fd)
        return self._remove_writer(fd)

    def _ensure_fd_no_transport(self, fd):
        fileno = fd
        if not isinstance(fileno, int):
            try:
                fileno = int(fileno.fileno())
            except (AttributeError, TypeError, ValueError):
                raise ValueError(f"Invalid file object: {fd!r}") from None
        transport = self._transports.get(fileno)
        if transport is not None and not transport.is_closing():
            # asyncio raises RuntimeError here (not ValueError), same message
            raise RuntimeError(
                f"File descriptor {fd!r} is used by transport {transport!r}")

    # -- the selector-key equivalents the sock_* methods use ------------------

    def _add_reader(self, fd, callback, *args):
        return self._fdwatch_add(fd, True, events.Handle(callback, args, self, None))

    def _add_writer(self, fd, callback, *args):
        return self._fdwatch_add(fd, False, events.Handle(callback, args, self, None))

    def _remove_reader(self, fd):
        return self._fdwatch_remove(fd, True)

    def _remove_writer(self, fd):
        return self._fdwatch_remove(fd, False)

    def _fdwatch_add(self, fd, reading, handle):
        """Install *handle* as the fd's reader (or writer); a replaced one is
        cancelled, as asyncio's selector loop does."""
        self._check_closed()
        p = self._fdwatch_get(fd, _READABLE if reading else _WRITABLE)
        if reading:
            old, p.reader = p.reader, handle
        else:
            old, p.writer = p.writer, handle
        self._fdwatch_update(p)
        if old is not None:
            old.cancel()
        return handle

    def _fdwatch_remove(self, fd, reading):
        if self.is_closed():
            return False
        p = self._fdwatch_lookup(fd)
        if p is None:
            return False
        if reading:
            old, p.reader = p.reader, None
        else:
            old, p.writer = p.writer, None
        self._fdwatch_update(p)
        if old is None:
            return False
        old.cancel()
        return True

    def _fdwatch_sock(self, fd, reading, callback):
        """Install the fd's SockWait (created on first use, with
        *callback*) as its reader (or writer) and return it.  The common
        case, the poll parked by the last sock_* call on this fd, for the
        same direction, is taken back here with no further call."""
        if self._closed:
            raise RuntimeError('Event loop is closed')  # _check_closed
        mask = _READABLE if reading else _WRITABLE
        watches = self._fd_watches
        p = watches.get(fd) if watches else None
        if (p is not None and p.parked and p.events == mask
                and _unpark(p.ptr) == 0):
            # (_fdwatch_unidle's bookkeeping; parked: no reader, no writer)
            p.parked = p.idle = False
            idle = self._fd_idle
            idle.discard(p)
            if not idle and not self._fd_pending:
                flags = self._fd_guard_flags
                if flags is not None:
                    flags.armed = 0
            update = False
        else:
            p = self._fdwatch_get(fd, mask)
            update = True
        if reading:
            w = p.rwait
            if w is None:
                w = p.rwait = SockWait(self, p, True, callback)
            old, p.reader = p.reader, w
        else:
            w = p.wwait
            if w is None:
                w = p.wwait = SockWait(self, p, False, callback)
            old, p.writer = p.writer, w
        if w._cancelled:
            # replaced by an add_reader meanwhile (Handle.cancel dropped
            # its callback): in service again
            w._cancelled = False
            w._callback = callback
            w._args = (w,)
        if update:
            self._fdwatch_update(p)
        if old is not None and old is not w:
            old.cancel()
        return w

    # -- poll handle bookkeeping ------------------------------------------------

    def _fdwatch_lookup(self, fd):
        if not isinstance(fd, int) or fd < 0:
            # ValueError for a negative fd, as the selector's get_key gives
            fd = _fileobj_to_fd(fd)
        watches = self._fd_watches
        if watches is None:
            return None
        return watches.get(fd)

    def _fdwatch_get(self, fileobj, mask):
        fd = fileobj if isinstance(fileobj, int) and fileobj >= 0 \
            else _fileobj_to_fd(fileobj)
        watches = self._fd_watches
        if watches is None:
            watches = self._fd_watches = {}
        p = watches.get(fd)
        if p is not None and p.idle and not self._fdwatch_unidle(p, mask):
            # the fd cannot take the idle poll back (closed, now another
            # file...): start over, so that epoll's EBADF/EPERM come now
            self._fdwatch_evict_stale(fd)
            p = None
        if p is None:
            p = FdPoll(self, fd)  # OSError (EBADF, EPERM...) as epoll gives
            watches[fd] = p
        return p

    def _fdwatch_unidle(self, p, mask):
        """Take an idle poll back for *mask*; False if it must be replaced."""
        if p.parked:
            if mask != p.events or lib.uvffi_poll_unpark(p.ptr) < 0:
                return False
            p.parked = False
        elif lib.uvffi_fd_same(p.fd, p.ident) <= 0:
            return False  # not the socket watched before (or closed)
        # (a stopped poll is restarted by _fdwatch_update)
        p.idle = False
        idle = self._fd_idle
        idle.discard(p)
        if not idle and not self._fd_pending:
            flags = self._fd_guard_flags
            if flags is not None:
                flags.armed = 0  # nothing left for the guard to do
        return True

    def _fdwatch_update(self, p):
        """Make the poll's mask match its reader/writer; when both are gone
        stop it, idle until the guard closes it (Windows: close it now)."""
        mask = 0
        if p.reader is not None:
            mask = _READABLE
        if p.writer is not None:
            mask |= _WRITABLE
        if mask == p.events and not p.stale:
            return
        if mask == 0:
            if not _WINDOWS:
                if p.stale or lib.uvffi_poll_park(p.ptr) < 0:
                    p.stop()
                    p.stale = False
                    pending = self._fd_pending
                    if pending:
                        pending.discard(p)
                else:
                    p.parked = True
                p.idle = True
                idle = self._fd_idle
                if idle is None:
                    idle = self._fd_idle = set()
                idle.add(p)
                flags = self._fd_guard_flags  # _fdwatch_arm, inline
                if flags is None:
                    flags = self._fdwatch_guard().flags
                flags.armed = 1
                return
            del self._fd_watches[p.fd]
            p.close()  # uv_poll_stop on a closed fd is harmless (EPOLL_CTL_DEL ignored)
            pending = self._fd_pending
            if pending:
                pending.discard(p)
            return
        try:
            self._fdwatch_start(p, mask)
        except OSError:
            # as _PollLikeSelector.modify: the key is dropped, error raised
            del self._fd_watches[p.fd]
            p.close()
            raise

    def _fdwatch_evict_stale(self, fd):
        """libuv refused a new handle on fd number *fd* (EEXIST) because an
        add_reader/add_writer watch still holds that number: the watched
        file was closed without remove_reader and the kernel handed the
        number out again (found by the reliability suite: the signal
        wake-up socket, a server socket or a transport's dup then could not
        be opened).  The old file is gone, so the watch is stale: drop it
        and let libuv give the number up.  Closing the poll now is safe:
        the new file is not registered with epoll yet.  Returns whether a
        watch was dropped (the caller then retries)."""
        watches = self._fd_watches
        p = watches.get(fd) if watches else None
        if p is None:
            return False
        del watches[fd]
        for handle in (p.reader, p.writer):
            if handle is not None:
                handle.cancel()
        p.reader = p.writer = None
        if self._fd_pending:
            self._fd_pending.discard(p)
        if p.idle:
            p.idle = p.parked = False
            self._fd_idle.discard(p)
        p.close()
        return True

    def _fdwatch_forget(self, fd, idle_only):
        """The file behind *fd* is about to be closed (a socket that a
        sock_* call kept open): close its poll first, while the number
        still names that file, so that no watch outlives it and the number
        can be reused at once.  With *idle_only*, a poll that still has a
        reader or writer is left alone."""
        watches = self._fd_watches
        p = watches.get(fd) if watches else None
        if p is not None and (p.idle or not idle_only):
            self._fdwatch_evict_stale(fd)

    def _fdwatch_flush_idle(self):
        """Close the idle polls (see the module docstring)."""
        idle = self._fd_idle
        if not idle:
            return
        polls = list(idle)
        idle.clear()
        watches = self._fd_watches
        pending = self._fd_pending
        for p in polls:
            p.idle = p.parked = False
            if watches.get(p.fd) is p:
                del watches[p.fd]
            if pending:
                pending.discard(p)
            p.close()

    def _fdwatch_guard(self):
        guard = self._fd_guard
        if guard is None or guard.closing:
            guard = FdGuard(self, self._fdwatch_check)
            self._fd_guard = guard
            self._fd_guard_flags = guard.flags
        return guard

    def _fdwatch_start(self, p, mask):
        p.stale = False
        p.start(mask)
        if _WINDOWS:
            return
        self._fdwatch_pending(p)

    def _fdwatch_pending(self, p):
        pending = self._fd_pending
        if pending is None:
            pending = self._fd_pending = set()
        pending.add(p)
        self._fdwatch_arm()

    def _fdwatch_arm(self):
        flags = self._fd_guard_flags
        if flags is None:
            flags = self._fdwatch_guard().flags
        flags.armed = 1

    def _fdwatch_check(self):
        """uv_prepare callback: right before libuv registers the polls
        started since the last iteration, drop those it would abort on,
        and close the idle ones."""
        guard = self._fd_guard
        guard.flags.armed = 0
        self._fdwatch_flush_idle()
        pending = self._fd_pending
        if not pending:
            return
        polls = list(pending)
        pending.clear()
        fd_same = lib.uvffi_fd_same
        for p in polls:
            if p.closing or not p.events:
                continue
            ident = p.ident
            same = fd_same(p.fd, ident)  # records the identity when new
            if same > 0:
                continue  # the socket found registrable before: so it is now
            if same == 0 and guard.probe(p.fd) is None:
                continue
            ident[0] = ident[1] = 0  # never "the same" as a refused fd
            p.stop()
            p.stale = True
