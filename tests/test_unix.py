"""Unix-domain stream sockets: create_unix_connection/create_unix_server."""
import asyncio
import os
import pathlib
import socket
import sys
import tempfile

import pytest

from _netutil import Recorder, run

pytestmark = pytest.mark.skipif(not hasattr(socket, "AF_UNIX")
                                or sys.platform == "win32",
                                reason="AF_UNIX")


@pytest.fixture
def sock_path():
    d = tempfile.mkdtemp(prefix="uvffi-")
    path = os.path.join(d, "s.sock")
    yield path
    if os.path.exists(path):
        os.unlink(path)
    os.rmdir(d)


def _echo_factory(loop, store=None):
    def factory():
        p = Recorder(loop, echo=True)
        if store is not None:
            store.append(p)
        return p
    return factory


@pytest.mark.parametrize("kind", ["str", "bytes", "pathlike"])
def test_unix_echo_with_path_types(any_loop, sock_path, kind):
    loop = any_loop
    path = {"str": sock_path, "bytes": os.fsencode(sock_path),
            "pathlike": pathlib.Path(sock_path)}[kind]

    async def main():
        protos = []
        server = await loop.create_unix_server(_echo_factory(loop, protos),
                                               path)
        tr, pr = await loop.create_unix_connection(lambda: Recorder(loop),
                                                   path)
        tr.write(b"over unix")
        got = await pr.wait_data(9)
        sock = tr.get_extra_info("socket")
        info = (sock.family, tr.get_extra_info("peername"),
                protos[0].transport.get_extra_info("sockname"))
        tr.close()
        await pr.lost
        server.close()
        await server.wait_closed()
        return got, info

    got, (family, peer, srv_name) = run(loop, main())
    assert got == b"over unix"
    assert family == socket.AF_UNIX
    assert os.fsdecode(peer) == sock_path
    assert os.fsdecode(srv_name) == sock_path


def test_stale_socket_file_is_replaced(any_loop, sock_path):
    loop = any_loop
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(sock_path)
    stale.close()  # the file stays behind
    assert os.path.exists(sock_path)

    async def main():
        server = await loop.create_unix_server(_echo_factory(loop), sock_path)
        r, w = await asyncio.open_unix_connection(sock_path)
        w.write(b"ok")
        got = await r.readexactly(2)
        w.close()
        await w.wait_closed()
        server.close()
        await server.wait_closed()
        return got

    assert run(loop, main()) == b"ok"


def test_regular_file_at_path_is_not_removed(any_loop, sock_path):
    loop = any_loop
    with open(sock_path, "w") as f:
        f.write("keep me")
    with pytest.raises(OSError) as info:
        run(loop, loop.create_unix_server(asyncio.Protocol, sock_path))
    assert "already in use" in str(info.value)
    with open(sock_path) as f:
        assert f.read() == "keep me"


def test_socket_file_cleanup_follows_python_version(any_loop, sock_path):
    loop = any_loop

    async def main():
        server = await loop.create_unix_server(asyncio.Protocol, sock_path)
        server.close()
        await server.wait_closed()
        return os.path.exists(sock_path)

    exists = run(loop, main())
    # 3.13 removes the socket file on close (cleanup_socket=True)
    assert exists is (sys.version_info < (3, 13))


@pytest.mark.skipif(sys.version_info < (3, 13), reason="3.13+ parameter")
def test_cleanup_socket_false_keeps_file(any_loop, sock_path):
    loop = any_loop

    async def main():
        server = await loop.create_unix_server(asyncio.Protocol, sock_path,
                                               cleanup_socket=False)
        server.close()
        await server.wait_closed()
        return os.path.exists(sock_path)

    assert run(loop, main()) is True


@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="abstract namespace is Linux-only")
def test_abstract_socket(any_loop):
    loop = any_loop
    name = "\0uvffi-test-%d-%s" % (os.getpid(), id(loop))

    async def main():
        server = await loop.create_unix_server(_echo_factory(loop), name)
        tr, pr = await loop.create_unix_connection(lambda: Recorder(loop),
                                                   name)
        tr.write(b"abstract")
        got = await pr.wait_data(8)
        peer = tr.get_extra_info("peername")
        tr.close()
        server.close()
        await server.wait_closed()
        return got, peer

    got, peer = run(loop, main())
    assert got == b"abstract"
    assert peer == name.encode()


def test_connect_to_missing_path_raises(any_loop, sock_path):
    loop = any_loop
    with pytest.raises(FileNotFoundError):
        run(loop, loop.create_unix_connection(asyncio.Protocol, sock_path))


def test_connect_to_closed_listener_refused(any_loop, sock_path):
    loop = any_loop
    s = socket.socket(socket.AF_UNIX)
    s.bind(sock_path)
    s.close()
    with pytest.raises(ConnectionRefusedError):
        run(loop, loop.create_unix_connection(asyncio.Protocol, sock_path))


def test_unix_with_sock_arguments(any_loop, sock_path):
    loop = any_loop

    async def main():
        lsock = socket.socket(socket.AF_UNIX)
        lsock.bind(sock_path)
        server = await loop.create_unix_server(_echo_factory(loop),
                                               sock=lsock, backlog=10)
        csock = socket.socket(socket.AF_UNIX)
        csock.connect(sock_path)
        tr, pr = await loop.create_unix_connection(lambda: Recorder(loop),
                                                   sock=csock)
        tr.write(b"via sock")
        got = await pr.wait_data(8)
        tr.close()
        await pr.lost
        server.close()
        await server.wait_closed()
        return got

    assert run(loop, main()) == b"via sock"


def test_unix_argument_errors(any_loop, sock_path):
    loop = any_loop
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        cases = [
            (ValueError, "path and sock can not be specified",
             loop.create_unix_connection(asyncio.Protocol, sock_path,
                                         sock=udp)),
            (ValueError, "no path and sock were specified",
             loop.create_unix_connection(asyncio.Protocol)),
            (ValueError, "A UNIX Domain Stream Socket was expected",
             loop.create_unix_connection(asyncio.Protocol, sock=udp)),
            (ValueError, "server_hostname is only meaningful with ssl",
             loop.create_unix_connection(asyncio.Protocol, sock_path,
                                         server_hostname="x")),
            (ValueError, "you have to pass server_hostname when using ssl",
             loop.create_unix_connection(asyncio.Protocol, sock_path,
                                         ssl=True)),
            (ValueError, "ssl_handshake_timeout is only meaningful with ssl",
             loop.create_unix_connection(asyncio.Protocol, sock_path,
                                         ssl_handshake_timeout=1)),
            (TypeError, "ssl argument must be an SSLContext",
             loop.create_unix_server(asyncio.Protocol, sock_path, ssl=True)),
            (ValueError, "ssl_handshake_timeout is only meaningful with ssl",
             loop.create_unix_server(asyncio.Protocol, sock_path,
                                     ssl_handshake_timeout=1)),
            (ValueError, "path was not specified, and no sock specified",
             loop.create_unix_server(asyncio.Protocol)),
            (ValueError, "A UNIX Domain Stream Socket was expected",
             loop.create_unix_server(asyncio.Protocol, sock=udp)),
        ]
        for exc_type, msg, coro in cases:
            with pytest.raises(exc_type, match=msg):
                run(loop, coro)
    finally:
        udp.close()


def test_unix_write_eof_and_half_close(any_loop, sock_path):
    loop = any_loop

    async def main():
        protos = []

        class Replier(Recorder):
            def eof_received(self):
                super().eof_received()
                self.transport.write(b"bye:" + bytes(self.data))
                self.transport.close()
                return True

        server = await loop.create_unix_server(
            lambda: protos.append(Replier(loop)) or protos[-1], sock_path)
        tr, pr = await loop.create_unix_connection(
            lambda: Recorder(loop, keep_open_on_eof=True), sock_path)
        can = tr.can_write_eof()
        tr.write(b"data")
        tr.write_eof()
        await pr.eof
        tr.close()
        await pr.lost
        server.close()
        await server.wait_closed()
        return can, bytes(pr.data), pr.events

    can, data, events = run(loop, main())
    assert can is True and data == b"bye:data"
    assert events == ["made", "eof", "lost"]


def test_unix_streams_api(any_loop, sock_path):
    loop = any_loop

    async def handle(r, w):
        line = await r.readline()
        w.write(line.upper())
        await w.drain()
        w.close()

    async def main():
        server = await asyncio.start_unix_server(handle, sock_path)
        r, w = await asyncio.open_unix_connection(sock_path)
        w.write(b"hello\n")
        got = await r.read()
        w.close()
        await w.wait_closed()
        server.close()
        await server.wait_closed()
        return got

    assert run(loop, main()) == b"HELLO\n"


def test_unix_server_start_serving_false(any_loop, sock_path):
    loop = any_loop

    async def main():
        server = await loop.create_unix_server(_echo_factory(loop), sock_path,
                                               start_serving=False)
        before = server.is_serving()
        socks = server.sockets
        await server.start_serving()
        r, w = await asyncio.open_unix_connection(sock_path)
        w.write(b"late")
        got = await r.readexactly(4)
        w.close()
        await w.wait_closed()
        server.close()
        await server.wait_closed()
        return before, type(socks), len(socks), got

    assert run(loop, main()) == (False, tuple, 1, b"late")
