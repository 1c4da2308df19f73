"""KeyboardInterrupt (or SystemExit) raised by a protocol callback leaves
run_until_complete() as on asyncio, and the connection goes on afterwards
as it does on asyncio's loop: no data lost, EOF still delivered, the
transport still closes.  Each test runs on SelectorEventLoop too.

On asyncio such an exception leaves the socket's reader registered and
unread data in the kernel, so the next poll goes on where it stopped.  On
uvffi libuv may already have read the data, or stopped reading at EOF;
these tests pin that it is handed over again (Stream.hold with first=True,
the EOF restart in transports/stream.py)."""
import asyncio
import os
import socket

import pytest

from uvffi.handles import streamreads
from test_direct_reads import LARGE_READ_MODES


@pytest.fixture(params=sorted(LARGE_READ_MODES))
def large_read_mode(request, monkeypatch, any_loop):
    """Large reads by uvffi itself (POSIX) or through libuv (elsewhere),
    as in test_direct_reads."""
    if any_loop.kind != "uvffi" and request.param != "self":
        pytest.skip("one way of reading on asyncio's loop")
    if request.param == "self" and os.name != "posix":
        pytest.skip("self reads are POSIX only")
    monkeypatch.setattr(streamreads, "BUFFERED_LARGE_MODE", LARGE_READ_MODES[request.param])


def _run_through_interrupts(loop, aw, timeout=10):
    """Run *aw* to completion, counting the KeyboardInterrupts that leave
    run_until_complete() on the way."""
    fut = asyncio.ensure_future(aw, loop=loop)
    interrupts = 0
    while True:
        try:
            return interrupts, loop.run_until_complete(
                asyncio.wait_for(asyncio.shield(fut), timeout))
        except KeyboardInterrupt:
            interrupts += 1


class Buffered(asyncio.BufferedProtocol):
    """Raises KeyboardInterrupt from the nth get_buffer() or buffer_updated()."""

    def __init__(self, loop, where, nth, bufsize):
        self.where, self.nth = where, nth
        self.buf = bytearray(bufsize)
        self.data = bytearray()
        self.calls = {"get_buffer": 0, "buffer_updated": 0}
        self.lost = loop.create_future()

    def connection_made(self, transport):
        self.transport = transport

    def _count(self, name):
        self.calls[name] += 1
        if name == self.where and self.calls[name] == self.nth:
            raise KeyboardInterrupt

    def get_buffer(self, sizehint):
        self._count("get_buffer")
        return self.buf

    def buffer_updated(self, nbytes):
        self.data += self.buf[:nbytes]
        self._count("buffer_updated")

    def eof_received(self):
        return None

    def connection_lost(self, exc):
        self.lost.set_result(exc)


async def _served(loop, factory):
    protos = []

    def make():
        protos.append(factory())
        return protos[-1]
    server = await loop.create_server(make, "127.0.0.1", 0)
    client = socket.create_connection(server.sockets[0].getsockname())
    return server, protos, client


@pytest.mark.parametrize("where,nth,bufsize,total", [
    ("get_buffer", 1, 64 * 1024, 1000),        # the first read, one buffer
    ("get_buffer", 3, 100, 1000),              # a read copied in pieces
    ("buffer_updated", 2, 100, 1000),          # the rest of that read
    ("get_buffer", 2, 4096, 100 * 1024),
    ("get_buffer", 5, 64 * 1024, 300 * 1024),  # large reads (direct/self)
    ("buffer_updated", 5, 64 * 1024, 300 * 1024),
])
def test_interrupt_in_a_buffered_protocol_loses_no_data(any_loop, large_read_mode,
                                                         where, nth, bufsize, total):
    payload = bytes(i % 251 for i in range(total))

    async def setup():
        return await _served(any_loop, lambda: Buffered(any_loop, where, nth, bufsize))
    server, protos, client = any_loop.run_until_complete(setup())
    try:
        client.sendall(payload)
        client.shutdown(socket.SHUT_WR)

        async def until_lost():
            while not protos:
                await asyncio.sleep(0.01)
            return await protos[0].lost
        interrupts, exc = _run_through_interrupts(any_loop, until_lost())
        assert interrupts == 1
        assert exc is None
        assert len(protos[0].data) == total
        assert bytes(protos[0].data) == payload
    finally:
        client.close()
        server.close()
        any_loop.run_until_complete(server.wait_closed())


class EofInterrupted(asyncio.Protocol):
    def __init__(self, loop):
        self.events = []
        self.lost = loop.create_future()

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.events.append(("data", len(data)))

    def eof_received(self):
        self.events.append("eof")
        if self.events.count("eof") == 1:
            raise KeyboardInterrupt
        return None

    def connection_lost(self, exc):
        self.events.append(("lost", exc))
        self.lost.set_result(None)


def test_interrupt_in_eof_received_gets_the_eof_again_and_closes(any_loop):
    # asyncio's reader stays registered, so its next poll sees the EOF
    # again: eof_received() twice, then (returning None) the close
    async def setup():
        return await _served(any_loop, lambda: EofInterrupted(any_loop))
    server, protos, client = any_loop.run_until_complete(setup())
    try:
        client.sendall(b"x" * 10)
        client.shutdown(socket.SHUT_WR)

        async def until_lost():
            while not protos:
                await asyncio.sleep(0.01)
            await protos[0].lost
        interrupts, _ = _run_through_interrupts(any_loop, until_lost())
        assert interrupts == 1
        assert protos[0].events == [("data", 10), "eof", "eof", ("lost", None)]
    finally:
        client.close()
        server.close()
        any_loop.run_until_complete(server.wait_closed())


BLOB = 16 * 1024 * 1024


class Echo(asyncio.Protocol):
    """Echoes; raises KeyboardInterrupt once from the callback *point*."""

    def __init__(self, loop, point):
        self.point = point
        self.fired = False
        self.received = 0
        self.events = []
        self.lost = loop.create_future()

    def _maybe(self, name):
        if name == self.point and not self.fired:
            self.fired = True
            raise KeyboardInterrupt

    def connection_made(self, transport):
        self.transport = transport
        transport.set_write_buffer_limits(high=64 * 1024)
        self._maybe("connection_made")

    def data_received(self, data):
        first = not self.received
        self.received += len(data)
        self.transport.write(data)
        if first:
            # more than the kernel's buffers take: pause_writing() now,
            # resume_writing() once the peer has read it
            self.transport.write(b"B" * BLOB)
        self._maybe("data_received")

    def pause_writing(self):
        self.events.append("pause")
        self._maybe("pause_writing")

    def resume_writing(self):
        self.events.append("resume")
        self._maybe("resume_writing")

    def eof_received(self):
        self.events.append("eof")

    def connection_lost(self, exc):
        self.events.append("lost")
        self.lost.set_result(exc)


@pytest.mark.parametrize("point", ["connection_made", "data_received",
                                   "pause_writing", "resume_writing"])
def test_interrupt_in_a_protocol_callback_leaves_the_connection_working(any_loop, point):
    # the peer sends 2 MiB and reads the echo (behind the server's blob)
    # only once all is sent
    total = 2 * 1024 * 1024

    protos = []

    def factory():
        protos.append(Echo(any_loop, point))
        return protos[-1]
    server = any_loop.run_until_complete(
        any_loop.create_server(factory, "127.0.0.1", 0))
    client = socket.socket()
    client.setblocking(False)
    try:
        async def exchange():
            # connected in here: connection_made() runs inside this run
            await any_loop.sock_connect(client, server.sockets[0].getsockname())
            await any_loop.sock_sendall(client, b"e" * total)
            got = 0
            while got < total + BLOB:
                chunk = await any_loop.sock_recv(client, 256 * 1024)
                assert chunk
                got += len(chunk)
            client.shutdown(socket.SHUT_WR)
            assert await any_loop.sock_recv(client, 1) == b""
            return await protos[0].lost
        interrupts, exc = _run_through_interrupts(any_loop, exchange())
        assert interrupts == 1
        assert exc is None
        assert protos[0].received == total
        assert protos[0].events[:2] == ["pause", "resume"]
        assert protos[0].events[-2:] == ["eof", "lost"]
    finally:
        client.close()
        server.close()
        any_loop.run_until_complete(server.wait_closed())
