"""Stream handles (uv_tcp_t, uv_pipe_t, uv_tty_t).

``Stream`` wraps a libuv stream handle: it owns the memory, its reading
state and its owner's context; libuv's read/write/shutdown/connect/
connection callbacks (streamcallbacks.py) reach the bound methods its
owner sets (``transports.stream.StreamTransport``, servers, pipes).

How a stream reads (``Stream.mode``; shim ``uvffi_stream.c``):
- on a loop uvffi created, into the loop's read buffer, handed to Python in
  batches after libuv's poll phase (``streamcallbacks._on_reads``); large
  reads, EOF and errors one at a time (``_on_read``);
- on a host's loop (embedding), into a per-thread C buffer, one callback per
  read (``_on_read``);
- for a BufferedProtocol while its reads are large, straight into the
  buffer its ``get_buffer()`` returns (``_alloc``, then ``_on_filled``;
  bufferedreads.py).
"""
import collections
import contextvars
import errno
import os
import sys

from .._uv import ffi, lib
from .errors import exception_from_uv
from .core import UVHandle, new_unzeroed as _new_unzeroed

_from_handle = ffi.from_handle
_new = ffi.new
_unpack = ffi.unpack
# os.write is the cheaper way to an fd on CPython (Stream.write_fd)
_OS_WRITES = os.name == "posix" and sys.implementation.name != "pypy"
_READ_PLAIN = lib.UVFFI_READ_PLAIN
_READ_BATCH = lib.UVFFI_READ_BATCH
_READ_DIRECT = lib.UVFFI_READ_DIRECT
_READ_SELF = lib.UVFFI_READ_SELF
# Large reads: from a read of LARGE_READS_FROM bytes until one under
# LARGE_READS_UNTIL, a stream reads straight into its protocol's memory
# (bufferedreads.py, largereads.py); a plain protocol's read of that size
# calls on_large_read.  The C read path hands such reads over on their own:
# one definition, the shim's.
LARGE_READS_FROM = lib.UVFFI_LARGE_READ
LARGE_READS_UNTIL = 8 * 1024
# The most one self read asks for: the bytes object os.read makes must stay
# under glibc's mmap threshold (128 KiB, with the object's header and
# malloc's; transports/largereads.py says why).
SELF_READ_MAX = 127 * 1024
_UV_EOF = lib.UV_EOF
_os_read = os.read


class Stream(UVHandle):
    """A libuv stream handle.  The owner sets ``on_read(nread, data)`` (data:
    a buffer of exactly nread bytes when nread > 0, valid during the call
    only: copy what must outlive it; else None),
    ``on_write(status)``, ``on_shutdown(status)``, ``on_connect(status)`` and
    ``on_connection(status)`` as it needs them, and ``on_failure(exc,
    message)`` for what those raise.

    Fast path: while a plain asyncio Protocol is set (``set_protocol``) and
    the stream reads, ``live`` is that protocol, and data goes straight to
    its ``data_received`` from the read callback (or the loop's read batch,
    ``_on_reads``); a failure of that call goes to ``on_data_failed(exc)``.

    Direct reads (``set_read_mode(UVFFI_READ_DIRECT)``, for a
    BufferedProtocol): libuv asks ``on_alloc(buf)`` for the buffer to read
    into (the owner fills ``buf.base``/``buf.len``, or leaves them empty to
    decline) and reports the read with ``on_filled(nread)``.  Self reads
    (``UVFFI_READ_SELF``, POSIX): when the fd is readable, libuv's alloc
    callback calls ``on_self_read()``, which reads the fd itself
    (``uvffi_stream_read``; for a plain protocol, ``os.read``); ``on_filled``
    then only follows if the stream's reading changed meanwhile (see
    in_alloc).  ``on_large_read()``, when set, is called after a plain
    protocol got a read of ``LARGE_READS_FROM`` bytes or more: its owner
    may switch to self reads (largereads.py).

    On a loop uvffi created, reads arrive in batches after libuv's poll
    phase.  A read that was already in the batch when its stream stopped
    reading (the protocol paused it while an earlier read was delivered,
    say) is kept in ``backlog`` and delivered, in order and before anything
    newer, once reading resumes; closing drops it, as asyncio delivers
    nothing after close()."""

    __slots__ = ("on_read", "on_write", "on_shutdown", "on_connect",
                 "on_connection", "protocol", "live", "on_data_failed",
                 "on_alloc", "on_filled", "on_self_read", "reading",
                 "backlog", "_key", "_box", "wfd", "mode", "_default_mode",
                 "in_alloc", "_reconcile", "_backlog_due", "_in_backlog",
                 "_hold_buffer",
                 "on_large_read", "context", "plain", "on_context",
                 "on_failure")

    def __init__(self, loop):
        super().__init__(loop)
        self.on_read = self.on_write = self.on_shutdown = None
        self.on_connect = self.on_connection = None
        # on_failure(exc, message): where a failure of the callbacks above
        # goes (callbacks.report_failure); None: the loop's handler
        self.on_failure = None
        self.protocol = self.live = self.on_data_failed = None
        self.on_alloc = self.on_filled = self.on_self_read = None
        self.on_large_read = None
        self.reqs = {}  # requests in flight (core.py's docstring)
        self.reading = False
        self.backlog = None
        # a _deliver_backlog is scheduled / running: libuv is not reading
        # then, and only the end of _deliver_backlog starts it again
        self._backlog_due = self._in_backlog = False
        self.wfd = -1  # see write_fd()
        # batched reads find the stream by its key (_init_done)
        self._key = -1
        self.mode = self._default_mode = (
            _READ_BATCH if loop._read_batches is not None else _READ_PLAIN)
        # Inside libuv's alloc callback (a direct read asking on_alloc for a
        # buffer) libuv must not be told to stop reading or to close: its
        # uv__read goes on to read into the buffer and to call read_cb,
        # which uv_read_stop has set to NULL (a crash).  So while in_alloc,
        # read_stop/read_start/set_read_mode/close only change our state,
        # and the read callback that always follows the alloc callback
        # makes libuv's match (after_alloc).
        self.in_alloc = False
        self._reconcile = False
        # a direct read's buffer of our own, while libuv reads into it for
        # a read to be held (lend_hold_buffer)
        self._hold_buffer = None
        # The owner's contextvars context (its creation context), in which
        # libuv's callbacks call it (run_in_context).  ``plain``: that
        # context has no variables, and the loop runs libuv inside its own
        # empty I/O context (scheduler.py), so the read callbacks may call
        # the owner directly there: a context switch per read costs more
        # than the rest of an echo's round trip.  Set by use_context().
        self.context = None
        self.plain = False
        self.on_context = None  # told of a new context (io_polluted)

    def _new_memory(self):
        # the libuv handle with the stream's batch key after it
        # (uvffi_stream_t); _box owns the memory, ptr is the handle's type
        box = self._box = _new("uvffi_stream_t *")
        return ffi.cast(self.CTYPE, box)

    def _init_done(self, rc):
        super()._init_done(rc)
        if self._default_mode == _READ_BATCH:
            self._key = self._box.key = self.loop._read_batches.add(self)

    def _relive(self):
        # the one place that decides whether reads take the fast path
        self.live = (self.protocol if self.plain and self.reading
                     and not self.backlog and not self.closing else None)

    # -- the owner's context ---------------------------------------------------

    def use_context(self, context):
        """Call the owner in *context* from now on (see __init__)."""
        self.context = context
        self.plain = self.loop._uv_owned and not context
        self._relive()

    def run_in_context(self, fn, *args):
        """fn(*args) in the owner's context: libuv's callbacks run outside
        it (in the loop's I/O context, or the host's in guest mode)."""
        if self.plain:
            try:
                return fn(*args)
            finally:
                if self.loop._io_context:
                    self.io_polluted()
        ctx = self.context
        if ctx is None:
            return fn(*args)
        return ctx.run(fn, *args)

    def io_polluted(self):
        """The owner of this plain stream set a context variable while
        called directly in the loop's I/O context (__init__).  The variable
        is the owner's: it gets a copy of that context as its own, and is
        called in it from now on.  The polls after this one run in a fresh
        I/O context each (scheduler.py: _io_dirty), since the one entered
        cannot be left or emptied; until then (the rest of this poll) reads
        wait on their streams and reach their owners from the ready queue,
        each in its own context."""
        loop = self.loop
        ctx = loop._io_context
        loop._io_context = contextvars.Context()
        loop._io_dirty = True
        loop._uv_defer_io = True
        self.plain = False
        self.context = ctx.copy()
        self._relive()
        if self.on_context is not None:
            self.on_context(self.context)

    def context_settled(self):
        """After a call that ran in the owner's own context: one that set a
        variable there ends the direct calls."""
        if self.plain and self.context:
            self.plain = False
            self._relive()

    def set_protocol(self, protocol):
        """The plain Protocol whose data_received takes the reads, or None
        (a BufferedProtocol: reads go to on_read / on_alloc+on_filled)."""
        self.protocol = protocol
        self._relive()

    def set_read_mode(self, mode=None):
        """Read in *mode* (UVFFI_READ_*; None: this loop's default) from
        the next read on, also when called from inside a read callback."""
        if mode is None:
            mode = self._default_mode
        if mode == self.mode:
            return
        self.mode = mode
        if self.in_alloc:
            self._reconcile = True
        elif (self.reading and not self.backlog and not self._in_backlog
              and not self.closing):
            rc = lib.uvffi_read_restart(self.ptr, mode)
            if rc < 0:
                self.reading = False
                self._relive()
                raise exception_from_uv(rc)

    def read_start(self):
        self.reading = True
        if self.in_alloc:
            self._reconcile = True
            self._relive()
            return
        if self._in_backlog:
            # resumed by a held read's protocol call: the delivery goes on,
            # and starts libuv when it is done
            self._relive()
            return
        if self.backlog:
            # held reads first: libuv resumes once they are delivered
            self._relive()
            self._schedule_backlog()
            return
        rc = self._read_start()
        if rc < 0:
            raise exception_from_uv(rc)

    def _read_start(self):
        rc = lib.uvffi_read_start(self.ptr, self.mode)
        if rc < 0:
            self.reading = False
        self._relive()
        return rc

    def read_stop(self):
        self.reading = False
        self.live = None
        if self.in_alloc:
            self._reconcile = True
        elif not self.closing:
            lib.uv_read_stop(self.ptr)

    def after_alloc(self):
        """The read callback after a direct read's alloc callback: make
        libuv's reading state what was asked for meanwhile (see in_alloc)."""
        self.in_alloc = False
        if not self._reconcile:
            return
        self._reconcile = False  # (before anything that may raise)
        if self.closing:
            lib.uvffi_close(self.ptr)  # close() came in the alloc callback
        elif not self.reading:
            lib.uv_read_stop(self.ptr)
        elif self.backlog:
            # held reads go first (as read_start does them)
            lib.uv_read_stop(self.ptr)
            self._schedule_backlog()
        else:
            rc = lib.uvffi_read_restart(self.ptr, self.mode)
            if rc < 0:
                self.reading = False
                self._relive()
                self.on_read(rc, None)  # reported as a read error

    def hold(self, nread, data, first=False):
        """Keep a read for later (see the class docstring).  *first*: a
        read the protocol did not take (its get_buffer(), or the
        buffer_updated() of an earlier piece, raised SystemExit or
        KeyboardInterrupt): asyncio would still have it in the socket for
        the next poll, so it goes back ahead of any held read."""
        if self.backlog is None:
            self.backlog = collections.deque()
        if first:
            self.backlog.appendleft((nread, data))
        else:
            self.backlog.append((nread, data))
        self.live = None
        if self.reading and len(self.backlog) == 1 and not self._in_backlog:
            # still reading (its delivery was interrupted): deliver from the
            # ready queue, libuv paused so that nothing newer overtakes it
            # (a delivery in progress schedules the rest itself)
            if self.in_alloc:
                self._reconcile = True  # after_alloc stops libuv for it
            else:
                lib.uv_read_stop(self.ptr)
                self._schedule_backlog()

    def hold_self_read(self):
        """A self read (the fd is readable) in a poll that began with
        callbacks already queued (``loop._uv_defer_io``): on asyncio's loop
        those run before the poll's I/O callbacks, so the owner is not
        called now.  The fd is read here, as the owner's self read would,
        and what came -- data, EOF or the read's error -- waits on the
        stream behind them (``hold``), delivered through ``on_read`` (for a
        BufferedProtocol, the copy path)."""
        try:
            data = _os_read(self.fileno(), SELF_READ_MAX)
        except (BlockingIOError, InterruptedError):
            return  # nothing there after all: libuv polls on
        except OSError as exc:
            # libuv's codes are negated errnos on POSIX, the only place
            # streams self-read
            self.hold(-(exc.errno or errno.EIO), None)
            return
        if data:
            self.hold(len(data), data)
        else:
            self.hold(_UV_EOF, None)

    def lend_hold_buffer(self, buf):
        """A direct read (libuv reads into the buffer the alloc callback
        fills in *buf*) in a poll that defers I/O: as for hold_self_read,
        the owner, get_buffer() included, is not asked now; libuv reads
        into the stream's own buffer, and the read callback holds what
        came (hold_filled)."""
        cbuf = self._hold_buffer = _new_unzeroed("char[]", SELF_READ_MAX)
        buf.base = cbuf
        buf.len = SELF_READ_MAX

    def hold_filled(self, nread):
        """libuv's read callback after lend_hold_buffer."""
        cbuf, self._hold_buffer = self._hold_buffer, None
        if nread > 0:
            self.hold(nread, _unpack(cbuf, nread))
        elif nread < 0:
            self.hold(nread, None)  # EOF or the read's error
        # 0: nothing was there after all

    def _schedule_backlog(self):
        # once: a second delivery would start libuv reading twice (EALREADY)
        if not self._backlog_due:
            self._backlog_due = True
            self.loop.call_soon(self._deliver_backlog, context=self.context)

    def _deliver_backlog(self):
        self._backlog_due = False
        backlog = self.backlog
        self._in_backlog = True
        try:
            while backlog and self.reading and not self.closing:
                nread, data = backlog.popleft()
                protocol = self.protocol
                if protocol is not None and nread > 0:
                    try:
                        protocol.data_received(data)
                    except (SystemExit, KeyboardInterrupt):
                        raise
                    except BaseException as exc:
                        self.on_data_failed(exc)
                    if nread >= LARGE_READS_FROM and self.on_large_read is not None:
                        self.on_large_read()  # as _on_read does
                else:
                    self.on_read(nread, data)
        finally:
            # Also when a protocol call raised SystemExit/KeyboardInterrupt
            # out of here: libuv was stopped for the backlog (hold), so a
            # stream still reading must get the rest later or libuv back,
            # or it would never read again (its EOF included).
            self._in_backlog = False
            self.context_settled()
            if self.reading and not self.closing and not self._backlog_due:
                # (a delivery scheduled meanwhile, by a pause and resume in
                # a callback above, restarts libuv itself)
                if backlog:
                    self._schedule_backlog()  # left early: the rest later
                else:
                    rc = self._read_start()
                    if rc < 0:
                        self.on_read(rc, None)  # reported as a read error

    def write_fd(self):
        """Let writes go straight to the fd (os.write, cheaper than a cffi
        uv_try_write on CPython) while the handle is open.  Only where
        libuv's stream is a POSIX fd, and only
        while nothing is queued in libuv (the caller checks): then
        uv_try_write is that same write(2).  On PyPy the cffi call is the
        cheaper one for memoryviews, so it keeps uv_try_write."""
        if _OS_WRITES and not self.closing:
            try:
                self.wfd = self.fileno()
            except OSError:
                self.wfd = -1

    def close(self):
        self.reading = False
        self.live = None
        self.backlog = None
        self.wfd = -1  # libuv closes the fd now: its number may be reused
        if self.in_alloc:
            if not self.closing:
                self.closing = True  # uv_close in after_alloc
                self._reconcile = True
            return
        super().close()

    def _on_close(self):
        if self._key >= 0:
            self.loop._read_batches.remove(self._key)
            self._key = -1
        super()._on_close()

    def shutdown(self):
        req = _new("uv_shutdown_t *")
        rc = lib.uvffi_shutdown(req, self.ptr)
        if rc < 0:
            raise exception_from_uv(rc)
        self.hold_request(req)

    def listen(self, backlog):
        rc = lib.uvffi_listen(self.ptr, backlog)
        if rc < 0:
            raise exception_from_uv(rc)

    def accept(self, client):
        # uv_accept adopts the accepted fd without libuv's duplicate check:
        # an idle add_reader poll must not hold its number (fdwatch.py)
        self.loop._fdwatch_flush_idle()
        rc = lib.uv_accept(self.ptr, client.ptr)
        if rc < 0:
            raise exception_from_uv(rc)

    def write_queue_size(self):
        return self.ptr.write_queue_size


class TCPStream(Stream):
    __slots__ = ()
    CTYPE = "uv_tcp_t *"

    def __init__(self, loop, flags=0):
        super().__init__(loop)
        if flags:
            loop._fdwatch_flush_idle()  # libuv opens a socket unchecked
            rc = lib.uv_tcp_init_ex(loop._uv_loop, self.ptr, flags)
        else:
            rc = lib.uv_tcp_init(loop._uv_loop, self.ptr)
        self._init_done(rc)

    def open(self, fd):
        rc = lib.uv_tcp_open(self.ptr, fd)
        if rc < 0:
            raise exception_from_uv(rc)


class PipeStream(Stream):
    __slots__ = ()
    CTYPE = "uv_pipe_t *"

    def __init__(self, loop, ipc=False):
        super().__init__(loop)
        self._init_done(lib.uv_pipe_init(loop._uv_loop, self.ptr, 1 if ipc else 0))

    def open(self, fd):
        rc = lib.uv_pipe_open(self.ptr, fd)
        if rc < 0:
            raise exception_from_uv(rc)


class TTYStream(Stream):
    __slots__ = ()
    CTYPE = "uv_tty_t *"

    def __init__(self, loop, fd, readable):
        super().__init__(loop)
        loop._fdwatch_flush_idle()  # uv_tty_init may reopen the tty unchecked
        self._init_done(lib.uv_tty_init(loop._uv_loop, self.ptr, fd, 1 if readable else 0))


# libuv's callbacks for these handles (registered on import; the module
# needs this one's names, hence last)
from . import streamcallbacks  # noqa: E402,F401
