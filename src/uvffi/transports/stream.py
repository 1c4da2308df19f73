"""asyncio's stream transport on a libuv stream handle.

``StreamTransport`` is asyncio's stream transport
(``_SelectorSocketTransport``'s behaviour, message for message) on top of a
``handles.stream.Stream``; TCP, Unix sockets, pipes and subprocess pipes
subclass it.

Fast paths:
- reads: the stream decides how they come (handles/streamreads.py,
  streamcallbacks.py: batched reads, one ``bytes`` per ``data_received``
  as asyncio makes); this transport supplies the protocol calls, with
  bufferedreads.py and largereads.py;
- ``write`` goes straight from the caller's buffer to the fd (``os.write``
  on CPython/POSIX, ``uv_try_write`` elsewhere) while nothing is queued;
  only what the kernel did not take is copied into C memory and queued with
  ``uv_write``; while that write is in flight, later writes are coalesced in
  a Python buffer and sent as one request when it completes.
"""
import inspect
import logging
import os
import sys
import warnings

from asyncio import base_events, constants, transports

from .._uv import ffi, lib
from .bufferedreads import BufferedReadsMixin
from .largereads import LargeReadsMixin
from ..handles.streamreads import read_fd
from ..handles.core import new_unzeroed as _new_unzeroed
from ..handles.errors import exception_from_uv
from .base import (ClosingMixin, ReadingMixin, StreamContextMixin,
                            is_buffered_protocol)

logger = logging.getLogger("asyncio")

_from_buffer = ffi.from_buffer
_os_write = os.write
_PYPY = sys.implementation.name == "pypy"
_new = ffi.new
_memmove = ffi.memmove
# PyPy's GC may move a small object (out of the nursery) while libuv still
# points at it; objects this large are allocated outside the nursery and
# never move, so their address can be handed to libuv as on CPython.
_PYPY_UNMOVED_FROM = 256 * 1024
_try_write = lib.uvffi_try_write
_pending_error = lib.uvffi_stream_pending_error
_UV_EOF = lib.UV_EOF
_UV_EAGAIN = lib.UV_EAGAIN
_UV_ECANCELED = lib.UV_ECANCELED

# asyncio.Server counts its connections with _attach()/_detach(); from 3.13
# on they take the transport (kept in a WeakSet for close_clients()).
_SERVER_TAKES_TRANSPORT = len(
    inspect.signature(base_events.Server._attach).parameters) > 1


# -- the transport -----------------------------------------------------------------

class StreamTransport(StreamContextMixin, ReadingMixin, ClosingMixin,
                      BufferedReadsMixin,
                      LargeReadsMixin, transports._FlowControlMixin,
                      transports.Transport):
    """asyncio's stream transport over a libuv ``Stream``.

    Subclasses fill ``_extra`` (socket, sockname, peername, pipe ...) and may
    override ``_fd_for_registry`` and ``_on_closed``.
    """

    _start_tls_compatible = True
    _sendfile_compatible = constants._SendfileMode.TRY_NATIVE
    _stream = None  # set first: __del__ must work even if __init__ failed

    def __init__(self, loop, stream, protocol, waiter=None, extra=None,
                 server=None):
        super().__init__(extra, loop)
        self._stream = stream
        self._ptr = stream.ptr  # the write fast path's handle pointer
        self._take_context(stream)
        stream.on_data_failed = self._data_received_failed
        stream.on_write = self._on_write_done
        stream.on_shutdown = self._on_shutdown_done
        stream.on_failure = self._fatal_error
        self._rfd = read_fd(stream)  # self reads' fd, or -1
        self._protocol_connected = False
        self.set_protocol(protocol)  # also routes the stream's reads

        self._server = server
        self._buffer = []         # writes waiting for the in-flight one
        self._buffer_size = 0
        # the uv_write_t libuv has (held with its buffer in the stream's reqs)
        self._inflight = None
        self._inflight_size = 0
        self._conn_lost = 0
        self._closing = False
        self._paused = False
        self._reading = False
        self._eof = False
        self._empty_waiter = None
        self._fd = self._fd_for_registry()
        # the write fast path's fd: -1 once the handle closes (Stream.close)
        stream.write_fd()
        self._wstream = stream
        if server is not None:
            if _SERVER_TAKES_TRANSPORT:
                server._attach(self)
            else:
                server._attach()
        if self._fd is not None:
            loop._transports[self._fd] = self

        self._schedule_start(loop, waiter)

    def _fd_for_registry(self):
        try:
            return self._stream.fileno()
        except OSError:
            return None

    def __repr__(self):
        info = [self.__class__.__name__]
        if self._stream is None:
            info.append("closed")
        elif self._closing:
            info.append("closing")
        if self._fd is not None:
            info.append("fd=%s" % self._fd)
        if self._stream is not None:
            info.append("read=%s" % ("polling" if self._reading else "idle"))
            info.append("write=<%s, bufsize=%s>" % (
                "polling" if self._inflight is not None else "idle",
                self.get_write_buffer_size()))
        return "<%s>" % " ".join(info)

    # -- protocol --------------------------------------------------------------

    def set_protocol(self, protocol):
        # libuv's read callback calls the method for this kind of protocol
        # directly: one Python frame per read, no dispatch on the way.
        stream = self._stream
        if stream is not None:
            buffered = is_buffered_protocol(protocol)
            if buffered:
                stream.on_read = self._read_into_buffered
                stream.on_alloc = self._get_read_buffer
                stream.on_filled = self._read_buffer_filled
                stream.on_self_read = self._read_self
            else:
                stream.on_read = self._read_data_received
                stream.on_self_read = self._read_self_data
            try:
                stream.set_protocol(protocol, buffered)
            except OSError as exc:
                self._fatal_error(exc, "Fatal read error on socket transport")
        self._protocol = protocol
        self._protocol_connected = True

    def get_protocol(self):
        return self._protocol

    # -- reading -----------------------------------------------------------------

    def _start_reading(self):
        if self._reading or not self.is_reading() or self._stream is None:
            return
        try:
            self._stream.read_start()
        except OSError as exc:
            self._fatal_error(exc, "Fatal read error on socket transport")
            return
        self._reading = True

    def _stop_reading(self):
        if self._reading:
            self._reading = False
            self._stream.read_stop()

    def _on_read_status(self, nread):
        """A read callback without data: EOF, an error, or nothing (0)."""
        if nread < 0:
            if nread == _UV_EOF and self._stream is not None:
                # a reset that libuv reported as EOF (see the shim's
                # uvffi_stream_pending_error): asyncio's loop reports it
                nread = _pending_error(self._stream.ptr) or nread
            if nread == _UV_EOF:
                self._stop_reading()
                self._on_eof()
            elif nread != _UV_EAGAIN:
                self._stop_reading()
                self._fatal_error(exception_from_uv(nread),
                                  "Fatal read error on socket transport")

    def _read_data_received(self, nread, data):
        if nread <= 0:
            self._on_read_status(nread)
            return
        if self._conn_lost:
            return
        try:
            self._protocol.data_received(bytes(data))
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._data_received_failed(exc)

    def _data_received_failed(self, exc):
        self._fatal_error(exc, "Fatal error: protocol.data_received() call failed.")

    def _on_eof(self):
        if self._loop.get_debug():
            logger.debug("%r received EOF", self)
        try:
            keep_open = self._protocol.eof_received()
        except (SystemExit, KeyboardInterrupt):
            # asyncio's reader stays registered: its next poll reports the
            # EOF again (a second eof_received()).  libuv stopped reading
            # at EOF, so it is restarted, or the transport never closes.
            self._start_reading()
            raise
        except BaseException as exc:
            self._fatal_error(
                exc, "Fatal error: protocol.eof_received() call failed.")
            return
        if not keep_open:
            self.close()

    # -- writing -------------------------------------------------------------------

    def write(self, data):
        # Fast path: bytes or a memoryview, straight to the fd.  The
        # stream's wfd is -1 unless a direct write is all write() has to
        # do: nothing queued, no write_eof(), no sendfile, not closing (see
        # _close_write_gate), and os.write usable (Stream.write_fd).  The
        # two kinds have a branch each: fewer bytecodes for the common one.
        if type(data) is bytes:
            wfd = self._wstream.wfd
            if wfd >= 0:
                try:
                    n = _os_write(wfd, data)
                except (BlockingIOError, InterruptedError):
                    n = 0
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException as exc:
                    self._fatal_error(exc, "Fatal write error on socket transport")
                    return
                if n != len(data):
                    self._write_rest(data, n)
                return
        elif type(data) is memoryview:
            wfd = self._wstream.wfd
            if wfd >= 0:
                try:
                    n = _os_write(wfd, data)
                except (BlockingIOError, InterruptedError):
                    n = 0
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException as exc:
                    self._fatal_error(exc, "Fatal write error on socket transport")
                    return
                if n != data.nbytes:
                    self._write_rest(data, n)
                return
        self._write_general(data)

    def _write_rest(self, data, n):
        """What the kernel did not take of a fast-path write, to libuv."""
        self._start_write(data, n)
        self._maybe_pause_protocol()

    def _write_general(self, data):
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data argument must be a bytes-like object, "
                            f"not {type(data).__name__!r}")
        if self._eof:
            raise RuntimeError("Cannot call write() after write_eof()")
        if self._empty_waiter is not None:
            raise RuntimeError("unable to write; sendfile is in progress")
        if not data:
            return
        if self._conn_lost:
            if self._conn_lost >= constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                logger.warning("socket.send() raised exception.")
            self._conn_lost += 1
            return

        if self._inflight is None and not self._buffer:
            # straight from the caller's buffer, no copy
            if type(data) is bytes:
                size = len(data)
            else:
                size = data.nbytes if type(data) is memoryview else memoryview(data).nbytes
            wfd = self._wstream.wfd
            if wfd >= 0:
                try:
                    n = _os_write(wfd, data)
                except (BlockingIOError, InterruptedError):
                    n = 0
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException as exc:
                    self._fatal_error(exc, "Fatal write error on socket transport")
                    return
            elif type(data) is bytes:
                n = _try_write(self._ptr, data, size)
            else:
                n = _try_write(self._ptr, _from_buffer(data), size)
            if n == size:
                return
            if n < 0:
                if n != _UV_EAGAIN:
                    self._fatal_error(exception_from_uv(n),
                                      "Fatal write error on socket transport")
                    return
                n = 0
            self._start_write(data, n, size)
        else:
            self._buffer.append(bytes(data))
            self._buffer_size += len(data) if type(data) is bytes else memoryview(data).nbytes
        self._maybe_pause_protocol()

    # The write gate: Stream.wfd doubles as "write() may go straight to the
    # fd".  Closed (-1) by every state that needs write()'s general path,
    # reopened only when none of them holds any more; the stream itself
    # also closes it when the handle closes (its fd number may be reused).
    def _close_write_gate(self):
        self._wstream.wfd = -1

    def _open_write_gate(self):
        if (self._inflight is None and not self._buffer and not self._closing
                and not self._eof and self._empty_waiter is None
                and not self._conn_lost and self._stream is not None):
            self._stream.write_fd()

    def close(self):
        super().close()
        self._close_write_gate()

    def _force_close(self, exc):
        super()._force_close(exc)
        self._close_write_gate()

    def writelines(self, list_of_data):
        if self._eof:
            raise RuntimeError("Cannot call writelines() after write_eof()")
        if self._empty_waiter is not None:
            raise RuntimeError("unable to writelines; sendfile is in progress")
        data = b"".join(list_of_data)
        if data:
            self.write(data)

    def _start_write(self, data, offset=0, size=-1):
        """Hand *data* (a byte buffer) from *offset* on to libuv, kept alive
        with its request until the write callback: the buffer itself if it
        can never change (bytes, on CPython), else a copy in C memory (the
        caller may reuse a bytearray as soon as write() returns, as asyncio
        allows).  The tail is addressed through a pointer into the whole
        buffer, never through a memoryview slice: copying out of a sliced or
        cast memoryview goes byte by byte on PyPy."""
        if size < 0:
            size = len(data) if type(data) is bytes else memoryview(data).nbytes
        size -= offset
        whole = _from_buffer(data)
        if type(data) is bytes and (not _PYPY or size >= _PYPY_UNMOVED_FROM):
            keep = whole  # no copy: the cdata holds the bytes
            cbuf = whole + offset if offset else whole
        else:
            keep = cbuf = _new_unzeroed("char[]", size)  # overwritten at once
            _memmove(cbuf, whole + offset if offset else whole, size)
        req = _new("uv_write_t *")
        rc = lib.uvffi_write(req, self._stream.ptr, cbuf, size)
        if rc < 0:
            self._fatal_error(exception_from_uv(rc),
                              "Fatal write error on socket transport")
            return
        # Stream.hold_request(req, keep), inlined: a call per write is measurable
        self._stream.reqs[req] = keep
        self._inflight = req
        self._inflight_size = size
        self._close_write_gate()

    def _on_write_done(self, status):
        self._inflight = None
        self._inflight_size = 0
        if status < 0:
            self._buffer.clear()
            self._buffer_size = 0
            if status == _UV_ECANCELED or self._stream is None:
                return  # the handle is closing; connection_lost is on its way
            exc = exception_from_uv(status)
            self._fatal_error(exc, "Fatal write error on socket transport")
            if self._empty_waiter is not None and not self._empty_waiter.done():
                self._empty_waiter.set_exception(exc)
            return
        if self._buffer:
            chunks = self._buffer
            self._buffer = []
            self._buffer_size = 0
            data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            if not self._conn_lost:
                self._start_write(data)  # bytes, joined or copied by write()
        self._maybe_resume_protocol()  # may write more
        if self._inflight is None and not self._buffer:
            self._open_write_gate()
            if self._empty_waiter is not None and not self._empty_waiter.done():
                self._empty_waiter.set_result(None)
            if self._closing:
                if not self._conn_lost:
                    self._conn_lost += 1
                    self._call_connection_lost(None)
            elif self._eof:
                self._do_shutdown()

    def _maybe_pause_protocol(self):
        # pause_writing() in the protocol's context, as its other
        # callbacks; in a copy of it, since write() may be called from
        # inside one of them, where that context is already entered
        if (not self._protocol_paused
                and self.get_write_buffer_size() > self._high_water):
            self._context.copy().run(super()._maybe_pause_protocol)

    def get_write_buffer_size(self):
        inflight = self._inflight_size
        if inflight:
            stream = self._stream
            # libuv's count shrinks as the kernel takes partial writes
            inflight = stream.ptr.write_queue_size if stream is not None else 0
        return inflight + self._buffer_size

    def _has_pending_writes(self):
        return self._inflight is not None or bool(self._buffer)

    _has_pending = _has_pending_writes  # ClosingMixin's hook

    def _drop_pending(self):
        # abort: forget what is not yet with libuv, as asyncio clears its buffer
        if self._buffer:
            self._buffer.clear()
            self._buffer_size = 0

    def write_eof(self):
        if self._closing or self._eof:
            return
        self._eof = True
        self._close_write_gate()
        if not self._has_pending_writes():
            self._do_shutdown()

    def _do_shutdown(self):
        try:
            self._stream.shutdown()
        except OSError as exc:
            if self._loop.get_debug():
                logger.debug("%r: shutdown failed: %s", self, exc)

    def _on_shutdown_done(self, status):
        # A failed shutdown (peer gone) surfaces as a read error or EOF.
        pass

    def can_write_eof(self):
        return True

    # -- closing ----------------------------------------------------------------------

    def _call_connection_lost(self, exc):
        try:
            if self._protocol_connected:
                self._protocol.connection_lost(exc)
        finally:
            self._release(exc)

    def _release(self, exc):
        """Close the libuv handle (and with it the fd) and drop references."""
        stream = self._stream
        if stream is None:
            return
        self._stream = None
        stream.set_protocol(None)
        # an in-flight write is cancelled by the close (ECANCELED)
        stream.close()
        if self._fd is not None and self._loop is not None:
            if self._loop._transports.get(self._fd) is self:
                del self._loop._transports[self._fd]
        self._on_closed()
        self._protocol = None
        self._loop = None
        server = self._server
        if server is not None:
            self._server = None
            if _SERVER_TAKES_TRANSPORT:
                server._detach(self)
            else:
                server._detach()
        if self._empty_waiter is not None and not self._empty_waiter.done():
            self._empty_waiter.set_exception(
                ConnectionError("Connection is closed by peer"))

    def _on_closed(self):
        """Subclasses release what they own beside the handle (a socket object)."""

    # -- sendfile fallback support (BaseEventLoop._sendfile_fallback) -----------

    def _make_empty_waiter(self):
        if self._empty_waiter is not None:
            raise RuntimeError("Empty waiter is already set")
        self._empty_waiter = self._loop.create_future()
        self._close_write_gate()
        if not self._has_pending_writes():
            self._empty_waiter.set_result(None)
        return self._empty_waiter

    def _reset_empty_waiter(self):
        self._empty_waiter = None
        self._open_write_gate()

    def __del__(self, _warn=warnings.warn):
        if self._stream is not None and not self._stream.closing:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
