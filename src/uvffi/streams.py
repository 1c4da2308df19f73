"""Stream handles (uv_tcp_t, uv_pipe_t, uv_tty_t) and the stream transport.

``Stream`` wraps a libuv stream handle: it owns the memory and routes
libuv's read/write/shutdown/connect/connection callbacks to bound methods
set by its owner.  ``StreamTransport`` is asyncio's stream transport
(``_SelectorSocketTransport``'s behaviour, message for message) on top of a
``Stream``; TCP, Unix sockets, pipes and subprocess pipes subclass it.

Fast paths (GUIDE section 4):
- reads land in the loop's read buffer (a C alloc callback; on a host's loop,
  the shim's per-thread buffer); one C->Python crossing per read, one
  ``bytes`` per ``data_received`` as asyncio makes;
- ``write`` first tries ``uv_try_write`` straight from the caller's buffer;
  only what the kernel did not take is copied into C memory and queued with
  ``uv_write``; while that write is in flight, later writes are coalesced in
  a Python buffer and sent as one request when it completes.
"""
import collections
import inspect
import logging
import os
import sys
import warnings

from asyncio import base_events, constants, futures, protocols, transports

from ._uv import ffi, lib
from ._callbacks import def_extern
from .errors import exception_from_uv
from .handles import UVHandle
from .transportbase import ClosingMixin, ReadingMixin

logger = logging.getLogger("asyncio")

_from_handle = ffi.from_handle
_from_buffer = ffi.from_buffer
_unpack = ffi.unpack
_buffer = ffi.buffer
_memoryview = memoryview
_os_write = os.write
_PYPY = sys.implementation.name == "pypy"
_OS_WRITES = os.name == "posix" and not _PYPY
_new = ffi.new
_new_unzeroed = ffi.new_allocator(should_clear_after_alloc=False)
_memmove = ffi.memmove
_try_write = lib.uvffi_try_write
_UV_EOF = lib.UV_EOF
_UV_EAGAIN = lib.UV_EAGAIN
_UV_ECANCELED = lib.UV_ECANCELED

# asyncio.Server counts its connections with _attach()/_detach(); from 3.13
# on they take the transport (kept in a WeakSet for close_clients()).
_SERVER_TAKES_TRANSPORT = len(
    inspect.signature(base_events.Server._attach).parameters) > 1


class Stream(UVHandle):
    """A libuv stream handle.  The owner sets ``on_read(nread, data)`` (data:
    a buffer of exactly nread bytes when nread > 0, valid during the call
    only: copy what must outlive it; else None),
    ``on_write(status)``, ``on_shutdown(status)``, ``on_connect(status)`` and
    ``on_connection(status)`` as it needs them.

    Fast path: while ``protocol`` is set (a plain asyncio Protocol), data
    goes straight to ``protocol.data_received`` from the read callback (or
    the loop's read batch, ``_on_reads``), and a failure of that call to
    ``on_data_failed(exc)``.

    On a loop uvffi created, reads arrive in batches after libuv's poll
    phase.  A read that was already in the batch when its stream stopped
    reading (the protocol paused it while an earlier read was delivered,
    say) is kept in ``backlog`` and delivered, in order and before anything
    newer, once reading resumes; closing drops it, as asyncio delivers
    nothing after close()."""

    __slots__ = ("on_read", "on_write", "on_shutdown", "on_connect",
                 "on_connection", "protocol", "on_data_failed", "_reqs",
                 "reading", "backlog", "_batched", "_key", "wfd")

    def __init__(self, loop):
        super().__init__(loop)
        self.on_read = self.on_write = self.on_shutdown = None
        self.on_connect = self.on_connection = None
        self.protocol = self.on_data_failed = None
        self._reqs = set()  # in-flight requests: alive until their callback
        self.reading = False
        self.backlog = None
        self.wfd = -1  # see write_fd()
        # batched reads find the stream by its handle->data (an int)
        self._batched = loop._read_view is not None
        if self._batched:
            self._key = int(ffi.cast("intptr_t", self._self_ref))
            loop._read_streams[self._key] = self

    def read_start(self):
        self.reading = True
        if self.backlog:
            # held reads first: libuv resumes once they are delivered
            self.loop.call_soon(self._deliver_backlog)
            return
        rc = self._read_start()
        if rc < 0:
            raise exception_from_uv(rc)

    def _read_start(self):
        if self._batched:
            rc = lib.uvffi_read_start_own(self.ptr)
        else:
            rc = lib.uvffi_read_start(self.ptr)
        if rc < 0:
            self.reading = False
        return rc

    def read_stop(self):
        self.reading = False
        if not self.closing:
            lib.uv_read_stop(self.ptr)

    def hold(self, nread, data):
        """Keep a batched read for later (see the class docstring)."""
        if self.backlog is None:
            self.backlog = collections.deque()
        self.backlog.append((nread, data))
        if self.reading and len(self.backlog) == 1:
            # still reading (its delivery was interrupted): deliver from the
            # ready queue, libuv paused so that nothing newer overtakes it
            lib.uv_read_stop(self.ptr)
            self.loop.call_soon(self._deliver_backlog)

    def _deliver_backlog(self):
        backlog = self.backlog
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
            else:
                self.on_read(nread, data)
        if self.reading and not self.closing and not backlog:
            rc = self._read_start()
            if rc < 0:
                self.on_read(rc, None)  # reported as a read error

    def write_fd(self):
        """Let writes go straight to the fd (os.write) while the handle is
        open.  Measured on CPython, per 1 KiB write to /dev/null: os.write
        256 ns, cffi uv_try_write 360 ns (538 ns with ffi.from_buffer for a
        memoryview).  Only where libuv's stream is a POSIX fd, and only
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
        self.backlog = None
        self.wfd = -1  # libuv closes the fd now: its number may be reused
        super().close()

    def _on_close(self):
        if self._batched:
            self.loop._read_streams.pop(self._key, None)
        super()._on_close()

    def shutdown(self):
        req = _new("uv_shutdown_t *")
        rc = lib.uvffi_shutdown(req, self.ptr)
        if rc < 0:
            raise exception_from_uv(rc)
        self._reqs.add(req)

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

    def _forget(self, req):
        self._reqs.discard(req)


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


# -- libuv callbacks -------------------------------------------------------------
# Each finds its Stream through handle->data and calls the owner's method.
# Exceptions the owner did not handle itself go to the loop (def_extern).

@def_extern("_uvffi_on_read")
def _on_read(data, nread, base):
    stream = _from_handle(data)
    if not stream.reading:
        # a large read on a batching loop, whose stream the batch delivered
        # just before it stopped: kept for later, as _on_reads does
        if not stream.closing:
            stream.hold(nread, _unpack(base, nread) if nread > 0 else None)
        return
    protocol = stream.protocol
    if protocol is not None and nread > 0:
        # one Python frame from libuv to the protocol (Stream's docstring)
        try:
            protocol.data_received(_unpack(base, nread))
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            stream.on_data_failed(exc)
    else:
        stream.on_read(nread, _memoryview(_buffer(base, nread)) if nread > 0 else None)


@def_extern("_uvffi_on_reads")
def _on_reads(data, count):
    """A batch of reads on a loop uvffi created (uvffi_stream.c): per read,
    the stream's key, nread and the data's offset in the loop's buffer.
    What _on_read does for one read, without a C->Python call each."""
    loop = _from_handle(data)
    view = loop._read_view
    streams = loop._read_streams
    # one list of the batch's numbers: cheaper than indexing the C array
    # three times per read
    batch = iter(loop._read_numbers(3 * count))
    for key, nread, offset in zip(batch, batch, batch):
        stream = streams[key]
        if not stream.reading:
            # stopped while this batch was being delivered
            if not stream.closing:
                stream.hold(nread, view[offset:offset + nread] if nread > 0 else None)
            continue
        protocol = stream.protocol
        try:
            if protocol is not None and nread > 0:
                try:
                    protocol.data_received(view[offset:offset + nread])
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException as exc:
                    stream.on_data_failed(exc)
            else:
                stream.on_read(nread, loop._read_mv[offset:offset + nread]
                               if nread > 0 else None)
        except (SystemExit, KeyboardInterrupt):
            # leaving the batch: what is left of it waits on its streams
            for key, nread, offset in zip(batch, batch, batch):
                stream = streams[key]
                if not stream.closing:
                    stream.hold(nread, view[offset:offset + nread] if nread > 0 else None)
            raise


@def_extern("_uvffi_write_cb")
def _write_cb(req, status):
    _from_handle(req.handle.data).on_write(status)


@def_extern("_uvffi_shutdown_cb")
def _shutdown_cb(req, status):
    obj = _from_handle(req.handle.data)
    obj._forget(req)
    if obj.on_shutdown is not None:
        obj.on_shutdown(status)


@def_extern("_uvffi_connect_cb")
def _connect_cb(req, status):
    obj = _from_handle(req.handle.data)
    obj._forget(req)
    obj.on_connect(status)


@def_extern("_uvffi_connection_cb")
def _connection_cb(server, status):
    _from_handle(server.data).on_connection(status)


# -- the transport -----------------------------------------------------------------

class StreamTransport(ReadingMixin, ClosingMixin, transports._FlowControlMixin,
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
        stream.on_data_failed = self._data_received_failed
        stream.on_write = self._on_write_done
        stream.on_shutdown = self._on_shutdown_done
        self._protocol_connected = False
        self.set_protocol(protocol)  # also routes the stream's reads

        self._server = server
        self._buffer = []         # writes waiting for the in-flight one
        self._buffer_size = 0
        self._inflight = None     # (uv_write_t, C buffer) of the write libuv has
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

        loop.call_soon(self._protocol.connection_made, self)
        # start reading only once connection_made() has run
        loop.call_soon(self._start_reading)
        if waiter is not None:
            loop.call_soon(futures._set_result_unless_cancelled, waiter, None)

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
            if isinstance(protocol, protocols.BufferedProtocol):
                stream.on_read = self._read_into_buffered
                stream.protocol = None
            else:
                stream.on_read = self._read_data_received
                stream.protocol = protocol
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

    def _read_into_buffered(self, nread, data):
        # libuv read into the loop's buffer; copy into the protocol's,
        # asking for more buffers while data is left: what asyncio's
        # recv_into loop gives the protocol, in one callback.
        if nread <= 0:
            self._on_read_status(nread)
            return
        if self._conn_lost:
            return
        protocol = self._protocol
        offset = 0
        while offset < nread:
            try:
                target = protocol.get_buffer(-1)
                size = len(target)
                if not size:
                    raise RuntimeError("get_buffer() returned an empty buffer")
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(
                    exc, "Fatal error: protocol.get_buffer() call failed.")
                return
            n = nread - offset
            if n > size:
                n = size
            try:
                if _PYPY:
                    # PyPy: ffi.memmove 93 ns per KiB, slice assignment 760
                    _memmove(target, data[offset:] if offset else data, n)
                else:
                    try:
                        # CPython: slice assignment 57 ns, ffi.memmove 130
                        target[:n] = data[offset:offset + n] if n != nread else data
                    except (TypeError, ValueError):
                        # other writable buffers (another item format, ...)
                        _memmove(target, bytes(data[offset:offset + n]), n)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal read error on socket transport")
                return
            offset += n
            try:
                protocol.buffer_updated(n)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(
                    exc, "Fatal error: protocol.buffer_updated() call failed.")
                return
            if self._conn_lost or self._protocol is not protocol:
                return

    def _on_eof(self):
        if self._loop.get_debug():
            logger.debug("%r received EOF", self)
        try:
            keep_open = self._protocol.eof_received()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(
                exc, "Fatal error: protocol.eof_received() call failed.")
            return
        if not keep_open:
            self.close()

    # -- writing -------------------------------------------------------------------

    def write(self, data):
        if (type(data) is not bytes and type(data) is not memoryview
                and not isinstance(data, (bytes, bytearray, memoryview))):
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
            # Fast path: straight from the caller's buffer, no copy.
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
            self._start_write(memoryview(data).cast("B")[n:], type(data) is bytes)
        else:
            self._buffer.append(bytes(data))
            self._buffer_size += len(data) if type(data) is bytes else memoryview(data).nbytes
        self._maybe_pause_protocol()

    def writelines(self, list_of_data):
        if self._eof:
            raise RuntimeError("Cannot call writelines() after write_eof()")
        if self._empty_waiter is not None:
            raise RuntimeError("unable to writelines; sendfile is in progress")
        data = b"".join(list_of_data)
        if data:
            self.write(data)

    def _start_write(self, data, immutable=False):
        """Hand *data* (a byte buffer) to libuv, kept alive with its request
        until the write callback: a view of it if it can never change (bytes,
        on CPython), else a copy in C memory (the caller may reuse a
        bytearray as soon as write() returns, as asyncio allows)."""
        size = len(data)
        if immutable and not _PYPY:
            cbuf = _from_buffer(data)  # no copy: the cdata holds the bytes
        else:
            cbuf = _new_unzeroed("char[]", size)  # overwritten at once
            _memmove(cbuf, data, size)
        req = _new("uv_write_t *")
        rc = lib.uvffi_write(req, self._stream.ptr, cbuf, size)
        if rc < 0:
            self._fatal_error(exception_from_uv(rc),
                              "Fatal write error on socket transport")
            return
        self._inflight = (req, cbuf)
        self._inflight_size = size

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
                self._start_write(data, True)  # bytes, joined or copied by write()
        self._maybe_resume_protocol()  # may write more
        if self._inflight is None and not self._buffer:
            if self._empty_waiter is not None and not self._empty_waiter.done():
                self._empty_waiter.set_result(None)
            if self._closing:
                if not self._conn_lost:
                    self._conn_lost += 1
                    self._call_connection_lost(None)
            elif self._eof:
                self._do_shutdown()

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
        stream.protocol = None
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
        if not self._has_pending_writes():
            self._empty_waiter.set_result(None)
        return self._empty_waiter

    def _reset_empty_waiter(self):
        self._empty_waiter = None

    def __del__(self, _warn=warnings.warn):
        if self._stream is not None and not self._stream.closing:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
