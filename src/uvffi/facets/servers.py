"""Listening sockets: ``_start_serving``/``_stop_serving``.

``asyncio.base_events.Server`` (CPython's own class: sockets, close,
wait_closed, serve_forever, close_clients ...) drives these two hooks.

Each listening socket gets a ``_Listener``: a ``uv_poll_t`` on the socket's
fd and, when it turns readable, up to ``backlog`` ``sock.accept()`` calls,
exactly as selector_events does.  libuv's own ``uv_listen`` is not used on
purpose: on EMFILE/ENFILE it accepts and immediately closes every pending
connection (its "emfile trick") without telling us, where asyncio logs the
error, leaves the connections in the backlog and retries after
``ACCEPT_RETRY_DELAY``.  Accepting in Python also gives the peer address
for free, as asyncio has it.  The accepted fd is detached from its Python
socket and handed to libuv (``uv_tcp_open``/``uv_pipe_open``), which owns
it from then on.

The transport is built right in the poll callback -- asyncio goes through a
Task per connection, which costs a Task, a Future and two loop iterations
and buys nothing for plain connections.  TLS connections still use a task,
to await the handshake and close the transport on failure as asyncio does.
"""
import contextvars
import errno
import logging
import os
from asyncio import constants

from ..handles import poll as _poll
from ..transports.base import TransportSocket
from ..transports.socketstream import (SocketTransport, SocketTransportMixin,
                            new_ssl_protocol, stream_for_family,
                            _SSL_SHUTDOWN_TIMEOUT)

logger = logging.getLogger("asyncio")

# accept() failures that mean "out of resources": asyncio logs them and
# stops accepting for ACCEPT_RETRY_DELAY seconds instead of spinning.
_RESOURCE_ERRNOS = frozenset((errno.EMFILE, errno.ENFILE, errno.ENOBUFS,
                              errno.ENOMEM))
_NOTHING_TO_ACCEPT = (BlockingIOError, InterruptedError,
                      ConnectionAbortedError)


class _Listener:
    """Accepts connections on one listening socket of a Server."""

    __slots__ = ("loop", "sock", "family", "poll", "protocol_factory",
                 "sslcontext", "server", "backlog", "ssl_handshake_timeout",
                 "ssl_shutdown_timeout", "retry", "context")

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
        self.poll = None
        self.retry = None
        # Accepting runs in the context current when serving started, as
        # asyncio's accept callback does: the protocol factory sees it, and
        # each connection's transport takes a copy of it.
        self.context = contextvars.copy_context()

    def start(self):
        p = _poll.Poll(self.loop, self.sock.fileno(), self._on_readable)
        try:
            p.start(_poll.READABLE)
        except BaseException:
            p.close()
            raise
        self.poll = p

    def _stop_polling(self):
        p = self.poll
        if p is not None:
            self.poll = None
            p.close()

    def close(self):
        if self.retry is not None:
            self.retry.cancel()
            self.retry = None
        self._stop_polling()

    def _resume(self):
        self.retry = None
        if self.sock.fileno() != -1:
            self.start()

    def _on_readable(self, status, events):
        # libuv callback; status < 0 is a poll error on the listening
        # socket: accept() will tell what it is.
        self.context.run(self._accept_reporting)

    def _accept_reporting(self):
        try:
            self._accept_some()
        except Exception as exc:
            self.loop.call_exception_handler({
                "message": "Error accepting a connection",
                "exception": exc,
                "socket": TransportSocket(self.sock),
            })

    def _accept_some(self):
        sock = self.sock
        loop = self.loop
        for _ in range(self.backlog):
            try:
                conn, addr = sock.accept()
            except _NOTHING_TO_ACCEPT:
                return
            except OSError as exc:
                if exc.errno not in _RESOURCE_ERRNOS:
                    raise
                loop.call_exception_handler({
                    "message": "socket.accept() out of system resource",
                    "exception": exc,
                    "socket": TransportSocket(sock),
                })
                # Linux keeps reporting the socket readable: stop watching
                # it for a while; pending connections wait in the backlog.
                self._stop_polling()
                if self.retry is None:
                    self.retry = loop.call_later(
                        constants.ACCEPT_RETRY_DELAY, self._resume,
                        context=self.context)
                return
            if loop._debug:
                logger.debug("%r got a new connection from %r: %r",
                             self.server, addr, conn)
            self._serve(conn, addr)
            if self.poll is None:  # the server was closed meanwhile
                return

    def _serve(self, conn, addr):
        loop = self.loop
        client = stream_for_family(loop, self.family)
        fd = conn.detach()  # libuv owns the fd from here on
        try:
            client.open(fd)
        except OSError as exc:
            client.close()
            os.close(fd)
            if loop._debug:
                self._report_creation_error(exc, None, None)
            return
        extra = {"peername": addr}
        if self.sslcontext:
            loop.create_task(self._accept_tls(client, extra))
            return
        protocol = transport = None
        try:
            protocol = self.protocol_factory()
            transport = SocketTransport(loop, client, None, protocol,
                                        None, extra, self.server)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            if transport is None:
                client.close()
            else:
                transport.close()
            if loop._debug:
                self._report_creation_error(exc, protocol, transport)

    async def _accept_tls(self, client, extra):
        loop = self.loop
        protocol = transport = None
        try:
            protocol = self.protocol_factory()
            waiter = loop.create_future()
            ssl_protocol = new_ssl_protocol(
                loop, protocol, self.sslcontext, waiter, True, None,
                self.ssl_handshake_timeout, self.ssl_shutdown_timeout)
            SocketTransport(loop, client, None, ssl_protocol, None, extra,
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

    # the loop's slots for this concern (loop.py)
    _LOOP_STATE = {"_uv_listeners": None}  # listening socket -> _Listener

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
