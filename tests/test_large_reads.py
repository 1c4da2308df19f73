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

from uvffi import largereads

BIG = 1024 * 1024


def payload(n, seed=0):
    return bytes((i * 7 + seed) & 0xFF for i in range(256)) * (n // 256) + b"x" * (n % 256)


def run(loop, coro, timeout=30):
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


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
        return [n for n, mode in self.chunks if mode == largereads._READ_SELF]


async def _connected(loop, protocol, family=socket.AF_INET, path=None):
    """A server transport with *protocol* and the client socket."""
    accepted = loop.create_future()

    def factory():
        accepted.set_result(None)
        return protocol

    if family == socket.AF_UNIX:
        server = await loop.create_unix_server(factory, path)
        client = socket.socket(socket.AF_UNIX)
        address = path
    else:
        server = await loop.create_server(factory, "127.0.0.1", 0)
        client = socket.socket()
        address = ("127.0.0.1", server.sockets[0].getsockname()[1])
    client.setblocking(False)
    await loop.sock_connect(client, address)
    await accepted
    while protocol.transport is None:
        await asyncio.sleep(0)
    return server, client


async def _send_large_first(loop, protocol, client, data):
    """Send *data* with the server paused for a moment, so that its first
    read is a large one (the switch to self reads on uvffi)."""
    protocol.transport.pause_reading()
    sending = loop.create_task(loop.sock_sendall(client, data))
    await asyncio.sleep(0.05)
    protocol.transport.resume_reading()
    await sending


async def _wait_for(predicate, timeout=10):
    for _ in range(int(timeout / 0.005)):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached")


async def _deliver_all(loop, proto, data, hook=None):
    """Send *data* to *proto* (the first read large), wait until all of it
    arrived, then close the client and wait for connection_lost."""
    server, client = await _connected(loop, proto)
    proto.hook = hook
    await _send_large_first(loop, proto, client, data)
    await _wait_for(lambda: len(proto.got) == len(data))
    client.close()
    await proto.lost
    server.close()
    await server.wait_closed()


def _errors(loop):
    seen = []
    loop.set_exception_handler(lambda lp, ctx: seen.append(ctx))
    return seen


def _self_reads_expected(loop):
    return loop.kind == "uvffi" and largereads.SELF_READS


@pytest.mark.parametrize("family", ["tcp", "unix"])
def test_large_and_small_reads_arrive_whole_and_in_order(any_loop, family, tmp_path):
    loop = any_loop
    proto = Collector(loop)
    parts = ([payload(BIG, 1)] + [bytes([65 + i]) * 100 for i in range(20)]
             + [payload(BIG // 2, 3)])
    fam = socket.AF_UNIX if family == "unix" else socket.AF_INET

    async def main():
        server, client = await _connected(loop, proto, fam, str(tmp_path / "s"))
        await _send_large_first(loop, proto, client, parts[0])
        await _wait_for(lambda: len(proto.got) == len(parts[0]))
        for part in parts[1:-1]:
            await loop.sock_sendall(client, part)
            await _wait_for(lambda: proto.got.endswith(part))
        await loop.sock_sendall(client, parts[-1])
        client.shutdown(socket.SHUT_WR)
        await _wait_for(lambda: "eof" in proto.events)
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
        assert sizes and max(sizes) <= largereads.SELF_READ_MAX
        small = [mode for n, mode in proto.chunks if n == 100]
        assert len(small) == 20 and largereads._READ_SELF not in small[1:]


def test_reads_stay_large_while_messages_are_large(any_loop):
    # an echo of 100 KiB messages, the benchmark's case: after the first,
    # every read is uvffi's own
    loop = any_loop
    proto = Collector(loop)
    message = payload(100 * 1024)

    async def main():
        server, client = await _connected(loop, proto)
        for i in range(20):
            await loop.sock_sendall(client, message)
            await _wait_for(lambda: len(proto.got) == (i + 1) * len(message))
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
    errors = _errors(loop)
    proto = Collector(loop)

    def hook(p, data):
        if len(p.got) > BIG // 2:
            raise ValueError("from data_received")

    async def main():
        server, client = await _connected(loop, proto)
        proto.hook = hook
        await _send_large_first(loop, proto, client, payload(BIG))
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

    run(loop, _deliver_all(loop, proto, data, hook))
    assert bytes(proto.got) == data
    assert len(pauses) >= 3


@pytest.mark.parametrize("how", ["close", "abort"])
def test_closing_inside_data_received(any_loop, how):
    loop = any_loop
    errors = _errors(loop)
    proto = Collector(loop)

    def hook(p, chunk):
        if len(p.got) >= BIG // 4 and not p.transport.is_closing():
            getattr(p.transport, how)()

    async def main():
        server, client = await _connected(loop, proto)
        proto.hook = hook
        await _send_large_first(loop, proto, client, payload(BIG))
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
        server, client = await _connected(loop, proto)
        await _send_large_first(loop, proto, client, data)
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
        server, client = await _connected(loop, proto)
        await _send_large_first(loop, proto, client, data)
        client.shutdown(socket.SHUT_WR)
        await _wait_for(lambda: "eof" in proto.events)
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
    errors = _errors(loop)
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
        server, client = await _connected(loop, proto)
        # unread data on the client's side too: close() sends a reset
        proto.transport.write(b"unread")
        await asyncio.sleep(0.05)
        proto.hook = hook
        await _send_large_first(loop, proto, client, payload(200 * 1024))
        exc = await proto.lost
        server.close()
        await server.wait_closed()
        return exc

    client = None
    exc = run(loop, main())
    assert isinstance(exc, ConnectionResetError)
    assert errors == []  # asyncio logs no reset


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
        server, client = await _connected(loop, proto)
        proto.hook = hook
        await _send_large_first(loop, proto, client, data)
        await _wait_for(lambda: len(proto.got) + len(buffered.got) == len(data))
        client.close()
        await buffered.lost
        server.close()
        await server.wait_closed()

    run(loop, main())
    assert bytes(proto.got) + bytes(buffered.got) == data
    assert buffered.got


def test_reads_wait_behind_callbacks_queued_before_the_poll(any_loop):
    # With a callback always in the ready queue, every poll's reads wait
    # behind the callbacks queued before it (streamhandle._on_reads): the
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
        server, client = await _connected(loop, proto)
        proto.hook = hook
        loop.call_soon(spin)
        await _send_large_first(loop, proto, client, data)
        await _wait_for(lambda: len(proto.got) == len(data))
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
        server, client = await _connected(loop, proto)
        proto.hook = hook
        await _send_large_first(loop, proto, client, data)
        await _wait_for(lambda: len(proto.got) == len(data))
        return server, client

    with pytest.raises(KeyboardInterrupt):
        loop.run_until_complete(start())
    # what data_received got stays got; the rest arrives once the loop
    # runs again, whole and in order
    loop.run_until_complete(_wait_for(lambda: len(proto.got) == len(data)))
    assert bytes(proto.got) == data
    proto.transport.close()
    loop.run_until_complete(proto.lost)
