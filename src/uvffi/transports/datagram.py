"""The datagram transport's protocol-facing half, and its poll-based engine.

``create_datagram_endpoint`` returns one transport API whatever the socket
family.  ``DatagramTransportBase`` holds what asyncio's
``_SelectorDatagramTransport`` defines independently of how bytes move: the
argument checks of ``sendto`` (same messages), the extra info, flow control
(``_FlowControlMixin``'s high/low water marks), close/abort and the order of
protocol callbacks.  An engine subclass moves the datagrams:

- ``udp.UDPTransport``: AF_INET/AF_INET6 on a libuv ``uv_udp_t``;
- ``PollDatagramTransport`` (here): any other family -- AF_UNIX datagram
  sockets above all -- whose addresses ``uv_udp_t`` cannot express
  faithfully (libuv reports no address length, so abstract and unnamed
  AF_UNIX peers would be garbled).  It watches the fd with ``uv_poll_t``
  and calls the socket's own ``recvfrom``/``sendto``, as asyncio does.
"""
import collections
import contextvars
import logging
import sys
import warnings

from asyncio import constants, futures, selector_events, transports

from .base import ClosingMixin, ReadingMixin, TransportSocket
from ..handles.poll import Poll, READABLE, WRITABLE

logger = logging.getLogger("asyncio")

# Python 3.13 sends empty datagrams and counts 8 header bytes per queued
# datagram in get_write_buffer_size(); older versions silently drop b"".
# Follow the interpreter we run on, so that code behaves as it does on the
# interpreter's own loop.
SEND_EMPTY = sys.version_info >= (3, 13)
HEADER_SIZE = 8 if sys.version_info >= (3, 13) else 0
# asyncio's datagram transports can pause reading since Python 3.11; before,
# is_reading/pause_reading/resume_reading raise NotImplementedError, and so
# do ours there.
CAN_PAUSE_READING = "pause_reading" in vars(selector_events._SelectorTransport)


class DatagramTransportBase(ReadingMixin, ClosingMixin, transports._FlowControlMixin,
                            transports.Transport, transports.DatagramTransport):
    """asyncio's datagram transport; subclasses supply the engine:
    ``_engine_open``, ``_engine_start_reading``, ``_engine_stop_reading``,
    ``_send_now``, ``_has_pending``, ``_engine_drop_pending`` and
    ``_engine_release``.

    Like asyncio's selector transport it is an ``asyncio.Transport`` (whose
    stream methods, ``write`` and co, raise NotImplementedError) and, as
    documented, an ``asyncio.DatagramTransport``."""

    max_size = 256 * 1024  # what asyncio passes to recvfrom()
    _sock = None  # set first: __del__ must work even if __init__ failed

    def __init__(self, loop, sock, protocol, address=None, waiter=None,
                 extra=None):
        super().__init__(extra, loop)
        # Every protocol callback runs in the context current now, the
        # endpoint's creation (as uvloop does; asyncio: the context of
        # whatever scheduled or triggered each callback), connection_lost
        # after a close() from elsewhere included (ClosingMixin).
        self._context = contextvars.copy_context()
        self._extra["socket"] = TransportSocket(sock)
        try:
            self._extra["sockname"] = sock.getsockname()
        except OSError:
            self._extra["sockname"] = None
        if "peername" not in self._extra:
            try:
                self._extra["peername"] = sock.getpeername()
            except OSError:
                self._extra["peername"] = None
        self._sock_fd = sock.fileno()
        self._address = address
        # A socket with a peer sends with send() (no address), as asyncio
        # does; an unnamed AF_UNIX peer (socketpair) is '' there, which
        # asyncio takes for "no peer" (sendto(data) then fails with a
        # TypeError): it is a peer all the same.
        self._connected = self._extra["peername"] is not None
        self._protocol_connected = False
        self.set_protocol(protocol)
        self._buffer_size = 0
        self._conn_lost = 0   # set when connection_lost() is scheduled
        self._closing = False
        self._paused = False
        self._reading = False
        try:
            self._engine_open(loop, sock)
        except BaseException:
            # The transport owns the socket from here on (asyncio's do too);
            # a transport that never came to life must not leak it.
            sock.close()
            raise
        self._sock = sock
        loop._transports[self._sock_fd] = self

        context = self._context
        loop.call_soon(self._protocol.connection_made, self, context=context)
        # start reading only once connection_made() has run
        loop.call_soon(self._start_reading, context=context)
        if waiter is not None:
            loop.call_soon(futures._set_result_unless_cancelled, waiter, None)

    def __repr__(self):
        info = [self.__class__.__name__]
        if self._sock is None:
            info.append("closed")
        elif self._closing:
            info.append("closing")
        info.append(f"fd={self._sock_fd}")
        if self._sock is not None:
            info.append("read=%s" % ("polling" if self._reading else "idle"))
            info.append("write=<%s, bufsize=%s>" % (
                "polling" if self._has_pending() else "idle",
                self.get_write_buffer_size()))
        return "<%s>" % " ".join(info)

    # -- protocol -------------------------------------------------------------

    def set_protocol(self, protocol):
        self._protocol = protocol
        self._protocol_connected = True

    def get_protocol(self):
        return self._protocol

    def _callback_failed(self, exc, what, loop=None, protocol=None):
        """A protocol callback raised: asyncio's loop would report it as a
        failed callback and keep the transport open; so do we."""
        (loop or self._loop).call_exception_handler({
            "message": f"Exception in callback {what}",
            "exception": exc,
            "transport": self,
            "protocol": protocol or self._protocol,
        })

    def _deliver(self, data, addr):
        """A datagram read in a libuv callback (outside the protocol's
        context): to the protocol, in its context.  (In a poll that defers
        I/O the handle calls later: handles/udp.py, handles/poll.py.)"""
        try:
            self._context.run(self._protocol.datagram_received, data, addr)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._callback_failed(exc, "protocol.datagram_received()")

    def _error_received(self, exc):
        # In a copy of the protocol's context: a failing sendto() reports
        # here too, maybe from inside a protocol callback, where the
        # context itself is entered already.
        self._context.copy().run(self._error_received_now, exc)

    def _error_received_now(self, exc):
        try:
            self._protocol.error_received(exc)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc2:
            self._callback_failed(exc2, "protocol.error_received()")

    # -- reading ---------------------------------------------------------------

    def _start_reading(self):
        if self._reading or self._closing or self._paused or self._sock is None:
            return
        try:
            self._engine_start_reading()
        except OSError as exc:
            self._fatal_error(exc, "Fatal read error on datagram transport")
            return
        self._reading = True

    def _stop_reading(self):
        if self._reading:
            self._reading = False
            self._engine_stop_reading()

    # -- writing -----------------------------------------------------------------

    def get_write_buffer_size(self):
        return self._buffer_size

    # pause_writing()/resume_writing() in the protocol's context too; in a
    # copy of it, since sendto() may be called from inside a protocol
    # callback, where that context is entered already
    def _maybe_pause_protocol(self):
        if (not self._protocol_paused
                and self.get_write_buffer_size() > self._high_water):
            self._context.copy().run(super()._maybe_pause_protocol)

    def _maybe_resume_protocol(self):
        if (self._protocol_paused
                and self.get_write_buffer_size() <= self._low_water):
            self._context.copy().run(super()._maybe_resume_protocol)

    def sendto(self, data, addr=None):
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data argument must be a bytes-like object, "
                            f"not {type(data).__name__!r}")
        if not data and not SEND_EMPTY:
            return
        if self._address:
            if addr not in (None, self._address):
                raise ValueError(
                    f"Invalid address: must be None or {self._address}")
            addr = self._address
        if self._conn_lost and (self._address or self._sock is None):
            # asyncio counts (and past a threshold logs) sends on a lost
            # connected transport; after connection_lost() an unconnected
            # one has no socket left either (asyncio then fails with an
            # AttributeError routed to the exception handler: we do not).
            if self._conn_lost >= constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                logger.warning("socket.send() raised exception.")
            self._conn_lost += 1
            return
        self._send_now(data, addr)

    def _write_failed(self, exc):
        """What asyncio does with an exception from send()/sendto()."""
        if isinstance(exc, OSError):
            self._error_received(exc)
        else:
            self._fatal_error(exc, "Fatal write error on datagram transport")

    def _drained(self):
        """The last queued datagram has left: finish a pending close()."""
        if self._closing and not self._conn_lost:
            self._conn_lost += 1
            loop, protocol = self._loop, self._protocol
            try:
                # (from a libuv callback: outside the protocol's context)
                self._context.run(self._call_connection_lost, None)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._callback_failed(exc, "protocol.connection_lost()",
                                      loop, protocol)

    # -- closing -------------------------------------------------------------------

    def _drop_pending(self):
        # queued datagrams are dropped, as asyncio clears its buffer
        self._buffer_size = 0
        self._engine_drop_pending()

    def _call_connection_lost(self, exc):
        try:
            if self._protocol_connected:
                self._protocol.connection_lost(exc)
        finally:
            self._release()

    def _release(self):
        sock = self._sock
        if sock is None:
            return
        # Stop libuv watching the fd before the fd number can be reused.
        self._engine_release()
        self._sock = None
        sock.close()
        loop = self._loop
        if loop._transports.get(self._sock_fd) is self:
            del loop._transports[self._sock_fd]
        self._protocol = None
        self._loop = None

    def __del__(self, _warn=warnings.warn):
        if self._sock is not None:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            # No libuv call here: a finaliser may run in any thread, or
            # after the loop's memory is gone.  The handle (and with it
            # this transport) stays alive while its loop is, so we get here
            # only once the loop was closed or is garbage itself.
            self._sock.close()


if not CAN_PAUSE_READING:
    # asyncio's own (NotImplementedError) versions, as before 3.11
    DatagramTransportBase.is_reading = transports.ReadTransport.is_reading
    DatagramTransportBase.pause_reading = transports.ReadTransport.pause_reading
    DatagramTransportBase.resume_reading = transports.ReadTransport.resume_reading


class PollDatagramTransport(DatagramTransportBase):
    """Datagram sockets of families other than IP, on ``uv_poll_t`` and the
    socket's own ``recvfrom``/``sendto`` (asyncio's selector transport, with
    libuv as the selector)."""

    _poll = None

    def _engine_open(self, loop, sock):
        self._queue = collections.deque()  # (bytes, addr) waiting for POLLOUT
        self._poll = Poll(loop, sock.fileno(), self._on_poll, defers_io=True)
        self._events = 0

    def _set_events(self, events):
        if events == self._events:
            return
        self._events = events
        if events:
            self._poll.start(events)
        else:
            self._poll.stop()

    def _engine_start_reading(self):
        self._set_events(self._events | READABLE)

    def _engine_stop_reading(self):
        poll = self._poll
        if poll is not None and not poll.closing:
            self._set_events(self._events & ~READABLE)

    def _has_pending(self):
        return bool(self._queue)

    def _engine_drop_pending(self):
        self._queue.clear()
        if self._poll is not None and not self._poll.closing:
            self._set_events(self._events & ~WRITABLE)

    def _engine_release(self):
        poll = self._poll
        if poll is not None:
            self._poll = None
            poll.close()

    def _on_poll(self, status, events):
        # A poll error (status < 0) is left for recvfrom/sendto to report.
        try:
            if status < 0:
                events = self._events
            if events & READABLE and self._reading:
                self._read_ready()
            if events & WRITABLE and self._queue and self._sock is not None:
                self._write_ready()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            if self._loop is not None:
                self._fatal_error(exc, "Fatal error on datagram transport")

    def _read_ready(self):
        if self._conn_lost:
            return
        try:
            data, addr = self._sock.recvfrom(self.max_size)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._error_received(exc)
            return
        self._deliver(data, addr)

    def _send_now(self, data, addr):
        if not self._queue:
            try:
                if self._connected:
                    self._sock.send(data)
                else:
                    self._sock.sendto(data, addr)
                return
            except (BlockingIOError, InterruptedError):
                self._set_events(self._events | WRITABLE)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._write_failed(exc)
                return
        data = bytes(data)  # what we keep must not change under us
        self._queue.append((data, addr))
        self._buffer_size += len(data) + HEADER_SIZE
        self._maybe_pause_protocol()

    def _write_ready(self):
        queue = self._queue
        while queue:
            data, addr = queue[0]
            try:
                if self._connected:
                    self._sock.send(data)
                else:
                    self._sock.sendto(data, addr)
            except (BlockingIOError, InterruptedError):
                return  # still full: wait for the next POLLOUT
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                # this datagram is gone either way (asyncio drops it too)
                queue.popleft()
                self._buffer_size -= len(data) + HEADER_SIZE
                self._write_failed(exc)
                return
            queue.popleft()
            self._buffer_size -= len(data) + HEADER_SIZE
        self._maybe_resume_protocol()  # may queue more
        if not queue:
            if self._poll is not None and not self._poll.closing:
                self._set_events(self._events & ~WRITABLE)
            self._drained()
