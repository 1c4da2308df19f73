"""Stream handles (uv_tcp_t, uv_pipe_t, uv_tty_t).

``Stream`` wraps a libuv stream handle: it owns the memory, its reading
(the state machine of streamreads.py, its base class) and its owner's
context; libuv's read/write/shutdown/connect/connection callbacks
(streamcallbacks.py) reach the bound methods its owner sets
(``transports.stream.StreamTransport``, servers, pipes).
"""
import contextvars
import os
import sys

from .._uv import ffi, lib
from .errors import exception_from_uv
from .streamreads import StreamReads, _READ_BATCH

_new = ffi.new
# os.write is the cheaper way to an fd on CPython (Stream.write_fd)
_OS_WRITES = os.name == "posix" and sys.implementation.name != "pypy"


class Stream(StreamReads):
    """A libuv stream handle.  Besides the read side (StreamReads), the
    owner sets ``on_write(status)``, ``on_shutdown(status)``,
    ``on_connect(status)`` and ``on_connection(status)`` as it needs them,
    and ``on_failure(exc, message)`` for what those raise."""

    __slots__ = ("on_write", "on_shutdown", "on_connect", "on_connection",
                 "on_failure", "_key", "_box", "wfd", "context", "on_context")

    def __init__(self, loop):
        super().__init__(loop)
        self.on_write = self.on_shutdown = None
        self.on_connect = self.on_connection = None
        # on_failure(exc, message): where a failure of the callbacks above
        # goes (callbacks.report_failure); None: the loop's handler
        self.on_failure = None
        self.reqs = {}  # requests in flight (core.py's docstring)
        self.wfd = -1  # see write_fd()
        # batched reads find the stream by its key (_init_done)
        self._key = -1
        # The owner's contextvars context (its creation context), in which
        # libuv's callbacks call it (run_in_context).  ``plain``: that
        # context has no variables, and the loop runs libuv inside its own
        # empty I/O context (scheduler.py), so the read callbacks may call
        # the owner directly there: a context switch per read costs more
        # than the rest of an echo's round trip.  Set by use_context().
        self.context = None
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
        loop._uv_want()  # a sleeping loop polls on in a fresh context
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
        self.wfd = -1  # libuv closes the fd now: its number may be reused
        if self._end_reads():  # (in libuv's alloc callback: after_alloc closes)
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
