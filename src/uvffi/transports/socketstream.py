"""Socket transports (TCP and AF_UNIX) over libuv streams, TLS on top of
them, and the native path of ``loop.sendfile``.

File descriptor ownership
-------------------------
libuv closes the fd of a ``uv_tcp_t``/``uv_pipe_t`` when the handle closes.
A Python ``socket`` object closes *its* fd when it is closed or collected,
and the garbage collector may finalise an unreachable socket before the
transport that holds it.  Sharing one fd between the two would therefore
risk a double close (closing some unrelated file that reused the number).
So libuv always gets its own descriptor:

* a transport made from a Python socket (``create_connection``,
  ``connect_accepted_socket``, ``create_unix_connection``, ``start_tls``'s
  base) hands libuv ``dup(sock.fileno())`` and keeps the socket, which it
  closes after ``connection_lost`` as asyncio does.  The socket's fd is the
  one registered in ``loop._transports`` (what users pass to add_reader);
* a connection accepted by a server (servers.py) is detached from its
  Python socket, so libuv's fd is the only one; the ``socket`` extra is made
  on first request from a ``dup`` of it, and ``sockname`` is read then too
  (saves three syscalls and two objects per accepted connection that nobody
  asks about).  ``peername`` comes from accept(), as in asyncio.

Both descriptors refer to the same open socket, so options set through the
``TransportSocket`` apply to the connection.
"""
import inspect
import os
import socket
import sys
from asyncio import constants, exceptions, sslproto

try:
    import ssl
except ImportError:  # pragma: no cover - Python built without ssl
    ssl = None

from .._uv import lib
from .base import TransportSocket
from ..handles.stream import PipeStream, TCPStream
from .stream import StreamTransport
from .tls import TLSProtocol

_AF_UNIX = getattr(socket, "AF_UNIX", None)
_LAZY_KEYS = frozenset(("socket", "sockname", "peername"))
_INET_FAMILIES = (socket.AF_INET, getattr(socket, "AF_INET6", socket.AF_INET))


def _set_nodelay(sock):
    """TCP_NODELAY on a TCP socket handed in (create_connection(sock=...)),
    as on the loop's own connections.  asyncio's own check also wants
    proto == IPPROTO_TCP, and so skips sockets made with socket.socket()'s
    default proto 0, which on AF_INET/AF_INET6 streams is TCP too."""
    if (sock.family in _INET_FAMILIES and sock.type == socket.SOCK_STREAM
            and sock.proto in (0, socket.IPPROTO_TCP)):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

if sys.platform == "win32":  # pragma: no cover - os.dup can't do sockets
    def _dup_fd(fd):
        borrowed = socket.socket(fileno=fd)
        try:
            return borrowed.dup().detach()
        finally:
            borrowed.detach()  # not ours to close
else:
    _dup_fd = os.dup

# 3.11 rewrote sslproto and added ssl_shutdown_timeout.
_SSL_HAS_SHUTDOWN_TIMEOUT = "ssl_shutdown_timeout" in inspect.signature(
    sslproto.SSLProtocol).parameters
_SSL_SHUTDOWN_TIMEOUT = getattr(constants, "SSL_SHUTDOWN_TIMEOUT", None)


def stream_for_family(loop, family):
    """A fresh, unopened libuv stream for a socket of *family*."""
    if family == _AF_UNIX:
        return PipeStream(loop)
    return TCPStream(loop)


def open_stream(loop, sock):
    """A libuv stream on a duplicate of *sock*'s fd (see module docstring)."""
    stream = stream_for_family(loop, sock.family)
    try:
        fd = _dup_fd(sock.fileno())
    except BaseException:
        stream.close()
        raise
    try:
        try:
            stream.open(fd)
        except FileExistsError:
            # the dup got the number of a watched fd closed without
            # remove_reader: see FdWatchMixin._fdwatch_evict_stale
            if not loop._fdwatch_evict_stale(fd):
                raise
            stream.open(fd)
    except BaseException:
        # libuv did not take the fd: it is still ours to close
        stream.close()
        os.close(fd)
        raise
    return stream


class SocketTransport(StreamTransport):
    """A stream transport on a connected TCP or AF_UNIX socket."""

    _sock = None
    _sendfile_active = False

    def __init__(self, loop, stream, sock, protocol, waiter=None, extra=None,
                 server=None):
        self._sock = sock
        if extra is None:
            extra = {}
        if sock is not None:
            extra["socket"] = TransportSocket(sock)
            try:
                extra["sockname"] = sock.getsockname()
            except OSError:
                extra["sockname"] = None
            if "peername" not in extra:
                try:
                    extra["peername"] = sock.getpeername()
                except OSError:
                    extra["peername"] = None
            self._lazy_extra = False
            _set_nodelay(sock)  # on the socket itself, as asyncio does
        else:
            self._lazy_extra = True
            if type(stream) is TCPStream:
                lib.uv_tcp_nodelay(stream.ptr, 1)
        super().__init__(loop, stream, protocol, waiter, extra, server)

    def _fd_for_registry(self):
        sock = self._sock
        if sock is not None:
            return sock.fileno()
        return super()._fd_for_registry()

    def get_extra_info(self, name, default=None):
        if self._lazy_extra and name in _LAZY_KEYS:
            self._make_socket_extra()
        if name == "socket" and (self._sock is None or self._sock.fileno() == -1):
            # closed (aborted in connection_made(), say): no socket to
            # offer, as uvloop answers; asyncio gives a closed one
            return default
        return self._extra.get(name, default)

    def _make_socket_extra(self):
        self._lazy_extra = False
        stream = self._stream
        if stream is None:
            return
        try:
            sock = socket.socket(fileno=_dup_fd(stream.fileno()))
        except OSError:
            return
        sock.setblocking(False)
        self._sock = sock
        extra = self._extra
        extra["socket"] = TransportSocket(sock)
        for key, get in (("sockname", sock.getsockname),
                         ("peername", sock.getpeername)):
            if key not in extra:
                try:
                    extra[key] = get()
                except OSError:
                    extra[key] = None

    def _get_sock(self):
        if self._sock is None and self._lazy_extra:
            self._make_socket_extra()
        return self._sock

    def _on_closed(self):
        sock = self._sock
        if sock is None:
            return
        if self._sendfile_active:
            # sock_sendfile has a uv_poll_t on this fd: closing it now would
            # leave libuv watching a number the OS may hand out again.  Stop
            # the transfer instead; _sendfile_native closes it afterwards.
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        else:
            sock.close()


def new_ssl_protocol(loop, protocol, sslcontext, waiter, server_side,
                     server_hostname, ssl_handshake_timeout,
                     ssl_shutdown_timeout, call_connection_made=True):
    """The TLS protocol of every TLS path (see transports/tls.py)."""
    # (TLSProtocol takes ssl_shutdown_timeout on every Python version)
    kwargs = {"ssl_handshake_timeout": ssl_handshake_timeout,
              "call_connection_made": call_connection_made,
              "ssl_shutdown_timeout": ssl_shutdown_timeout}
    return TLSProtocol(loop, protocol, sslcontext, waiter, server_side,
                       server_hostname, **kwargs)


async def _start_tls(loop, transport, protocol, sslcontext, server_side,
                     server_hostname, ssl_handshake_timeout,
                     ssl_shutdown_timeout):
    """BaseEventLoop.start_tls, building TLSProtocol: same checks, messages
    and order of events."""
    if ssl is None:
        raise RuntimeError('Python ssl module is not available')
    if not isinstance(sslcontext, ssl.SSLContext):
        raise TypeError(
            f'sslcontext is expected to be an instance of ssl.SSLContext, '
            f'got {sslcontext!r}')
    if not getattr(transport, '_start_tls_compatible', False):
        raise TypeError(
            f'transport {transport!r} is not supported by start_tls()')

    waiter = loop.create_future()
    ssl_protocol = new_ssl_protocol(
        loop, protocol, sslcontext, waiter, server_side, server_hostname,
        ssl_handshake_timeout, ssl_shutdown_timeout,
        call_connection_made=False)
    # paused until the TLS protocol's connection_made() has run
    transport.pause_reading()
    transport.set_protocol(ssl_protocol)
    conmade_cb = loop.call_soon(ssl_protocol.connection_made, transport)
    resume_cb = loop.call_soon(transport.resume_reading)
    try:
        await waiter
    except BaseException:
        transport.close()
        conmade_cb.cancel()
        resume_cb.cancel()
        raise
    return ssl_protocol._app_transport


class SocketTransportMixin:
    """The BaseEventLoop hooks that make transports for sockets."""

    if _SSL_HAS_SHUTDOWN_TIMEOUT:
        async def start_tls(self, transport, protocol, sslcontext, *,
                            server_side=False, server_hostname=None,
                            ssl_handshake_timeout=None,
                            ssl_shutdown_timeout=None):
            """Upgrade transport to TLS.

            Return a new transport that *protocol* should start using
            immediately.
            """
            return await _start_tls(
                self, transport, protocol, sslcontext, server_side,
                server_hostname, ssl_handshake_timeout, ssl_shutdown_timeout)
    else:  # pragma: no cover - 3.9/3.10
        async def start_tls(self, transport, protocol, sslcontext, *,
                            server_side=False, server_hostname=None,
                            ssl_handshake_timeout=None):
            """Upgrade transport to TLS.

            Return a new transport that *protocol* should start using
            immediately.
            """
            return await _start_tls(
                self, transport, protocol, sslcontext, server_side,
                server_hostname, ssl_handshake_timeout, None)

    def _make_socket_transport(self, sock, protocol, waiter=None, *,
                               extra=None, server=None):
        self._ensure_fd_no_transport(sock)
        stream = open_stream(self, sock)
        try:
            return SocketTransport(self, stream, sock, protocol, waiter,
                                   extra, server)
        except BaseException:
            stream.close()
            raise

    def _make_ssl_transport(
            self, rawsock, protocol, sslcontext, waiter=None, *,
            server_side=False, server_hostname=None, extra=None, server=None,
            ssl_handshake_timeout=constants.SSL_HANDSHAKE_TIMEOUT,
            ssl_shutdown_timeout=_SSL_SHUTDOWN_TIMEOUT):
        self._ensure_fd_no_transport(rawsock)
        ssl_protocol = new_ssl_protocol(
            self, protocol, sslcontext, waiter, server_side, server_hostname,
            ssl_handshake_timeout, ssl_shutdown_timeout)
        self._make_socket_transport(rawsock, ssl_protocol, extra=extra,
                                    server=server)
        return ssl_protocol._app_transport

    async def _sendfile_native(self, transp, file, offset, count):
        """os.sendfile on the transport's socket, as selector_events does:
        libuv's stream must be idle meanwhile, so reading is paused and the
        write queue drained first (write() raises while the waiter is set);
        sock_sendfile then waits for writability with a uv_poll_t on the
        Python socket's fd, which is not the fd libuv's stream watches."""
        if not isinstance(transp, SocketTransport) or not hasattr(os, "sendfile"):
            raise exceptions.SendfileNotAvailableError(
                "sendfile syscall is not supported")
        sock = transp._get_sock()
        if sock is None:
            raise exceptions.SendfileNotAvailableError(
                "sendfile syscall is not supported")
        fd = transp._fd
        registered = fd is not None and self._transports.get(fd) is transp
        if registered:
            # sock_sendfile's add_writer refuses fds that belong to a transport
            del self._transports[fd]
        resume_reading = transp.is_reading()
        transp.pause_reading()
        waiter = None
        transp._sendfile_active = True
        try:
            waiter = transp._make_empty_waiter()  # raises if one is running
            await waiter
            return await self.sock_sendfile(sock, file, offset, count,
                                            fallback=False)
        finally:
            transp._sendfile_active = False
            if transp._stream is None:
                sock.close()  # the transport closed meanwhile (_on_closed)
            if waiter is not None:
                transp._reset_empty_waiter()
            if resume_reading:
                transp.resume_reading()
            if registered and transp._stream is not None:
                self._transports[fd] = transp
