"""What uvffi's transports share, as asyncio's own transports behave.

Stream, datagram and pipe transports each keep their I/O engine; the
reading switch and the closing protocol are the same everywhere and live
here once.  A class using these mixins provides ``_loop``, ``_protocol``,
``_closing``, ``_paused``, ``_conn_lost``, ``_start_reading()``,
``_stop_reading()`` and ``_call_connection_lost(exc)``.
"""
import contextvars
import logging
from asyncio import futures, protocols, trsock

logger = logging.getLogger("asyncio")


def is_buffered_protocol(protocol):
    """Whether reads go to get_buffer()/buffer_updated(): an
    asyncio.BufferedProtocol, or any protocol that has both and is no
    asyncio.Protocol (as uvloop decides; asyncio only looks at the class,
    and calls a duck-typed one's missing data_received)."""
    if isinstance(protocol, protocols.BufferedProtocol):
        return True
    return (not isinstance(protocol, protocols.Protocol)
            and hasattr(protocol, "get_buffer")
            and hasattr(protocol, "buffer_updated"))


def report_fatal(transport, exc, message, quiet):
    """How asyncio's transports report a fatal error: *quiet* ones (an
    OSError, usually: the peer went away) only in a debug log, the rest to
    the loop's exception handler."""
    loop = transport._loop
    if quiet:
        if loop.get_debug():
            logger.debug("%r: %s", transport, message, exc_info=True)
    else:
        loop.call_exception_handler({
            "message": message,
            "exception": exc,
            "transport": transport,
            "protocol": transport._protocol,
        })


class TransportSocket(trsock.TransportSocket):
    """asyncio's TransportSocket, whose repr names the family and type
    (``AF_UNIX``, ``SOCK_STREAM``) where CPython 3.11+ prints bare numbers
    (its socket enums' str() became int's)."""

    __slots__ = ()

    def __repr__(self):
        text = super().__repr__()
        for field, value in (("family", self.family), ("type", self.type)):
            name = getattr(value, "name", None)
            if name is not None:
                named = "%s=%s.%s" % (field, type(value).__name__, name)
                text = text.replace("%s=%s," % (field, value), named + ",", 1)
        return text


class StreamContextMixin:
    """The protocol's context, for a transport over a handles.stream.Stream:
    taken when the transport is made, as uvloop does (asyncio: the context
    of each callback's registration); the stream runs libuv's callbacks in
    it and tells the transport when it gives it a copy of its own
    (Stream.io_polluted)."""

    def _take_context(self, stream):
        self._context = contextvars.copy_context()
        stream.on_context = self._set_context
        stream.use_context(self._context)

    def _set_context(self, context):
        self._context = context

    def _schedule_start(self, loop, waiter):
        """connection_made(), then reading, then the waiter, as asyncio's
        transports start."""
        context = self._context
        loop.call_soon(self._call_connection_made, context=context)
        loop.call_soon(self._start_reading, context=context)
        if waiter is not None:
            loop.call_soon(futures._set_result_unless_cancelled, waiter, None)

    def _call_connection_made(self):
        self._protocol.connection_made(self)
        stream = self._stream
        if stream is not None:
            stream.context_settled()  # it ran in the transport's context


class ReadingMixin:
    """is_closing / is_reading / pause_reading / resume_reading."""

    def is_closing(self):
        return self._closing

    def is_reading(self):
        return not self._closing and not self._paused

    def pause_reading(self):
        if not self.is_reading():
            return
        self._paused = True
        self._stop_reading()
        if self._loop.get_debug():
            logger.debug("%r pauses reading", self)

    def resume_reading(self):
        if self._closing or not self._paused:
            return
        self._paused = False
        self._start_reading()
        if self._loop.get_debug():
            logger.debug("%r resumes reading", self)


class ClosingMixin:
    """close / abort / _fatal_error / _force_close of asyncio's selector
    transports.  Hooks: ``_has_pending()`` (data still queued to send: close
    waits for it) and ``_drop_pending()`` (abort forgets it).
    ``connection_lost`` runs in ``_context``, the protocol's context, when
    the transport has one (not in the context of whoever closed it)."""

    _context = None

    def close(self):
        if self._closing:
            return
        self._closing = True
        self._stop_reading()
        if not self._has_pending():
            self._conn_lost += 1
            self._loop.call_soon(self._call_connection_lost, None,
                                 context=self._context)
        # else: the engine calls _call_connection_lost once the queue drained

    def abort(self):
        self._force_close(None)

    def _fatal_error(self, exc, message="Fatal error on transport"):
        report_fatal(self, exc, message, isinstance(exc, OSError))
        self._force_close(exc)

    def _force_close(self, exc):
        if self._conn_lost:
            return
        self._drop_pending()
        if not self._closing:
            self._closing = True
            self._stop_reading()
        self._conn_lost += 1
        self._loop.call_soon(self._call_connection_lost, exc,
                             context=self._context)
