"""The loop's ``sock_*`` coroutines, on the fd watching of ``fdwatch.py``.

Each method first tries the socket call right away; only when the kernel
says "would block" does it wait for the fd and retry from there, as
asyncio's selector loop does.  A plain ``socket.socket`` waits through its
fd's ``SockWait`` (fdwatch.py): one reader (writer) per poll, reused by
every call on that fd, which the poll's callback runs in place; the call's
future, socket and operation are stored on it, and the coroutine itself
undoes the wait when it ends otherwise (cancelled, closed), so a call makes
no Handle, partial or done callback, and the poll parked after one call is
taken back by the next.  Socket subclasses and look-alikes, and debug
mode, keep asyncio's way (``_sock_wait_handle``: a Handle per call, run
from the ready queue in the caller's context, removed by a done callback).
Either way a newer call on the same fd replaces the waiting one, which
then waits until cancelled, as in selector_events.

Behaviour (exceptions, messages, what is checked in debug mode only) is
CPython's ``selector_events``/``unix_events``, with one deliberate
difference: while a call waits on a socket, the loop holds a reference to
the socket's fd (``socket._io_refs``, what ``makefile()`` objects hold), so
``sock.close()`` meanwhile only marks the socket closed and the fd is closed
when the call finishes (result, error or cancellation) or the loop closes.
On asyncio's loop the fd closes at once and the call waits forever: epoll
forgets a closed fd, and the number may be reused by another file while
the watch is still on it, which libuv cannot tolerate (see fdwatch.py).
uvloop holds the fd in the same way.
"""
import errno
import functools
import io
import os
import socket
import sys
from asyncio import base_events, exceptions

from .._uv import ffi, lib

_check_ssl_socket = base_events._check_ssl_socket
_RETRY = (BlockingIOError, InterruptedError)
_SOCKET = socket.socket
# socket.recv(n) allocates n bytes, receives into them and shrinks them to
# what came; above glibc's mmap threshold (128 KiB) that is an mmap, an
# mremap and a munmap on every call, many times the cost of receiving into
# a kept buffer and copying out what came.  So for such n, sock_recv
# receives into a per-loop buffer (kept up to _SCRATCH_MAX) and returns a
# copy of what came: the same bytes, as asyncio's sock.recv(n) gives them.
# Only for plain sockets: a subclass's own recv() is called.  On PyPy that
# copy (bytes of a memoryview slice goes byte by byte) is the slow part:
# there the buffer is C memory and the shim receives into it
# (uvffi_sock_recv).  Figures: docs/performance-notes.md, "sock_* methods".
_SCRATCH_FROM = 64 * 1024
_SCRATCH_MAX = 1024 * 1024
_C_SCRATCH = sys.implementation.name == "pypy" and os.name == "posix"
_sock_recv_c = lib.uvffi_sock_recv
# sock_sendall's retries send a window of what is left, not all of it:
# PyPy's socket.send() copies the whole memoryview slice it is given, and
# that per-call copy of a many-megabyte tail made large sends quadratic.
# CPython's slices are views, so there the window is everything.
_SEND_WINDOW = (1024 * 1024 if sys.implementation.name == "pypy"
                else sys.maxsize)
_unpack = ffi.unpack


_MORE = object()  # an op's "part of it is done, wait again" (sock_sendall)


def _sendall_step(sock, view, pos):
    start = pos[0]
    start += sock.send(view[start:start + _SEND_WINDOW])
    if start == len(view):
        return None
    pos[0] = start
    return _MORE


def _sock_ready(w):
    """A SockWait's fd is ready: try its call's operation again (*op*: the
    name of a socket method, looked up on every try as asyncio does, or a
    callable taking (sock, *args)); when it no longer says "would block",
    stop watching and finish the future."""
    fut = w.fut
    if fut is None or fut.done():  # cancelled: its coroutine cleans up
        return
    op = w.op
    try:
        if op.__class__ is str:
            result = getattr(w.sock, op)(*w.args)
        else:
            result = op(w.sock, *w.args)
    except _RETRY:
        return  # spurious wake-up: wait again
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:
        w._loop._sock_unwatch(w, fut)
        fut.set_exception(exc)
        return
    if result is _MORE:
        return
    w._loop._sock_unwatch(w, fut)
    fut.set_result(result)


def _accept(sock):
    conn, address = sock.accept()
    conn.setblocking(False)
    return conn, address


def _check_sock(loop, sock):
    _check_ssl_socket(sock)
    # asyncio only checks this in debug mode; so do we (a blocking socket
    # otherwise "works" by blocking the loop).
    if loop._debug and sock.gettimeout() != 0:
        raise ValueError("the socket must be non-blocking")


class SockMethodsMixin:
    """sock_recv & co."""

    # the loop's slots (loop.py); _sock_held: future -> the socket whose fd
    # it keeps open while it waits (see the module docstring)
    _LOOP_STATE = {"_recv_scratch": None, "_sock_held": None}

    # -- receiving ----------------------------------------------------------------

    async def sock_recv(self, sock, n):
        """Receive up to *n* bytes from *sock*."""
        if self._debug or type(sock) is not _SOCKET:
            _check_sock(self, sock)
        if (type(n) is int and _SCRATCH_FROM < n <= _SCRATCH_MAX
                and type(sock) is _SOCKET):
            try:
                return self._recv_copy(sock, n)
            except _RETRY:
                op = self._recv_copy
        else:
            op = "recv"
            try:
                return sock.recv(n)
            except _RETRY:
                pass
        if type(sock) is not _SOCKET or self._debug:
            return await self._sock_wait_handle(True, sock, op, (n,))
        # _sock_wait, inline (one coroutine less per wait)
        fut = self.create_future()
        w = self._sock_watch(sock, fut, True, op, (n,))
        try:
            return await fut
        finally:
            if w.fut is fut or self._sock_held:
                self._sock_unwatch(w, fut)

    def _recv_copy(self, sock, n):
        """sock.recv(n) through a buffer kept on the loop (see _SCRATCH_FROM)."""
        view = self._recv_scratch
        if view is None or len(view) < n:
            view = self._recv_scratch = memoryview(bytearray(n))
        return bytes(view[:sock.recv_into(view, n)])

    def _recv_copy_c(self, sock, n):
        """_recv_copy on PyPy: the loop's buffer is C memory (_C_SCRATCH)."""
        if sock.gettimeout() != 0:
            # a socket with a timeout must wait in recv() as it does on
            # asyncio's loop, which a plain recv(2) does not
            return sock.recv(n)
        buf = self._recv_scratch
        if buf is None or len(buf) < n:
            buf = self._recv_scratch = ffi.new("char[]", n)
        got = _sock_recv_c(sock.fileno(), buf, n)
        if got >= 0:
            return _unpack(buf, got)
        # OSError picks BlockingIOError & co. from the errno, as socket does
        raise OSError(-got, os.strerror(-got))

    if _C_SCRATCH:
        _recv_copy = _recv_copy_c

    async def sock_recv_into(self, sock, buf):
        """Receive into *buf*; return the number of bytes written."""
        if self._debug or type(sock) is not _SOCKET:
            _check_sock(self, sock)
        try:
            return sock.recv_into(buf)
        except _RETRY:
            pass
        if type(sock) is not _SOCKET or self._debug:
            return await self._sock_wait_handle(True, sock, "recv_into", (buf,))
        fut = self.create_future()  # _sock_wait, inline
        w = self._sock_watch(sock, fut, True, "recv_into", (buf,))
        try:
            return await fut
        finally:
            if w.fut is fut or self._sock_held:
                self._sock_unwatch(w, fut)

    async def sock_recvfrom(self, sock, bufsize):
        """Receive a datagram: (bytes, address)."""
        if self._debug or type(sock) is not _SOCKET:
            _check_sock(self, sock)
        try:
            return sock.recvfrom(bufsize)
        except _RETRY:
            pass
        return await self._sock_wait(True, sock, "recvfrom", (bufsize,))

    async def sock_recvfrom_into(self, sock, buf, nbytes=0):
        """Receive a datagram into *buf*: (nbytes, address)."""
        if self._debug or type(sock) is not _SOCKET:
            _check_sock(self, sock)
        if not nbytes:
            nbytes = len(buf)
        try:
            return sock.recvfrom_into(buf, nbytes)
        except _RETRY:
            pass
        return await self._sock_wait(True, sock, "recvfrom_into", (buf, nbytes))

    # -- sending ----------------------------------------------------------------

    async def sock_sendto(self, sock, data, address):
        """Send a datagram to *address*; return the bytes sent."""
        if self._debug or type(sock) is not _SOCKET:
            _check_sock(self, sock)
        try:
            return sock.sendto(data, address)
        except _RETRY:
            pass
        return await self._sock_wait(False, sock, "sendto", (data, 0, address))

    async def sock_sendall(self, sock, data):
        """Send all of *data*; None on success."""
        if self._debug or type(sock) is not _SOCKET:
            _check_sock(self, sock)
        try:
            n = sock.send(data)
        except _RETRY:
            n = 0
        if n == len(data):
            return
        # [n]: the progress, shared with the retries
        return await self._sock_wait(
            False, sock, _sendall_step, (memoryview(data), [n]))

    # -- the common "wait until ready, then retry" path ---------------------------

    async def _sock_wait(self, reading, sock, op, args):
        """Wait until *sock* is ready, then ``op`` (see _sock_ready) until it
        no longer says "would block"; its result is the call's."""
        if type(sock) is not _SOCKET or self._debug:
            return await self._sock_wait_handle(reading, sock, op, args)
        fut = self.create_future()
        w = self._sock_watch(sock, fut, reading, op, args)
        try:
            return await fut
        finally:
            # cancelled (or closed) while waiting; _sock_ready has done this
            # itself when the call finished
            if w.fut is fut or self._sock_held:
                self._sock_unwatch(w, fut)

    def _sock_watch(self, sock, fut, reading, op, args):
        """Install the fd's SockWait for *fut* (see fdwatch.SockWait): the
        poll, parked since the last call, is taken back for it; no Handle,
        partial or done callback per call."""
        fd = sock.fileno()
        if fd in self._transports.data:
            self._ensure_fd_no_transport(fd)
        w = self._fdwatch_sock(fd, reading, _sock_ready)
        if w.fut is not None:
            # a call of another task still waits here: on asyncio's loop
            # its reader was just replaced, so it waits until cancelled;
            # its hold on the fd moves to _sock_held
            self._sock_hold(w.fut, w.sock, count=False)
        w.fut = fut
        w.sock = sock
        w.op = op
        w.args = args
        sock._io_refs += 1  # the fd stays open while we wait (docstring)
        return w

    def _sock_unwatch(self, w, fut):
        """*fut*'s call is over: its SockWait stops watching (the poll is
        parked for the next call) and its hold on the fd is given back."""
        if w.fut is not fut:
            held = self._sock_held
            if held and fut in held:  # see _sock_watch: another call took w
                self._sock_release(fut, held[fut].fileno())
            return
        sock = w.sock
        w.fut = w.sock = w.op = w.args = None
        p = w.poll
        if not self._closed and not p.closing:
            if w.reading:
                if p.reader is w:
                    p.reader = None
                    self._fdwatch_update(p)
            elif p.writer is w:
                p.writer = None
                self._fdwatch_update(p)
        if not sock._closed:
            sock._io_refs -= 1
        else:
            self._sock_release_closed(sock, p.fd)

    async def _sock_wait_handle(self, reading, sock, op, args):
        """_sock_wait as asyncio's selector loop does it, with a Handle per
        call run from the ready queue in the caller's context: for socket
        subclasses and look-alikes (their methods may read context
        variables; a mock may be swapped in) and in debug mode (slow
        callback warnings, source tracebacks)."""
        fut = self.create_future()
        fd = sock.fileno()
        self._ensure_fd_no_transport(fd)
        if reading:
            handle = self._add_reader(fd, self._sock_retry, fut, sock, op, args)
            done = self._sock_read_done
        else:
            handle = self._add_writer(fd, self._sock_retry, fut, sock, op, args)
            done = self._sock_write_done
        self._sock_hold(fut, sock)
        fut.add_done_callback(functools.partial(done, fd, handle=handle))
        return await fut

    def _sock_retry(self, fut, sock, op, args):
        """*op*: the name of a socket method, looked up on every try as
        asyncio does (its caller may replace it meanwhile: CPython's own
        tests swap in a mock), or a callable taking (sock, *args)."""
        if fut.done():
            return
        try:
            if op.__class__ is str:
                result = getattr(sock, op)(*args)
            else:
                result = op(sock, *args)
            if result is _MORE:
                return  # (sock_sendall: part of it went)
        except _RETRY:
            return  # spurious wake-up: wait again
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            fut.set_exception(exc)
        else:
            fut.set_result(result)

    def _sock_read_done(self, fd, fut, handle=None):
        # handle cancelled: a newer reader for this fd replaced ours
        if handle is None or not handle.cancelled():
            self.remove_reader(fd)
        if self._sock_held:
            self._sock_release(fut, fd)

    def _sock_write_done(self, fd, fut, handle=None):
        if handle is None or not handle.cancelled():
            self.remove_writer(fd)
        if self._sock_held:
            self._sock_release(fut, fd)

    # -- the fd stays open while a call waits on it -------------------------------

    def _sock_hold(self, fut, sock, count=True):
        """Keep *sock*'s fd open until *fut* is done: a ``sock.close()``
        meanwhile is deferred, as for a socket with a makefile() open.
        (*count* False: the hold is already taken, recorded here only.)"""
        if not isinstance(sock, socket.socket) or type(sock._io_refs) is not int:
            return  # no _io_refs to hold (a stand-in: a Mock with a socket's spec)
        held = self._sock_held
        if held is None:
            held = self._sock_held = {}
        if count:
            sock._io_refs += 1
        held[fut] = sock

    def _sock_release(self, fut, fd):
        """*fut* is done: give its hold back, closing the socket if it was
        closed meanwhile and this was its last hold."""
        sock = self._sock_held.pop(fut, None)
        if sock is None:
            return
        if not sock._closed:
            sock._io_refs -= 1
            return
        self._sock_release_closed(sock, fd)

    def _sock_release_closed(self, sock, fd):
        if sock._io_refs <= 1:
            # the fd is about to be closed: its watch goes first, while the
            # number still names this socket
            self._fdwatch_forget(fd, idle_only=True)
        sock._decref_socketios()

    def close(self):
        # the waiting calls never finish now (their futures stay pending, as
        # on asyncio's loop): close what they kept open
        waiting = []
        for p in list((self._fd_watches or {}).values()):
            for w in (p.rwait, p.wwait):
                if w is not None and w.fut is not None:
                    waiting.append(w.sock)
                    w.fut = w.sock = w.op = w.args = None
        try:
            super().close()
        finally:
            held = self._sock_held
            self._sock_held = None
            waiting.extend(held.values() if held else ())
            for sock in waiting:
                if sock._closed and sock._io_refs <= 1 and sock.fileno() >= 0:
                    self._fdwatch_forget(sock.fileno(), idle_only=False)
                sock._decref_socketios()

    # -- connect / accept -------------------------------------------------------

    async def sock_connect(self, sock, address):
        """Connect *sock* to *address* (resolved through the loop)."""
        if self._debug or type(sock) is not _SOCKET:
            _check_sock(self, sock)
        if sock.family == socket.AF_INET or (
                base_events._HAS_IPv6 and sock.family == socket.AF_INET6):
            resolved = await self._ensure_resolved(
                address, family=sock.family, type=sock.type,
                proto=sock.proto, loop=self)
            address = resolved[0][4]
        fut = self.create_future()
        self._sock_connect(fut, sock, address)
        try:
            return await fut
        finally:
            fut = None  # break the traceback <-> future cycle

    def _sock_connect(self, fut, sock, address):
        fd = sock.fileno()
        try:
            sock.connect(address)
        except _RETRY:
            # connecting in the background (EINPROGRESS, or EINTR): the
            # outcome is known when the socket turns writable.
            self._ensure_fd_no_transport(fd)
            handle = self._add_writer(fd, self._sock_connect_cb, fut, sock,
                                      address)
            self._sock_hold(fut, sock)
            fut.add_done_callback(
                functools.partial(self._sock_write_done, fd, handle=handle))
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            fut.set_exception(exc)
        else:
            fut.set_result(None)
        finally:
            fut = None

    def _sock_connect_cb(self, fut, sock, address):
        if fut.done():
            return
        try:
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err != 0:
                raise OSError(err, f"Connect call failed {address}")
        except _RETRY:
            pass  # still connecting: stay registered
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            fut.set_exception(exc)
        else:
            fut.set_result(None)
        finally:
            fut = None

    async def sock_accept(self, sock):
        """Accept a connection: (conn, address), conn non-blocking."""
        if self._debug or type(sock) is not _SOCKET:
            _check_sock(self, sock)
        try:
            return _accept(sock)
        except _RETRY:
            pass
        return await self._sock_wait(True, sock, _accept, ())

    # -- sendfile: os.sendfile when the OS and the file allow it ------------------

    async def _sock_sendfile_native(self, sock, file, offset, count):
        # BaseEventLoop.sock_sendfile falls back to read+send on
        # SendfileNotAvailableError (or re-raises it when fallback=False).
        if not hasattr(os, "sendfile"):
            raise exceptions.SendfileNotAvailableError(
                "os.sendfile() is not available")
        try:
            fileno = file.fileno()
        except (AttributeError, io.UnsupportedOperation):
            raise exceptions.SendfileNotAvailableError("not a regular file")
        try:
            fsize = os.fstat(fileno).st_size
        except OSError:
            raise exceptions.SendfileNotAvailableError("not a regular file")
        blocksize = count if count else fsize
        if not blocksize:
            return 0  # empty file
        fut = self.create_future()
        self._sock_sendfile_step(fut, None, sock, fileno, offset, count,
                                 blocksize, 0)
        return await fut

    def _sock_sendfile_step(self, fut, registered_fd, sock, fileno,
                            offset, count, blocksize, total_sent):
        fd = sock.fileno()
        if registered_fd is not None:
            # one-shot writer: re-added below if there is more to send
            self.remove_writer(registered_fd)
        if fut.cancelled():
            self._sock_sendfile_seek(fileno, offset, total_sent)
            return
        if count:
            blocksize = count - total_sent
            if blocksize <= 0:
                self._sock_sendfile_seek(fileno, offset, total_sent)
                fut.set_result(total_sent)
                return
        try:
            sent = os.sendfile(fd, fileno, offset, blocksize)
        except _RETRY:
            sent = None
        except OSError as exc:
            if (registered_fd is not None and exc.errno == errno.ENOTCONN
                    and type(exc) is not ConnectionError):
                # the peer went away mid-transfer: the same exception on
                # every platform, as asyncio normalises it
                new_exc = ConnectionError("socket is not connected",
                                          errno.ENOTCONN)
                new_exc.__cause__ = exc
                exc = new_exc
            self._sock_sendfile_seek(fileno, offset, total_sent)
            if total_sent == 0:
                # typically a file that sendfile(2) cannot map: let the
                # caller fall back to plain send()
                fut.set_exception(exceptions.SendfileNotAvailableError(
                    "os.sendfile call failed"))
            else:
                fut.set_exception(exc)
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._sock_sendfile_seek(fileno, offset, total_sent)
            fut.set_exception(exc)
            return
        if sent == 0:  # end of file
            self._sock_sendfile_seek(fileno, offset, total_sent)
            fut.set_result(total_sent)
            return
        if sent is not None:
            offset += sent
            total_sent += sent
        if registered_fd is None:
            fut.add_done_callback(
                functools.partial(self._sock_sendfile_cancelled, sock))
        self.add_writer(fd, self._sock_sendfile_step, fut, fd, sock, fileno,
                        offset, count, blocksize, total_sent)
        if registered_fd is None:
            self._sock_hold(fut, sock)
            fut.add_done_callback(
                functools.partial(self._sock_sendfile_release, fd))

    def _sock_sendfile_cancelled(self, sock, fut):
        if fut.cancelled():
            fd = sock.fileno()
            if fd != -1:
                self.remove_writer(fd)

    def _sock_sendfile_release(self, fd, fut):
        if self._sock_held:
            self._sock_release(fut, fd)

    @staticmethod
    def _sock_sendfile_seek(fileno, offset, total_sent):
        # os.sendfile with an offset leaves the file position alone; leave
        # it after the data sent, as a read+send loop would
        if total_sent > 0:
            os.lseek(fileno, offset, os.SEEK_SET)
