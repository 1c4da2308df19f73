"""connect_read_pipe / connect_write_pipe on uv_pipe_t.

The transports behave as asyncio's ``_UnixReadPipeTransport`` and
``_UnixWritePipeTransport``, which differ from socket transports: a read
pipe's EOF is ``eof_received()`` then ``connection_lost(None)`` whatever
``eof_received`` returns; ``close()`` on a write pipe is ``write_eof()``,
which closes the pipe once the buffer is flushed; a write pipe notices the
reader going away (pipes, FIFOs, sockets) and reports it as
``connection_lost(None)``, or ``BrokenPipeError`` if data was pending.

fd ownership: asyncio's transport takes the pipe object and closes it.
libuv closes the fd of a handle it closes, so libuv gets a duplicate of the
caller's fd and we close the caller's object ourselves: no fd is closed
twice.  Pipes our subprocess code made (``process.ChildPipe``) hand their fd
over instead of being duplicated.

The read side is a ``Stream``'s reads, as for sockets (in batches on a loop
uvffi created, one callback per read on a host's: handles/streamreads.py), given
to the protocol through ``on_read``; the write side reuses ``StreamTransport``'s ``uv_try_write`` fast path and coalesced
``uv_write`` requests.
"""
import errno
import os
import stat
import sys
import warnings
from asyncio import constants, transports

from .base import ReadingMixin, StreamContextMixin, report_fatal
from .._uv import lib
from ..handles.errors import exception_from_uv
from ..handles.poll import Poll, READABLE
from ..handles.stream import PipeStream, TTYStream
from .stream import StreamTransport, logger

_WINDOWS = sys.platform == "win32"
_UV_EOF = lib.UV_EOF


def _unpollable_char_device(fd):
    """True for a character device epoll refuses (/dev/null, /dev/zero...).
    libuv would abort the process at its next poll if it were asked to watch
    one, so such a pipe is never started (asyncio's add_reader would fail
    with the same PermissionError)."""
    try:
        import select
        epoll = select.epoll
    except (ImportError, AttributeError):
        return False  # kqueue/IOCP platforms: libuv copes (select thread)
    ep = epoll()
    try:
        ep.register(fd, select.EPOLLIN)
    except PermissionError:
        return True
    except OSError:
        return False
    finally:
        ep.close()
    return False


def _open_stream(loop, pipe, fileno, readable):
    """A libuv stream on (a duplicate of) *pipe*'s fd; libuv owns its fd."""
    take = getattr(pipe, "_uvffi_take_fd", None)
    fd = take() if take is not None else os.dup(fileno)
    try:
        if _WINDOWS and os.isatty(fd):
            stream = TTYStream(loop, fd, readable)
        else:
            stream = PipeStream(loop)
            try:
                stream.open(fd)
            except BaseException:
                stream.close()  # libuv did not take the fd: we close it below
                raise
    except BaseException:
        os.close(fd)
        raise
    return stream


class _PipeMixin:
    """What the two pipe transports share: the pipe object, repr, release."""

    _pipe = None
    _stream = None

    def _check_mode(self, message, allowed):
        mode = os.fstat(self._fileno).st_mode
        if not any(test(mode) for test in allowed):
            self._pipe = None
            self._fileno = None
            self._protocol = None
            raise ValueError(message)
        return mode

    def _repr_info(self):
        info = [self.__class__.__name__]
        if self._pipe is None:
            info.append("closed")
        elif self._closing:
            info.append("closing")
        info.append(f"fd={self._fileno}")
        return info

    def _release_pipe(self):
        """Close the libuv handle (and with it its fd) and the pipe object."""
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()
        pipe, self._pipe = self._pipe, None
        if pipe is not None:
            pipe.close()

    def __del__(self, _warn=warnings.warn):
        if self._pipe is not None:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            self._release_pipe()


class ReadPipeTransport(StreamContextMixin, ReadingMixin, _PipeMixin,
                        transports.ReadTransport):
    """asyncio's read pipe transport over a libuv pipe (or tty) handle."""

    max_size = 256 * 1024  # what libuv reads at once (the shim's buffer)

    def __init__(self, loop, pipe, protocol, waiter=None, extra=None):
        super().__init__(extra)
        self._extra["pipe"] = pipe
        self._loop = loop
        self._pipe = pipe
        self._fileno = pipe.fileno()
        self._protocol = protocol
        self._closing = False
        self._paused = False
        self._reading = False
        mode = self._check_mode("Pipe transport is for pipes/sockets only.",
                                (stat.S_ISFIFO, stat.S_ISSOCK, stat.S_ISCHR))
        self._dead_device = stat.S_ISCHR(mode) and _unpollable_char_device(self._fileno)
        try:
            self._stream = _open_stream(loop, pipe, self._fileno, True)
        except BaseException:
            self._pipe = None  # not ours: the caller keeps its pipe open
            raise
        self._stream.on_read = self._on_read
        self._take_context(self._stream)

        self._schedule_start(loop, waiter)

    def __repr__(self):
        info = self._repr_info()
        if self._pipe is not None and not self._loop.is_closed():
            info.append("polling" if self._reading else "idle")
        else:
            # asyncio's wording once its loop has no selector left
            info.append("open" if self._pipe is not None else "closed")
        return "<{}>".format(" ".join(info))

    def _start_reading(self):
        if self._reading or not self.is_reading() or self._stream is None:
            return
        if self._dead_device:
            # what asyncio's selector reports from add_reader's epoll_ctl
            exc = PermissionError(errno.EPERM, os.strerror(errno.EPERM))
            self._loop.call_exception_handler({
                "message": f"Exception in callback {self!r}._add_reader()",
                "exception": exc,
                "transport": self,
            })
            return
        try:
            self._stream.read_start()
        except OSError as exc:
            self._fatal_error(exc, "Fatal read error on pipe transport")
            return
        self._reading = True

    def _stop_reading(self):
        if self._reading:
            self._reading = False
            if self._stream is not None:
                self._stream.read_stop()

    def _on_read(self, nread, data):
        if nread > 0:
            data = bytes(data)  # a view of the loop's buffer: copied out
            try:
                self._protocol.data_received(data)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                # asyncio calls data_received from a Handle: the error goes
                # to the exception handler and the pipe stays open.
                self._loop.call_exception_handler({
                    "message": f"Exception in callback {self!r}._read_ready()",
                    "exception": exc,
                    "transport": self,
                    "protocol": self._protocol,
                })
        elif nread == _UV_EOF:
            if self._loop.get_debug():
                logger.info("%r was closed by peer", self)
            self._closing = True
            self._stop_reading()
            context = self._context
            self._loop.call_soon(self._protocol.eof_received, context=context)
            self._loop.call_soon(self._call_connection_lost, None,
                                 context=context)
        elif nread < 0:
            self._fatal_error(exception_from_uv(nread),
                              "Fatal read error on pipe transport")

    def set_protocol(self, protocol):
        self._protocol = protocol

    def get_protocol(self):
        return self._protocol

    def close(self):
        if not self._closing:
            self._close(None)

    def _fatal_error(self, exc, message="Fatal error on pipe transport"):
        # EIO is how a pty master reports that the slave side is gone
        report_fatal(self, exc, message,
                     isinstance(exc, OSError) and exc.errno == errno.EIO)
        self._close(exc)

    def _close(self, exc):
        self._closing = True
        self._stop_reading()
        if self._loop.is_closed():
            # closed after loop.close() (a subprocess transport collected
            # later): nothing can run connection_lost; just let go
            self._release_pipe()
            self._protocol = None
            self._loop = None
            return
        self._loop.call_soon(self._call_connection_lost, exc,
                             context=self._context)

    def _call_connection_lost(self, exc):
        if self._loop is None:
            return  # already done
        try:
            self._protocol.connection_lost(exc)
        finally:
            self._release_pipe()
            self._protocol = None
            self._loop = None


class _OwnFdPoll(Poll):
    """A poll on a duplicate fd of ours, closed once libuv let go of it."""

    __slots__ = ()

    def _on_close(self):
        super()._on_close()
        os.close(self.fd)


def _watch_fd(loop, fd, callback):
    """A poll handle on a duplicate of *fd* (closed with the handle)."""
    dup = os.dup(fd)
    try:
        return _OwnFdPoll(loop, dup, callback)
    except BaseException:
        os.close(dup)
        raise


class WritePipeTransport(_PipeMixin, StreamTransport):
    """asyncio's write pipe transport: StreamTransport's write machinery
    with the pipe transport's closing rules."""

    _eof_watch = None
    # A write-only transport, as asyncio's _UnixWritePipeTransport: its
    # reading methods are ReadTransport's NotImplementedError stubs (which
    # asyncio's inherits through Transport), not StreamTransport's; and
    # neither start_tls (TypeError) nor sendfile (RuntimeError) take it.
    is_reading = transports.ReadTransport.is_reading
    pause_reading = transports.ReadTransport.pause_reading
    resume_reading = transports.ReadTransport.resume_reading
    _start_tls_compatible = False
    _sendfile_compatible = constants._SendfileMode.UNSUPPORTED

    def __init__(self, loop, pipe, protocol, waiter=None, extra=None):
        self._fileno = pipe.fileno()
        self._pipe = pipe
        self._protocol = protocol
        mode = self._check_mode("Pipe transport is only for "
                                "pipes, sockets and character devices",
                                (stat.S_ISCHR, stat.S_ISFIFO, stat.S_ISSOCK))
        # A reader closing its end shows as "readable" (POLLERR/POLLHUP) on
        # our end; asyncio's selector loop watches for it on pipes and
        # sockets.  libuv will not read a write-only pipe handle and allows
        # one watcher per fd, so a uv_poll_t watches a duplicate fd.
        watch = not _WINDOWS and (stat.S_ISSOCK(mode) or (
            stat.S_ISFIFO(mode) and not sys.platform.startswith("aix")))
        self._lost = False
        try:
            stream = _open_stream(loop, pipe, self._fileno, False)
        except BaseException:
            self._pipe = None  # not ours: the caller keeps its pipe open
            raise
        try:
            super().__init__(loop, stream, protocol, waiter, extra)
        except BaseException:
            self._pipe = None
            stream.close()
            raise
        self._extra["pipe"] = pipe
        if watch:
            try:
                self._eof_watch = _watch_fd(loop, stream.fileno(),
                                            self._on_reader_gone)
            except OSError as exc:
                # as a failing add_reader in asyncio: reported, not fatal
                loop.call_exception_handler({
                    "message": "cannot watch the pipe for its reader closing",
                    "exception": exc, "transport": self})

    def _fd_for_registry(self):
        return None  # asyncio's pipe transports are not in loop._transports

    def __repr__(self):
        info = self._repr_info()
        if self._pipe is not None and not self._loop.is_closed():
            info.append("polling" if self._inflight is not None else "idle")
            info.append(f"bufsize={self.get_write_buffer_size()}")
        else:
            # asyncio's wording once its loop has no selector left
            info.append("open" if self._pipe is not None else "closed")
        return "<{}>".format(" ".join(info))

    def set_protocol(self, protocol):
        self._protocol = protocol
        self._protocol_connected = True

    # StreamTransport schedules this right after connection_made(): the
    # point where asyncio adds its reader for the peer-closed event.
    def _start_reading(self):
        watch = self._eof_watch
        if watch is not None and not watch.closing and not self._closing:
            watch.start(READABLE)

    def _stop_watch(self):
        watch, self._eof_watch = self._eof_watch, None
        if watch is not None:
            watch.close()

    def _on_reader_gone(self, status, events):
        # Deferred to the ready queue, where asyncio's selector loop runs its
        # reader callback: callbacks already queued (a task about to write)
        # come first, as there.
        watch = self._eof_watch
        if watch is not None:
            watch.stop()  # level-triggered: once is enough
            self._loop.call_soon(self._reader_gone, watch)

    def _reader_gone(self, watch):
        if self._eof_watch is not watch:
            return  # closed meanwhile: asyncio's reader was removed too
        if self._loop.get_debug():
            logger.info("%r was closed by peer", self)
        if self._has_pending_writes():
            self._close(BrokenPipeError())
        else:
            self._close()

    def get_write_buffer_size(self):
        if self._stream is None:
            return 0
        return super().get_write_buffer_size()

    def write(self, data):
        # asyncio asserts the type; kept for identical behaviour
        assert isinstance(data, (bytes, bytearray, memoryview)), repr(data)
        if not data:
            return
        if self._conn_lost or self._closing:
            if self._conn_lost >= constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                logger.warning("pipe closed by peer or "
                               "os.write(pipe, data) raised exception.")
            self._conn_lost += 1
            return
        super().write(data)

    def writelines(self, list_of_data):
        self.write(b"".join(list_of_data))

    def can_write_eof(self):
        return True

    def write_eof(self):
        if self._closing:
            return
        assert self._pipe
        self._closing = True
        if not self._has_pending_writes():
            self._stop_watch()
            self._lost = True
            if self._loop.is_closed():
                # collected after loop.close() (a subprocess transport's
                # __del__ closes its pipes): nothing can run any more, so
                # let go of the pipe quietly, as asyncio's transport does
                self._release(None)
                return
            self._loop.call_soon(self._call_connection_lost, None,
                                 context=self._context)
        # else: StreamTransport's write callback calls connection_lost(None)
        # once the buffer is flushed

    def close(self):
        if self._pipe is not None and not self._closing:
            # write_eof is all what we needed to close the write pipe
            self.write_eof()

    def abort(self):
        self._close(None)

    def _fatal_error(self, exc, message="Fatal error on pipe transport"):
        message = message.replace("socket", "pipe")
        self._conn_lost += 1
        report_fatal(self, exc, message, isinstance(exc, OSError))
        self._close(exc)

    def _force_close(self, exc):
        self._close(exc)

    def _close(self, exc=None):
        self._closing = True
        if self._lost:
            return
        self._lost = True
        # counted so that a write completing meanwhile does not report
        # connection_lost(None) before this one
        self._conn_lost += 1
        self._buffer.clear()
        self._buffer_size = 0
        self._stop_watch()
        self._loop.call_soon(self._call_connection_lost, exc,
                             context=self._context)

    def _call_connection_lost(self, exc):
        if self._loop is None:
            return  # already done
        self._lost = True
        self._stop_watch()
        super()._call_connection_lost(exc)

    def _on_closed(self):
        # StreamTransport._release has closed the libuv handle (its fd)
        pipe, self._pipe = self._pipe, None
        if pipe is not None:
            pipe.close()

    def __del__(self, _warn=warnings.warn):
        if self._pipe is not None:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            self._stop_watch()
            self._release_pipe()


class PipeMixin:
    """Loop hooks behind BaseEventLoop.connect_read_pipe/connect_write_pipe."""

    def _make_read_pipe_transport(self, pipe, protocol, waiter=None,
                                  extra=None):
        return ReadPipeTransport(self, pipe, protocol, waiter, extra)

    def _make_write_pipe_transport(self, pipe, protocol, waiter=None,
                                   extra=None):
        return WritePipeTransport(self, pipe, protocol, waiter, extra)
