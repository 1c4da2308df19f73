"""Large writes arrive whole and in order, whatever buffer type carries them.

A multi-megabyte write() is more than the kernel takes at once: the
transport sends what it can straight away and hands the rest (from an
offset into the caller's buffer) to libuv.  These tests pin down the bytes
that arrive for every way a tail is handed over (bytes, bytearray reused
right after write(), memoryviews of other item formats and sliced ones,
writelines) over TCP, Unix sockets, subprocess pipes and sock_sendall, on
asyncio's loop and on uvffi's.
"""
import array
import asyncio
import hashlib
import os
import socket
import sys

import pytest

SIZE = 5 * 1024 * 1024 + 7  # odd: tails start at unaligned offsets
TIMEOUT = 60


def _pattern(size=SIZE):
    # not one repeated byte: a tail taken from the wrong offset shows
    block = hashlib.sha256(b"uvffi").digest() * 4096  # 128 KiB
    return (block * (size // len(block) + 1))[:size]


class _Collector(asyncio.Protocol):
    def __init__(self, loop, expected):
        self.chunks = []
        self.got = 0
        self.expected = expected
        self.done = loop.create_future()

    def data_received(self, data):
        self.chunks.append(data)
        self.got += len(data)
        if self.got >= self.expected and not self.done.done():
            self.done.set_result(b"".join(self.chunks))

    def connection_lost(self, exc):
        if not self.done.done():
            self.done.set_result(b"".join(self.chunks))


async def _connected(loop, family, tmp_path, expected):
    collector = _Collector(loop, expected)
    if family == "tcp":
        server = await loop.create_server(lambda: collector, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
    else:
        path = str(tmp_path / "s")
        server = await loop.create_unix_server(lambda: collector, path)
        transport, _ = await loop.create_unix_connection(asyncio.Protocol, path)
    return server, transport, collector


async def _wait_drained(loop, transport):
    while transport.get_write_buffer_size():
        await asyncio.sleep(0.001)


def _assert_same(got, expected):
    # pytest's own diff of two multi-megabyte bytes objects runs for minutes:
    # say where they part instead
    if got == expected:
        return
    n = min(len(got), len(expected))
    first = next((i for i in range(n) if got[i] != expected[i]), n)
    raise AssertionError(
        "received %d bytes, expected %d; first difference at offset %d"
        % (len(got), len(expected), first))


def _copies_on_write(loop):
    # asyncio's selector transport keeps a view of the caller's buffer for
    # the unsent tail since 3.12 (it copied it before); uvffi copies whatever
    # the kernel did not take
    return getattr(loop, "kind", "uvffi") == "uvffi" or sys.version_info < (3, 12)


def _as(kind, data):
    if kind == "bytes":
        return data
    if kind == "bytearray":
        return bytearray(data)
    if kind == "memoryview":
        return memoryview(data)
    if kind == "sliced memoryview":
        return memoryview(b"--" + data + b"--")[2:-2]
    if kind == "int array":
        # another item format: write() counts bytes, not items
        return memoryview(array.array("i", data[: len(data) // 4 * 4]))
    raise AssertionError(kind)


KINDS = ["bytes", "bytearray", "memoryview", "sliced memoryview"]


@pytest.mark.parametrize("family", ["tcp", "unix"])
@pytest.mark.parametrize("kind", KINDS)
def test_large_write_arrives_whole(any_loop, family, kind, tmp_path):
    loop = any_loop
    data = _pattern()
    payload = _as(kind, data)
    expected = bytes(payload)

    async def main():
        server, transport, collector = await _connected(
            loop, family, tmp_path, len(expected))
        transport.write(payload)
        if kind == "bytearray" and _copies_on_write(loop):
            # the caller may reuse its buffer once write() returns
            payload[:] = b"\0" * len(payload)
        got = await asyncio.wait_for(collector.done, TIMEOUT)
        transport.close()
        server.close()
        await server.wait_closed()
        return got

    _assert_same(loop.run_until_complete(main()), expected)


@pytest.mark.parametrize("family", ["tcp", "unix"])
def test_large_write_of_a_memoryview_of_ints_counts_bytes(loop, family, tmp_path):
    # uvffi only: asyncio's selector transport slices what is left by the
    # byte count send() returned, in items, and loses bytes on such views
    payload = _as("int array", _pattern())
    expected = bytes(payload)

    async def main():
        server, transport, collector = await _connected(
            loop, family, tmp_path, len(expected))
        transport.write(payload)
        got = await asyncio.wait_for(collector.done, TIMEOUT)
        transport.close()
        server.close()
        return got

    _assert_same(loop.run_until_complete(main()), expected)


@pytest.mark.parametrize("family", ["tcp", "unix"])
def test_large_writes_behind_one_in_flight_arrive_in_order(any_loop, family, tmp_path):
    loop = any_loop
    data = _pattern()
    parts = [data[:SIZE // 3], bytearray(data[SIZE // 3: SIZE // 2]),
             memoryview(data)[SIZE // 2:]]

    async def main():
        server, transport, collector = await _connected(loop, family, tmp_path, SIZE)
        for part in parts:
            transport.write(part)
        got = await asyncio.wait_for(collector.done, TIMEOUT)
        transport.close()
        server.close()
        return got

    _assert_same(loop.run_until_complete(main()), data)


def test_large_writelines_arrives_whole(any_loop):
    loop = any_loop
    data = _pattern()
    pieces = [data[i:i + 300_001] for i in range(0, SIZE, 300_001)]

    async def main():
        server, transport, collector = await _connected(loop, "tcp", None, SIZE)
        transport.writelines(pieces)
        got = await asyncio.wait_for(collector.done, TIMEOUT)
        transport.close()
        server.close()
        return got

    _assert_same(loop.run_until_complete(main()), data)


@pytest.mark.skipif(sys.platform == "win32", reason="uses cat")
@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview"])
def test_large_write_to_a_subprocess_pipe_arrives_whole(any_loop, kind):
    loop = any_loop
    data = _pattern()
    payload = _as(kind, data)

    async def main():
        proc = await asyncio.create_subprocess_exec(
            "cat", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        out, _ = await asyncio.wait_for(proc.communicate(payload), TIMEOUT)
        return out

    _assert_same(loop.run_until_complete(main()), data)


@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview"])
def test_large_write_then_drain_on_a_stream_writer(any_loop, kind):
    loop = any_loop
    data = _pattern()
    payload = _as(kind, data)

    async def main():
        received = loop.create_future()

        async def serve(reader, writer):
            received.set_result(await reader.readexactly(SIZE))
            writer.close()
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(payload)
        await asyncio.wait_for(writer.drain(), TIMEOUT)
        got = await asyncio.wait_for(received, TIMEOUT)
        writer.close()
        server.close()
        return got

    _assert_same(loop.run_until_complete(main()), data)


@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview"])
def test_large_sock_sendall_arrives_whole(any_loop, kind):
    loop = any_loop
    data = _pattern(12 * 1024 * 1024 + 3)  # several send windows
    payload = _as(kind, data)

    async def main():
        collector = _Collector(loop, len(data))
        server = await loop.create_server(lambda: collector, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        with socket.socket() as sock:
            sock.setblocking(False)
            await loop.sock_connect(sock, ("127.0.0.1", port))
            await asyncio.wait_for(loop.sock_sendall(sock, payload), TIMEOUT)
            got = await asyncio.wait_for(collector.done, TIMEOUT)
        server.close()
        return got

    _assert_same(loop.run_until_complete(main()), data)


def test_large_write_on_a_pipe_made_with_connect_write_pipe(any_loop):
    loop = any_loop
    data = _pattern()

    async def main():
        rfd, wfd = os.pipe()
        collector = _Collector(loop, SIZE)
        rtransport, _ = await loop.connect_read_pipe(lambda: collector, os.fdopen(rfd, "rb", 0))
        wtransport, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(wfd, "wb", 0))
        wtransport.write(bytearray(data))
        got = await asyncio.wait_for(collector.done, TIMEOUT)
        wtransport.close()
        rtransport.close()
        return got

    _assert_same(loop.run_until_complete(main()), data)
