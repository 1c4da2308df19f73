"""What write() leaves to libuv when the kernel does not take everything:
bytes are handed over without a copy (they cannot change), any other
buffer is copied (asyncio lets the caller reuse it once write() returns).
Both loops must deliver exactly what was written at the time of the call."""
import asyncio
import socket
import sys

import pytest


@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview"])
def test_partial_write_delivers_the_data_as_it_was_when_written(any_loop, kind):
    if any_loop.kind == "asyncio" and kind != "bytes" and sys.version_info >= (3, 12):
        pytest.skip("asyncio 3.12+ queues a view of the caller's buffer, not a copy")
    size = 8 * 1024 * 1024  # more than the socket buffers take at once
    original = bytes(range(256)) * (size // 256)

    async def main():
        a, b = socket.socketpair()
        b.setblocking(False)
        tr, _ = await any_loop.connect_accepted_socket(asyncio.Protocol, a)
        try:
            if kind == "bytes":
                data = bytes(original)
            elif kind == "bytearray":
                data = bytearray(original)
            else:
                data = memoryview(bytearray(original))
            tr.write(data)
            assert tr.get_write_buffer_size() > 0  # the rest waits in the loop
            if kind != "bytes":
                data[:] = b"\0" * size  # the caller reuses its buffer at once
            received = bytearray()
            while len(received) < size:
                try:
                    received += await any_loop.sock_recv(b, 1 << 20)
                except BlockingIOError:
                    await asyncio.sleep(0)
            assert bytes(received) == original
        finally:
            tr.close()
            b.close()
    any_loop.run_until_complete(main())


async def _pair(loop):
    a, b = socket.socketpair()
    b.setblocking(False)
    tr, proto = await loop.connect_accepted_socket(asyncio.Protocol, a)
    return tr, b


async def _read_all(loop, sock, size):
    received = bytearray()
    while len(received) < size:
        chunk = await loop.sock_recv(sock, 1 << 20)
        if not chunk:
            break
        received += chunk
    return bytes(received)


@pytest.mark.parametrize("kind", ["bytes", "memoryview"])
def test_write_after_write_eof_raises(any_loop, kind):
    async def main():
        tr, b = await _pair(any_loop)
        try:
            tr.write_eof()
            data = b"late" if kind == "bytes" else memoryview(b"late")
            with pytest.raises(RuntimeError, match=r"Cannot call write\(\) after write_eof\(\)"):
                tr.write(data)
            assert await _read_all(any_loop, b, 1) == b""  # EOF, nothing else
        finally:
            tr.close()
            b.close()
    any_loop.run_until_complete(main())


@pytest.mark.parametrize("how", ["close", "abort"])
def test_writes_after_close_are_dropped_and_logged_as_asyncio_does(any_loop, how, caplog):
    async def main():
        tr, b = await _pair(any_loop)
        try:
            tr.write(b"before")
            getattr(tr, how)()
            for _ in range(8):
                tr.write(b"after")
                tr.write(memoryview(b"after"))
            await asyncio.sleep(0.05)
            return await _read_all(any_loop, b, 100)
        finally:
            b.close()
    with caplog.at_level("WARNING", logger="asyncio"):
        got = any_loop.run_until_complete(main())
    assert got == b"before"  # taken by the kernel before close()/abort()
    assert "socket.send() raised exception." in caplog.text


def test_queued_writes_keep_their_order_and_the_fast_path_comes_back(any_loop):
    big = bytes(range(256)) * (8 * 1024 * 1024 // 256)  # more than the kernel takes

    async def main():
        tr, b = await _pair(any_loop)
        try:
            tr.write(big)
            assert tr.get_write_buffer_size() > 0
            # (byte-format views only: asyncio 3.12+ counts a view of
            # another format by items, and its queue then never drains)
            parts = [b"one", memoryview(b"two"), bytearray(b"three"),
                     memoryview(bytearray(b"four"))]
            for part in parts:
                tr.write(part)
            expected = big + b"onetwothreefour"
            assert await _read_all(any_loop, b, len(expected)) == expected
            while tr.get_write_buffer_size():
                await asyncio.sleep(0.001)
            await asyncio.sleep(0.01)
            if any_loop.kind == "uvffi":
                # the write gate is open again: direct writes where they apply
                from uvffi.handles import stream as streamhandle
                assert (tr._wstream.wfd >= 0) == streamhandle._OS_WRITES
            tr.write(b"after the queue drained")
            assert await _read_all(any_loop, b, 23) == b"after the queue drained"
        finally:
            tr.close()
            b.close()
    any_loop.run_until_complete(main())
