r"""Loop methods for Unix-domain stream sockets on uv_pipe_t.

``create_unix_connection``/``create_unix_server`` are asyncio's
``_UnixSelectorEventLoop`` methods (same checks, messages and stale-socket
handling); connections and listening sockets go through the shared hooks of
``transports/socketstream.py``/``servers.py``, which pick a ``uv_pipe_t`` for AF_UNIX.

On Windows libuv's uv_pipe_t speaks named pipes, not AF_UNIX sockets: there
both methods take a pipe name (``\\.\pipe\name``) and go through
namedpipes.py, libuv's own pipe API (tested on Linux with socket paths).
"""
import errno
import inspect
import logging
import os
import socket
import stat
import sys
from asyncio import base_events, tasks

from .servers import ServingMixin

logger = logging.getLogger("asyncio")

_HAS_AF_UNIX = hasattr(socket, "AF_UNIX") and sys.platform != "win32"
# uv_pipe_bind/uv_pipe_connect instead of AF_UNIX sockets (namedpipes.py)
_NATIVE_PIPES = sys.platform == "win32"
_PY313 = sys.version_info >= (3, 13)
_TRANSPORT_HAS_SHUTDOWN_TIMEOUT = "ssl_shutdown_timeout" in inspect.signature(
    base_events.BaseEventLoop._create_connection_transport).parameters


def _is_abstract(path):
    # Linux abstract namespace: a leading NUL, as str or bytes
    return not path or path[0] in (0, "\x00")


class UnixMixin(ServingMixin):
    """create_unix_connection / create_unix_server."""

    # the loop's slots for this concern (loop.py)
    _LOOP_STATE = {"_unix_server_sockets": None}  # listening sock -> inode of its file (3.13)

    async def create_unix_connection(
            self, protocol_factory, path=None, *, ssl=None, sock=None,
            server_hostname=None, ssl_handshake_timeout=None,
            ssl_shutdown_timeout=None):
        if not _HAS_AF_UNIX and not _NATIVE_PIPES:
            raise NotImplementedError
        assert server_hostname is None or isinstance(server_hostname, str)
        if ssl:
            if server_hostname is None:
                raise ValueError(
                    "you have to pass server_hostname when using ssl")
        else:
            if server_hostname is not None:
                raise ValueError("server_hostname is only meaningful with ssl")
            if ssl_handshake_timeout is not None:
                raise ValueError(
                    "ssl_handshake_timeout is only meaningful with ssl")
            if ssl_shutdown_timeout is not None:
                raise ValueError(
                    "ssl_shutdown_timeout is only meaningful with ssl")

        if _NATIVE_PIPES:
            if sock is not None:
                raise ValueError("sock is not supported for named pipes")
            if path is None:
                raise ValueError("no path and sock were specified")
            return await self._create_pipe_connection(
                protocol_factory, os.fspath(path), ssl, server_hostname,
                ssl_handshake_timeout, ssl_shutdown_timeout)
        if path is not None:
            if sock is not None:
                raise ValueError(
                    "path and sock can not be specified at the same time")
            path = os.fspath(path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0)
            try:
                sock.setblocking(False)
                await self.sock_connect(sock, path)
            except BaseException:
                sock.close()
                raise
        else:
            if sock is None:
                raise ValueError("no path and sock were specified")
            if (sock.family != socket.AF_UNIX or
                    sock.type != socket.SOCK_STREAM):
                raise ValueError(
                    f"A UNIX Domain Stream Socket was expected, got {sock!r}")
            sock.setblocking(False)

        kwargs = {"ssl_handshake_timeout": ssl_handshake_timeout}
        if _TRANSPORT_HAS_SHUTDOWN_TIMEOUT:
            kwargs["ssl_shutdown_timeout"] = ssl_shutdown_timeout
        return await self._create_connection_transport(
            sock, protocol_factory, ssl, server_hostname, **kwargs)

    async def create_unix_server(
            self, protocol_factory, path=None, *, sock=None, backlog=100,
            ssl=None, ssl_handshake_timeout=None, ssl_shutdown_timeout=None,
            start_serving=True, cleanup_socket=None):
        # cleanup_socket is 3.13's: default on there, off before (as the
        # running Python's asyncio behaves).
        if not _HAS_AF_UNIX and not _NATIVE_PIPES:
            raise NotImplementedError
        if cleanup_socket is None:
            cleanup_socket = _PY313
        if isinstance(ssl, bool):
            raise TypeError("ssl argument must be an SSLContext or None")
        if ssl_handshake_timeout is not None and not ssl:
            raise ValueError(
                "ssl_handshake_timeout is only meaningful with ssl")
        if ssl_shutdown_timeout is not None and not ssl:
            raise ValueError(
                "ssl_shutdown_timeout is only meaningful with ssl")

        if _NATIVE_PIPES:
            if sock is not None:
                raise ValueError("sock is not supported for named pipes")
            if path is None:
                raise ValueError("path was not specified, and no sock specified")
            sock = self._pipe_listener(os.fspath(path))
        elif path is not None:
            if sock is not None:
                raise ValueError(
                    "path and sock can not be specified at the same time")
            path = os.fspath(path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            if not _is_abstract(path):
                self._remove_stale_socket(path)
            try:
                sock.bind(path)
            except OSError as exc:
                sock.close()
                if exc.errno == errno.EADDRINUSE:
                    raise OSError(errno.EADDRINUSE,
                                  f"Address {path!r} is already in use"
                                  ) from None
                raise
            except BaseException:
                sock.close()
                raise
        else:
            if sock is None:
                raise ValueError(
                    "path was not specified, and no sock specified")
            if (sock.family != socket.AF_UNIX or
                    sock.type != socket.SOCK_STREAM):
                raise ValueError(
                    f"A UNIX Domain Stream Socket was expected, got {sock!r}")

        if cleanup_socket and not _NATIVE_PIPES:
            name = sock.getsockname()
            if not _is_abstract(name):
                try:
                    inode = os.stat(name).st_ino
                except FileNotFoundError:
                    pass
                else:
                    if self._unix_server_sockets is None:
                        self._unix_server_sockets = {}
                    self._unix_server_sockets[sock] = inode

        if not _NATIVE_PIPES:
            sock.setblocking(False)
        args = [self, [sock], protocol_factory, ssl, backlog,
                ssl_handshake_timeout]
        if _TRANSPORT_HAS_SHUTDOWN_TIMEOUT:  # Server grew it in 3.11 too
            args.append(ssl_shutdown_timeout)
        server = base_events.Server(*args)
        if start_serving:
            server._start_serving()
            # as asyncio: one iteration so that listening has begun
            await tasks.sleep(0)
        return server

    @staticmethod
    def _remove_stale_socket(path):
        # a socket file left by a dead server would make bind() fail
        try:
            if stat.S_ISSOCK(os.stat(path).st_mode):
                os.remove(path)
        except FileNotFoundError:
            pass
        except OSError as err:
            # the directory may only allow creating the socket
            logger.error("Unable to check or remove stale UNIX socket "
                         "%r: %r", path, err)

    def _stop_serving(self, sock):
        inodes = self._unix_server_sockets
        path = None
        if inodes and sock in inodes:
            path = sock.getsockname()
        super()._stop_serving(sock)
        if path is not None:
            inode = inodes.pop(sock)
            # only our own file: another server may have taken the path
            try:
                if os.stat(path).st_ino == inode:
                    os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as err:
                logger.error("Unable to clean up listening UNIX socket "
                             "%r: %r", path, err)
