"""What write() leaves to libuv when the kernel does not take everything:
bytes are handed over without a copy (they cannot change), any other
buffer is copied (asyncio lets the caller reuse it once write() returns).
Both loops must deliver exactly what was written at the time of the call."""
import asyncio
import socket

import pytest


@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview"])
def test_partial_write_delivers_the_data_as_it_was_when_written(any_loop, kind):
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
