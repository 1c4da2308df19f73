"""Pipe servers and connections on libuv's own ``uv_pipe_t`` API.

On Windows libuv's pipes are named pipes (``\\\\.\\pipe\\name``) and there is
no AF_UNIX socket for asyncio's code path to start from, so
``create_unix_server``/``create_unix_connection`` use this module there:
``uv_pipe_bind`` + ``uv_listen``/``uv_accept`` for servers, ``uv_pipe_connect``
for clients, the shared stream transport on top.  On POSIX the very same
calls bind and connect AF_UNIX paths, which is how this code is tested on
Linux (``tests/test_named_pipes.py``); there the socket-based path of
``unix.py`` stays the default, for its EMFILE handling and socket extras.

A server's bound pipe stands in for the listening socket in asyncio's own
``Server`` (``PipeListener``); ``_start_serving``/``_stop_serving`` below
recognise it and pass everything else on.
"""
import contextvars
import functools
import os
import socket
from asyncio import constants

from .._uv import ffi, lib
from ..handles.errors import exception_from_uv
from .socketstream import new_ssl_protocol
from ..handles.stream import PipeStream
from .stream import StreamTransport

_NAME_MAX = 4096


def _pipe_name(getter, stream):
    """uv_pipe_getsockname/getpeername as asyncio reports an AF_UNIX name:
    a str path ('' when unnamed); a Linux abstract name as bytes."""
    size = ffi.new("size_t *", _NAME_MAX)
    buf = ffi.new("char[]", _NAME_MAX)
    rc = getter(stream.ptr, buf, size)
    if rc < 0:
        return None
    raw = ffi.unpack(buf, size[0])
    if raw[:1] == b"\0":
        return raw
    return os.fsdecode(raw)


class PipeTransport(StreamTransport):
    """A stream transport over a pipe made by libuv (no Python socket)."""

    # sendfile needs a socket fd; loop.sendfile falls back to read/write
    _sendfile_compatible = constants._SendfileMode.FALLBACK

    def __init__(self, loop, stream, protocol, waiter=None, extra=None, server=None):
        extra = dict(extra or {})
        extra.setdefault("sockname", _pipe_name(lib.uv_pipe_getsockname, stream))
        extra.setdefault("peername", _pipe_name(lib.uv_pipe_getpeername, stream))
        super().__init__(loop, stream, protocol, waiter, extra, server)


class PipeListener:
    """A bound, listening uv_pipe_t: the "socket" of a pipe server."""

    family = getattr(socket, "AF_UNIX", None)
    type = socket.SOCK_STREAM

    def __init__(self, loop, path):
        self._loop = loop
        self._path = path
        self._stream = PipeStream(loop)
        try:
            loop._fdwatch_flush_idle()  # libuv opens the socket unchecked
            rc = lib.uv_pipe_bind(self._stream.ptr, os.fsencode(path))
            if rc < 0:
                raise exception_from_uv(rc, path)
        except BaseException:
            self._stream.close()
            raise
        self._listening = False

    def __repr__(self):
        return "<PipeListener %r%s>" % (self._path, " closed" if self._stream.closing else "")

    def getsockname(self):
        return self._path

    def fileno(self):
        return self._stream.fileno()

    def listen(self, backlog):
        """asyncio's Server calls this first: uv_listen.  Connections are
        only delivered from uv_run, after start() has set the callback."""
        if self._listening or self._stream.closing:
            return
        self._stream.on_connection = self._not_started
        self._stream.listen(backlog)
        self._listening = True

    def _not_started(self, status):
        pass  # unreachable: start() runs before the loop can poll

    def start(self, protocol_factory, sslcontext, server, backlog,
              ssl_handshake_timeout, ssl_shutdown_timeout):
        if self._stream.closing:
            return
        self.listen(backlog)
        # accepting runs in the context current now, as servers.py's
        # listeners do: the factory sees it, each transport copies it
        self._stream.on_connection = functools.partial(
            contextvars.copy_context().run, self._on_connection,
            protocol_factory, sslcontext, server, ssl_handshake_timeout,
            ssl_shutdown_timeout)

    def _on_connection(self, protocol_factory, sslcontext, server,
                       ssl_handshake_timeout, ssl_shutdown_timeout, status):
        loop = self._loop
        if status < 0:
            loop.call_exception_handler({
                "message": "Error on pipe server accept",
                "exception": exception_from_uv(status), "socket": self})
            return
        client = PipeStream(loop)
        try:
            self._stream.accept(client)
        except OSError as exc:
            client.close()
            loop.call_exception_handler({
                "message": "Error on pipe server accept", "exception": exc,
                "socket": self})
            return
        try:
            protocol = protocol_factory()
            if sslcontext:
                ssl_protocol = new_ssl_protocol(
                    loop, protocol, sslcontext, None, True, None,
                    ssl_handshake_timeout, ssl_shutdown_timeout)
                PipeTransport(loop, client, ssl_protocol, server=server)
            else:
                PipeTransport(loop, client, protocol, server=server)
        except (SystemExit, KeyboardInterrupt):
            client.close()
            raise
        except BaseException as exc:
            client.close()
            # as asyncio's accept path: reported in debug mode
            if loop.get_debug():
                loop.call_exception_handler({
                    "message": "Error on transport creation for incoming connection",
                    "exception": exc})

    def close(self):
        self._listening = False
        self._stream.close()


class NamedPipeMixin:
    """The uv_pipe_t-native server/connection path (see the module doc)."""

    async def _create_pipe_connection(self, protocol_factory, path, ssl=None,
                                      server_hostname=None,
                                      ssl_handshake_timeout=None,
                                      ssl_shutdown_timeout=None):
        stream = PipeStream(self)
        connected = self.create_future()

        def on_connect(status):
            if not connected.done():
                connected.set_result(status)
        stream.on_connect = on_connect
        req = ffi.new("uv_connect_t *")
        self._fdwatch_flush_idle()  # libuv opens the socket unchecked
        lib.uvffi_pipe_connect(req, stream.ptr, os.fsencode(path))
        stream.hold_request(req)  # uv_pipe_connect always calls back, even on error
        try:
            status = await connected
        except BaseException:
            stream.close()  # libuv completes the request with ECANCELED
            raise
        if status < 0:
            stream.close()
            raise exception_from_uv(status, path)

        protocol = protocol_factory()
        waiter = self.create_future()
        try:
            if ssl:
                sslcontext = None if isinstance(ssl, bool) else ssl
                if sslcontext is None:
                    import ssl as ssl_module
                    sslcontext = ssl_module.create_default_context()
                app = new_ssl_protocol(
                    self, protocol, sslcontext, waiter, False, server_hostname,
                    ssl_handshake_timeout, ssl_shutdown_timeout)
                transport = PipeTransport(self, stream, app)
                await waiter
                return app._app_transport, protocol
            transport = PipeTransport(self, stream, protocol, waiter)
            await waiter
        except BaseException:
            if not stream.closing:
                stream.close()
            raise
        return transport, protocol

    def _pipe_listener(self, path):
        return PipeListener(self, path)

    def _start_serving(self, protocol_factory, sock, *args, **kwargs):
        if isinstance(sock, PipeListener):
            # asyncio's Server passes (sslcontext, server, backlog,
            # ssl_handshake_timeout[, ssl_shutdown_timeout]) positionally
            params = list(args) + [None] * (5 - len(args))
            sslcontext, server, backlog, hs_timeout, sd_timeout = params[:5]
            sock.start(protocol_factory, sslcontext, server,
                       100 if backlog is None else backlog,
                       hs_timeout or constants.SSL_HANDSHAKE_TIMEOUT,
                       kwargs.get("ssl_shutdown_timeout", sd_timeout))
            return
        return super()._start_serving(protocol_factory, sock, *args, **kwargs)

    def _stop_serving(self, sock):
        if isinstance(sock, PipeListener):
            sock.close()
            return
        return super()._stop_serving(sock)

