"""A plain Protocol's large reads, read by uvffi itself into new bytes.

While a plain protocol's reads are large, uvffi (CPython, POSIX) reads the
fd with ``os.read`` from libuv's alloc callback and hands that bytes object
to ``data_received``, with no copy out of the loop's buffer
(largereads.py).  The protocol then runs inside libuv's alloc callback, as
a BufferedProtocol's self reads do (test_direct_reads.py): these tests pin
that it may pause, close, abort, switch protocols, fail or raise
KeyboardInterrupt there with asyncio's messages, no lost byte and no
crash.  Each runs on asyncio's SelectorEventLoop too."""
import asyncio
import socket
import struct

import pytest

from _large_reads import (BIG, connected, deliver_all, order_behind_a_queued_callback,
                          payload, recorded_errors, run, send_large_first, wait_for)
from uvffi.handles import streamreads


class Collector(asyncio.Protocol):
    """Collects what it is given, and the read mode of each data_received
    on uvffi; ``hook(self, chunk)`` runs after each one when set."""

    def __init__(self, loop):
        self.loop = loop
        self.got = bytearray()
        self.chunks = []  # (size, read mode) per data_received
        self.events = []
        self.hook = None
        self.transport = None
        self.lost = loop.create_future()
        self.after_lost = []

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        if self.lost.done():
            self.after_lost.append("data_received")
        assert type(data) is bytes
        self.got += data
        stream = getattr(self.transport, "_stream", None)
        self.chunks.append((len(data), getattr(stream, "mode", None)))
        if self.hook is not None:
            self.hook(self, data)

    def eof_received(self):
        self.events.append("eof")

    def connection_lost(self, exc):
        self.events.append(("lost", exc))
        if not self.lost.done():
            self.lost.set_result(exc)

    def self_read_sizes(self):
        return [n for n, mode in self.chunks if mode == streamreads._READ_SELF]


def _self_reads_expected(loop):
    return loop.kind == "uvffi" and streamreads.PLAIN_SELF_READS


@pytest.mark.parametrize("family", ["tcp", "unix"])
def test_large_and_small_reads_arrive_whole_and_in_order(any_loop, family, tmp_path):
    loop = any_loop
    proto = Collector(loop)
    parts = ([payload(BIG, 1)] + [bytes([65 + i]) * 100 for i in range(20)]
             + [payload(BIG // 2, 3)])
    fam = socket.AF_UNIX if family == "unix" else socket.AF_INET

    async def main():
        server, client = await connected(loop, proto, fam, str(tmp_path / "s"))
        await send_large_first(loop, proto, client, parts[0])
        await wait_for(lambda: len(proto.got) == len(parts[0]))
        for part in parts[1:-1]:
            await loop.sock_sendall(client, part)
            await wait_for(lambda: proto.got.endswith(part))
        await loop.sock_sendall(client, parts[-1])
        client.shutdown(socket.SHUT_WR)
        await wait_for(lambda: "eof" in proto.events)
        client.close()
        server.close()
        proto.transport.close()
        await proto.lost
        await server.wait_closed()

    run(loop, main())
    assert bytes(proto.got) == b"".join(parts)
    assert proto.events == ["eof", ("lost", None)]
    if _self_reads_expected(loop):
        # read by uvffi itself while reads were large, no read over the
        # cap; the first 100-byte read switches back: the others batched
        sizes = proto.self_read_sizes()
        assert sizes and max(sizes) <= streamreads.SELF_READ_MAX
        small = [mode for n, mode in proto.chunks if n == 100]
        assert len(small) == 20 and streamreads._READ_SELF not in small[1:]


def test_reads_stay_large_while_messages_are_large(any_loop):
    # an echo of 100 KiB messages, the benchmark's case: after the first,
    # every read is uvffi's own
    loop = any_loop
    proto = Collector(loop)
    message = payload(100 * 1024)

    async def main():
        server, client = await connected(loop, proto)
        for i in range(20):
            await loop.sock_sendall(client, message)
            await wait_for(lambda: len(proto.got) == (i + 1) * len(message))
        client.close()
        await proto.lost
        server.close()
        await server.wait_closed()

    run(loop, main())
    assert bytes(proto.got) == message * 20
    if _self_reads_expected(loop):
        assert sum(proto.self_read_sizes()) >= 18 * len(message)


def test_data_received_failure_while_reading_large(any_loop):
    loop = any_loop
    errors = recorded_errors(loop)
    proto = Collector(loop)

    def hook(p, data):
        if len(p.got) > BIG // 2:
            raise ValueError("from data_received")

    async def main():
        server, client = await connected(loop, proto)
        proto.hook = hook
        await send_large_first(loop, proto, client, payload(BIG))
        exc = await proto.lost
        client.close()
        server.close()
        await server.wait_closed()
        return exc

    exc = run(loop, main())
    assert isinstance(exc, ValueError)
    assert [e["message"] for e in errors] == [
        "Fatal error: protocol.data_received() call failed."]
    assert errors[0]["exception"] is exc
    assert proto.after_lost == []


def test_pause_and_resume_inside_data_received_lose_nothing(any_loop):
    loop = any_loop
    proto = Collector(loop)
    data = payload(4 * BIG)
    pauses = []

    def hook(p, chunk):
        # pause every ~256 KiB, resume a moment later
        if len(p.got) // (256 * 1024) > len(pauses):
            pauses.append(len(p.got))
            p.transport.pause_reading()
            loop.call_later(0.005, p.transport.resume_reading)

    run(loop, deliver_all(loop, proto, data, hook))
    assert bytes(proto.got) == data
    assert len(pauses) >= 3


@pytest.mark.parametrize("how", ["close", "abort"])
def test_closing_inside_data_received(any_loop, how):
    loop = any_loop
    errors = recorded_errors(loop)
    proto = Collector(loop)

    def hook(p, chunk):
        if len(p.got) >= BIG // 4 and not p.transport.is_closing():
            getattr(p.transport, how)()

    async def main():
        server, client = await connected(loop, proto)
        proto.hook = hook
        await send_large_first(loop, proto, client, payload(BIG))
        exc = await proto.lost
        await asyncio.sleep(0.05)  # nothing may reach the protocol after that
        client.close()
        server.close()
        await server.wait_closed()
        return exc

    assert run(loop, main()) is None
    assert errors == []
    assert proto.events == [("lost", None)]
    assert proto.after_lost == []


def test_eof_after_large_reads_closes(any_loop):
    loop = any_loop
    proto = Collector(loop)
    data = payload(BIG)

    async def main():
        server, client = await connected(loop, proto)
        await send_large_first(loop, proto, client, data)
        client.shutdown(socket.SHUT_WR)
        exc = await proto.lost
        client.close()
        server.close()
        await server.wait_closed()
        return exc

    assert run(loop, main()) is None
    assert bytes(proto.got) == data
    assert proto.events == ["eof", ("lost", None)]


def test_eof_kept_open_stops_reading_and_the_transport_still_writes(any_loop):
    loop = any_loop
    proto = Collector(loop)
    proto.eof_received = lambda: proto.events.append("eof") or True
    data = payload(BIG)

    async def main():
        server, client = await connected(loop, proto)
        await send_large_first(loop, proto, client, data)
        client.shutdown(socket.SHUT_WR)
        await wait_for(lambda: "eof" in proto.events)
        await asyncio.sleep(0.05)
        proto.transport.write(b"still open")
        reply = await loop.sock_recv(client, 100)
        proto.transport.close()
        await proto.lost
        client.close()
        server.close()
        await server.wait_closed()
        return reply

    assert run(loop, main()) == b"still open"
    assert bytes(proto.got) == data
    assert proto.events == ["eof", ("lost", None)]


def test_connection_reset_while_reading_large(any_loop):
    loop = any_loop
    errors = recorded_errors(loop)
    proto = Collector(loop)
    resets = []

    def hook(p, chunk):
        # the reset comes while uvffi reads by itself: after the first
        # large read, with more of the data still unread
        if not resets:
            resets.append(len(p.got))
            p.transport.pause_reading()
            loop.call_later(0.05, reset)

    def reset():
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
        loop.call_later(0.05, proto.transport.resume_reading)

    async def main():
        nonlocal client
        server, client = await connected(loop, proto)
        # unread data on the client's side too: close() sends a reset
        proto.transport.write(b"unread")
        await asyncio.sleep(0.05)
        proto.hook = hook
        await send_large_first(loop, proto, client, payload(200 * 1024))
        exc = await proto.lost
        server.close()
        await server.wait_closed()
        return exc

    client = None
    exc = run(loop, main())
    assert isinstance(exc, ConnectionResetError)
    assert errors == []  # asyncio logs no reset


def test_reset_read_behind_a_callback_queued_before_the_poll(any_loop, monkeypatch):
    # A reset found by a read that waits behind queued callbacks (on uvffi:
    # a self read in a deferring poll, Stream.hold_self_read) ends the
    # connection as asyncio's read does: ConnectionResetError, nothing
    # logged, after the callback.
    from uvffi.handles.stream import Stream
    held = []
    hold_self_read = Stream.hold_self_read

    def spy(stream):
        held.append(stream)
        return hold_self_read(stream)
    monkeypatch.setattr(Stream, "hold_self_read", spy)

    loop = any_loop
    errors = recorded_errors(loop)
    proto = Collector(loop)
    order = []

    async def main():
        server, client = await connected(loop, proto)
        proto.transport.write(b"unread")  # so that close() sends a reset
        await send_large_first(loop, proto, client, payload(BIG))
        await wait_for(lambda: len(proto.got) == BIG)
        proto.transport.pause_reading()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
        await asyncio.sleep(0.05)  # the reset is in the server's socket now
        stream = getattr(proto.transport, "_stream", None)
        if stream is not None:
            stream.set_read_mode(streamreads._READ_SELF)
        loop.call_soon(order.append, "callback")
        proto.transport.resume_reading()
        exc = await proto.lost
        order.append("lost")
        server.close()
        await server.wait_closed()
        return exc

    exc = run(loop, main())
    assert isinstance(exc, ConnectionResetError)
    assert order == ["callback", "lost"]
    assert errors == []
    if _self_reads_expected(loop):
        assert held  # the path under test


def test_switch_to_buffered_protocol_while_reading_large(any_loop):
    loop = any_loop
    proto = Collector(loop)
    data = payload(2 * BIG)

    class Buffered(asyncio.BufferedProtocol):
        def __init__(self):
            self.buf = bytearray(64 * 1024)
            self.got = bytearray()
            self.lost = loop.create_future()

        def get_buffer(self, sizehint):
            return self.buf

        def buffer_updated(self, nbytes):
            self.got += self.buf[:nbytes]

        def connection_lost(self, exc):
            self.lost.set_result(exc)

    buffered = Buffered()

    def hook(p, chunk):
        if len(p.got) >= BIG // 2 and p.hook is not None:
            p.hook = None
            p.transport.set_protocol(buffered)

    async def main():
        server, client = await connected(loop, proto)
        proto.hook = hook
        await send_large_first(loop, proto, client, data)
        await wait_for(lambda: len(proto.got) + len(buffered.got) == len(data))
        client.close()
        await buffered.lost
        server.close()
        await server.wait_closed()

    run(loop, main())
    assert bytes(proto.got) + bytes(buffered.got) == data
    assert buffered.got


def test_reads_wait_behind_callbacks_queued_before_the_poll(any_loop):
    # With a callback always in the ready queue, every poll's reads wait
    # behind the callbacks queued before it (streamcallbacks._on_reads): the
    # data read by uvffi itself waits on the stream, and arrives whole and
    # in order all the same.
    loop = any_loop
    proto = Collector(loop)
    data = payload(2 * BIG)
    spinning = [True]
    order = []

    def spin():
        if spinning[0]:
            order.append("spin")
            loop.call_soon(spin)

    def hook(p, chunk):
        order.append("data")

    async def main():
        server, client = await connected(loop, proto)
        proto.hook = hook
        loop.call_soon(spin)
        await send_large_first(loop, proto, client, data)
        await wait_for(lambda: len(proto.got) == len(data))
        spinning[0] = False
        client.close()
        await proto.lost
        server.close()
        await server.wait_closed()

    run(loop, main())
    assert bytes(proto.got) == data
    assert order.count("data") > 1 and order.count("spin") > 1
    if _self_reads_expected(loop):
        assert proto.self_read_sizes()


def test_self_read_waits_behind_a_callback_queued_before_the_poll(any_loop):
    # A self read runs in libuv's alloc callback, inside the poll: the
    # data it reads waits (Stream.hold) behind the callback, as asyncio
    # orders it.
    loop = any_loop
    proto = Collector(loop)
    order = run(loop, order_behind_a_queued_callback(loop, proto, streamreads._READ_SELF))
    assert order[0] == "callback" and "read" in order, order
    if _self_reads_expected(loop):
        assert proto.chunks[-1][1] == streamreads._READ_SELF  # the path under test


def test_eof_in_large_read_mode_waits_behind_a_callback_queued_before_the_poll(any_loop):
    loop = any_loop
    proto = Collector(loop)
    order = run(loop, order_behind_a_queued_callback(loop, proto, streamreads._READ_SELF, then="eof"))
    assert order == ["callback", "eof"], order
    assert proto.events[-1] == ("lost", None)


def test_keyboard_interrupt_in_data_received_keeps_the_rest(any_loop):
    loop = any_loop
    proto = Collector(loop)
    data = payload(BIG)
    raised = []

    def hook(p, chunk):
        if len(p.got) >= BIG // 4 and not raised:
            raised.append(True)
            raise KeyboardInterrupt

    async def start():
        server, client = await connected(loop, proto)
        proto.hook = hook
        await send_large_first(loop, proto, client, data)
        await wait_for(lambda: len(proto.got) == len(data))
        return server, client

    with pytest.raises(KeyboardInterrupt):
        loop.run_until_complete(start())
    # what data_received got stays got; the rest arrives once the loop
    # runs again, whole and in order
    loop.run_until_complete(wait_for(lambda: len(proto.got) == len(data)))
    assert bytes(proto.got) == data
    proto.transport.close()
    loop.run_until_complete(proto.lost)
