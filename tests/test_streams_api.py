"""asyncio's high-level streams (open_connection, start_server) run
unchanged on the loop."""
import asyncio

import pytest

from _netutil import run


async def _upper_handler(reader, writer):
    while True:
        line = await reader.readline()
        if not line:
            break
        writer.write(line.upper())
        await writer.drain()
    writer.close()
    await writer.wait_closed()


def test_open_connection_start_server_lines(any_loop):
    loop = any_loop

    async def main():
        server = await asyncio.start_server(_upper_handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        out = []
        for word in (b"alpha\n", b"beta\n", b"gamma\n"):
            writer.write(word)
            await writer.drain()
            out.append(await reader.readline())
        writer.write_eof()
        tail = await reader.read()
        at_eof = reader.at_eof()
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return out, tail, at_eof

    out, tail, at_eof = run(loop, main())
    assert out == [b"ALPHA\n", b"BETA\n", b"GAMMA\n"]
    assert tail == b"" and at_eof


def test_drain_with_large_payload_and_readexactly(any_loop):
    loop = any_loop
    payload = bytes(range(256)) * 40000  # ~10 MiB

    async def handler(reader, writer):
        data = await reader.readexactly(len(payload))
        writer.write(data)
        await writer.drain()
        writer.close()

    async def main():
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port,
                                                       limit=2 ** 16)
        writer.write(payload)
        await writer.drain()
        got = await reader.readexactly(len(payload))
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return got == payload

    assert run(loop, main()) is True


def test_incomplete_read_when_peer_closes(any_loop):
    loop = any_loop

    async def handler(reader, writer):
        writer.write(b"short")
        writer.close()

    async def main():
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            await reader.readexactly(100)
        finally:
            writer.close()
            server.close()
            await server.wait_closed()

    with pytest.raises(asyncio.IncompleteReadError) as info:
        run(loop, main())
    assert info.value.partial == b"short"


def test_writer_extra_info_and_transport(any_loop):
    loop = any_loop

    async def main():
        seen = loop.create_future()

        async def handler(reader, writer):
            seen.set_result(writer.get_extra_info("peername"))
            writer.close()

        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        mine = writer.get_extra_info("sockname")
        theirs = await seen
        can_eof = writer.can_write_eof()
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return mine, theirs, can_eof

    mine, theirs, can_eof = run(loop, main())
    assert mine == theirs and can_eof


def test_server_side_reset_surfaces_as_connection_error(any_loop):
    loop = any_loop

    async def handler(reader, writer):
        sock = writer.get_extra_info("socket")
        import socket as _s
        sock.setsockopt(_s.SOL_SOCKET, _s.SO_LINGER,
                        b"\x01\x00\x00\x00\x00\x00\x00\x00")
        writer.transport.abort()

    async def main():
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            data = await reader.read(10)
            return data
        finally:
            writer.close()
            server.close()
            await server.wait_closed()

    try:
        result = run(loop, main())
    except ConnectionResetError:
        result = "reset"
    assert result in (b"", "reset")
