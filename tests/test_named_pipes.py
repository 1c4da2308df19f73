"""The uv_pipe_t-native path of create_unix_server/create_unix_connection
(namedpipes.py): what Windows uses for named pipes, exercised here on
Linux with AF_UNIX paths through the very same libuv calls."""
import asyncio
import gc
import os
import ssl
import sys

import pytest

import uvffi
from uvffi.facets import unix as uvffi_unix

pytestmark = pytest.mark.skipif(sys.platform == "win32",
                                reason="POSIX paths stand in for pipe names here")

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


@pytest.fixture
def native(monkeypatch):
    monkeypatch.setattr(uvffi_unix, "_NATIVE_PIPES", True)


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "pipe.sock")


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


class Collect(asyncio.Protocol):
    def __init__(self):
        self.data = bytearray()
        self.lost = None

    def connection_made(self, transport):
        self.transport = transport
        self.closed = asyncio.get_running_loop().create_future()

    def data_received(self, data):
        self.data += data

    def connection_lost(self, exc):
        self.lost = exc
        if not self.closed.done():
            self.closed.set_result(None)


def test_echo_round_trip_over_a_native_pipe_server(loop, native, path):
    async def main():
        server = await loop.create_unix_server(Echo, path)
        assert server.is_serving()
        assert len(server.sockets) == 1
        assert server.sockets[0].getsockname() == path
        transport, proto = await loop.create_unix_connection(Collect, path)
        assert transport.get_extra_info("peername") == path
        payload = os.urandom(1 << 20)  # more than a socket buffer: flow control
        transport.write(payload)
        while len(proto.data) < len(payload):
            await asyncio.sleep(0.01)
        assert bytes(proto.data) == payload
        transport.close()
        await proto.closed
        assert proto.lost is None
        server.close()
        await server.wait_closed()
        assert not server.is_serving()
    loop.run_until_complete(asyncio.wait_for(main(), 30))


def test_streams_api_works_on_native_pipes(loop, native, path):
    async def handle(reader, writer):
        line = await reader.readline()
        writer.write(line.upper())
        await writer.drain()
        writer.close()

    async def main():
        server = await asyncio.start_unix_server(handle, path)
        async with server:
            reader, writer = await asyncio.open_unix_connection(path)
            writer.write(b"hello pipe\n")
            assert await reader.readline() == b"HELLO PIPE\n"
            assert await reader.read() == b""
            writer.close()
            await writer.wait_closed()
    loop.run_until_complete(asyncio.wait_for(main(), 30))


def test_connecting_to_a_missing_pipe_raises_file_not_found(loop, native, path):
    async def main():
        with pytest.raises(FileNotFoundError):
            await loop.create_unix_connection(Collect, path)
    loop.run_until_complete(main())
    assert not [h for h in loop._uv_handles if type(h).__name__ == "PipeStream"
                and not h.closing]


def test_binding_a_taken_name_raises_address_in_use(loop, native, path):
    async def main():
        server = await loop.create_unix_server(Echo, path)
        try:
            with pytest.raises(OSError) as info:
                await loop.create_unix_server(Echo, path)
            assert info.value.errno is not None
        finally:
            server.close()
            await server.wait_closed()
    loop.run_until_complete(main())


def test_sock_argument_is_refused_for_pipe_names(loop, native, path):
    import socket
    s = socket.socket(socket.AF_UNIX)
    try:
        async def main():
            with pytest.raises(ValueError, match="sock is not supported"):
                await loop.create_unix_connection(Collect, sock=s)
            with pytest.raises(ValueError, match="sock is not supported"):
                await loop.create_unix_server(Echo, sock=s)
            with pytest.raises(ValueError, match="no path and sock"):
                await loop.create_unix_connection(Collect)
        loop.run_until_complete(main())
    finally:
        s.close()


def test_server_created_without_serving_starts_later(loop, native, path):
    async def main():
        server = await loop.create_unix_server(Echo, path, start_serving=False)
        assert not server.is_serving()
        await server.start_serving()
        assert server.is_serving()
        transport, proto = await loop.create_unix_connection(Collect, path)
        transport.write(b"ping")
        while bytes(proto.data) != b"ping":
            await asyncio.sleep(0.01)
        transport.close()
        server.close()
        await server.wait_closed()
    loop.run_until_complete(asyncio.wait_for(main(), 30))


def test_tls_over_a_native_pipe(loop, native, path):
    cert, key = os.path.join(DATA, "uvffi_test.crt"), os.path.join(DATA, "uvffi_test.key")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=cert)

    async def handle(reader, writer):
        writer.write(await reader.readexactly(5))
        await writer.drain()
        writer.close()

    async def main():
        server = await asyncio.start_unix_server(handle, path, ssl=server_ctx)
        async with server:
            reader, writer = await asyncio.open_unix_connection(
                path, ssl=client_ctx, server_hostname="localhost")
            writer.write(b"tls!!")
            assert await reader.readexactly(5) == b"tls!!"
            assert writer.get_extra_info("ssl_object") is not None
            writer.close()
            try:
                await writer.wait_closed()
            except (ssl.SSLError, ConnectionError):
                pass
    loop.run_until_complete(asyncio.wait_for(main(), 30))


def test_closing_the_loop_with_an_open_pipe_server_and_connection_frees_all():
    lp = uvffi.new_event_loop()
    import tempfile
    d = tempfile.mkdtemp()
    p = os.path.join(d, "pipe.sock")
    old = uvffi_unix._NATIVE_PIPES
    uvffi_unix._NATIVE_PIPES = True
    try:
        async def main():
            await lp.create_unix_server(Echo, p)
            await lp.create_unix_connection(Collect, p)
        lp.run_until_complete(main())
    finally:
        uvffi_unix._NATIVE_PIPES = old
    lp.close()
    assert lp._uv_handles == set()
    gc.collect()
    if os.path.exists(p):
        os.unlink(p)
    os.rmdir(d)


def test_native_pipe_server_protocol_sees_the_create_server_context(
        loop, native, path):
    import contextvars
    cvar = contextvars.ContextVar("cvar", default="outer")
    seen = []

    class Note(asyncio.Protocol):
        def __init__(self):
            seen.append(("factory", cvar.get()))

        def connection_made(self, transport):
            seen.append(("connection_made", cvar.get()))

        def data_received(self, data):
            seen.append(("data_received", cvar.get()))
            got.set_result(None)

    async def main():
        cvar.set("inner")
        srv = await loop.create_unix_server(Note, path)
        cvar.set("changed after create_unix_server")
        tr, _ = await loop.create_unix_connection(asyncio.Protocol, path)
        tr.write(b"x")
        await asyncio.wait_for(got, 10)
        tr.close()
        srv.close()
        await srv.wait_closed()

    got = loop.create_future()
    contextvars.Context().run(loop.run_until_complete, main())
    assert seen == [("factory", "inner"), ("connection_made", "inner"),
                    ("data_received", "inner")]
