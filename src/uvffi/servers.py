"""Listening sockets: ``_start_serving``/``_stop_serving`` on ``uv_listen``.

``asyncio.base_events.Server`` (CPython's own class: sockets, close,
wait_closed, serve_forever, close_clients ...) drives these two hooks.  Each
listening socket gets a ``_Listener``: a libuv stream on a dup of its fd
(libuv closes that one, the Server closes the socket itself).  libuv accepts
in a loop on each readiness event and calls us once per connection; we
``uv_accept`` into a new stream and build the transport right there --
asyncio goes through a Task per connection, which costs a Task, a Future and
two loop iterations and buys nothing for plain connections.  TLS connections
still use a task, to await the handshake and close the transport on failure
as asyncio does.
"""
import errno
import logging
from asyncio import constants, trsock

from ._uv import lib
from .errors import exception_from_uv
from .socktransport import (SocketTransport, SocketTransportMixin,
                            new_ssl_protocol, open_stream, stream_for_family,
                            _SSL_SHUTDOWN_TIMEOUT)

logger = logging.getLogger("asyncio")

# accept() failures that only mean "nothing to accept after all"
_ACCEPT_NOTHING = frozenset((errno.EAGAIN, errno.EWOULDBLOCK,
                             errno.ECONNABORTED, errno.EINTR))
# accept() failures that mean "out of resources": asyncio logs them and
# stops accepting for ACCEPT_RETRY_DELAY seconds instead of spinning.
_RESOURCE_ERRNOS = frozenset((errno.EMFILE, errno.ENFILE, errno.ENOBUFS,
                              errno.ENOMEM))


class _Listener:
    """Accepts connections on one listening socket of a Server."""

    __slots__ = ("loop", "sock", "family", "stream", "protocol_factory",
                 "sslcontext", "server", "backlog", "ssl_handshake_timeout",
                 "ssl_shutdown_timeout", "retry")

    def __init__(self, loop, protocol_factory, sock, sslcontext, server,
                 backlog, ssl_handshake_timeout, ssl_shutdown_timeout):
        self.loop = loop
        self.sock = sock
        self.family = sock.family
        self.protocol_factory = protocol_factory
        self.sslcontext = sslcontext
        self.server = server
        self.backlog = backlog
        self.ssl_handshake_timeout = ssl_handshake_timeout
        self.ssl_shutdown_timeout = ssl_shutdown_timeout
        self.stream = None
        self.retry = None

    def start(self):
        stream = open_stream(self.loop, self.sock)
        try:
            stream.on_connection = self._on_connection
            stream.listen(self.backlog)
        except BaseException:
            stream.close()
            raise
        self.stream = stream

    def close(self):
        if self.retry is not None:
            self.retry.cancel()
            self.retry = None
        stream = self.stream
        if stream is not None:
            self.stream = None
            stream.close()

    def _resume(self):
        self.retry = None
        try:
            self.start()
        except OSError as exc:
            self._accept_error(exc)

    def _accept_error(self, exc):
        loop = self.loop
        if exc.errno in _ACCEPT_NOTHING:
            return
        if exc.errno in _RESOURCE_ERRNOS:
            loop.call_exception_handler({
                "message": "socket.accept() out of system resource",
                "exception": exc,
                "socket": trsock.TransportSocket(self.sock),
            })
            # libuv would keep reporting (and dropping) connections: stop
            # listening for a while; the socket keeps its backlog meanwhile.
            stream = self.stream
            if stream is not None:
                self.stream = None
                stream.close()
            if self.retry is None:
                self.retry = loop.call_later(constants.ACCEPT_RETRY_DELAY,
                                             self._resume)
        else:
            loop.call_exception_handler({
                "message": "Error accepting a connection",
                "exception": exc,
                "socket": trsock.TransportSocket(self.sock),
            })

    def _on_connection(self, status):
        # libuv callback: one pending connection (or an accept error)
        try:
            if status < 0:
                self._accept_error(exception_from_uv(status))
                return
            loop = self.loop
            client = stream_for_family(loop, self.family)
            rc = lib.uv_accept(self.stream.ptr, client.ptr)
            if rc < 0:
                client.close()
                self._accept_error(exception_from_uv(rc))
                return
            if self.sslcontext:
                loop.create_task(self._accept_tls(client))
                return
            protocol = transport = None
            try:
                protocol = self.protocol_factory()
                transport = SocketTransport(loop, client, None, protocol,
                                            None, None, self.server)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                if transport is None:
                    client.close()
                else:
                    transport.close()
                if loop._debug:
                    self._report_creation_error(exc, protocol, transport)
                return
            if loop._debug:
                logger.debug("%r got a new connection: %r", self.server,
                             transport)
        except Exception as exc:
            self.loop.call_exception_handler({
                "message": "Error accepting a connection",
                "exception": exc,
            })

    async def _accept_tls(self, client):
        loop = self.loop
        protocol = transport = None
        try:
            protocol = self.protocol_factory()
            waiter = loop.create_future()
            ssl_protocol = new_ssl_protocol(
                loop, protocol, self.sslcontext, waiter, True, None,
                self.ssl_handshake_timeout, self.ssl_shutdown_timeout)
            SocketTransport(loop, client, None, ssl_protocol, None, None,
                            self.server)
            client = None
            transport = ssl_protocol._app_transport
            try:
                await waiter
            except BaseException:
                transport.close()
                waiter = None  # no cycle through the exception
                raise
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            if client is not None:
                client.close()
            if loop._debug:
                self._report_creation_error(exc, protocol, transport)

    def _report_creation_error(self, exc, protocol, transport):
        context = {
            "message": "Error on transport creation for incoming connection",
            "exception": exc,
        }
        if protocol is not None:
            context["protocol"] = protocol
        if transport is not None:
            context["transport"] = transport
        self.loop.call_exception_handler(context)


class ServingMixin(SocketTransportMixin):
    """The BaseEventLoop hooks asyncio's Server calls."""

    _uv_listeners = None  # listening socket -> _Listener

    def _start_serving(self, protocol_factory, sock, sslcontext=None,
                       server=None, backlog=100,
                       ssl_handshake_timeout=constants.SSL_HANDSHAKE_TIMEOUT,
                       ssl_shutdown_timeout=_SSL_SHUTDOWN_TIMEOUT):
        listeners = self._uv_listeners
        if listeners is None:
            listeners = self._uv_listeners = {}
        old = listeners.pop(sock, None)
        if old is not None:
            old.close()
        listener = _Listener(self, protocol_factory, sock, sslcontext, server,
                             backlog, ssl_handshake_timeout,
                             ssl_shutdown_timeout)
        listener.start()
        listeners[sock] = listener

    def _stop_serving(self, sock):
        listeners = self._uv_listeners
        if listeners:
            listener = listeners.pop(sock, None)
            if listener is not None:
                listener.close()
        sock.close()
