"""BufferedProtocol reads straight into the protocol's buffer.

While a BufferedProtocol's reads are large, uvffi reads into the buffer
that ``get_buffer()`` returns (bufferedreads.py: direct reads), as
asyncio's ``recv_into`` does; small reads are batched and copied.  On
POSIX, Python reads the fd itself from libuv's alloc callback (self
reads); elsewhere libuv reads into the buffer between an alloc and a read
callback.  Either way the protocol calls happen inside libuv's alloc
callback, where telling libuv to stop reading or to close would make it
call a NULL read callback: these tests pin that a protocol may pause,
close, abort, switch protocols or fail there, with asyncio's messages, no
lost byte and no crash.  Each test runs on asyncio's SelectorEventLoop
too, and on uvffi in both ways of reading."""
import asyncio
import os
import socket

import pytest

from _large_reads import (BIG, connected, deliver_all, order_behind_a_queued_callback,
                          payload, recorded_errors, run, send_large_first, wait_for)
from uvffi.handles import streamreads
from uvffi._uv import lib

LARGE_READ_MODES = {"self": lib.UVFFI_READ_SELF, "libuv": lib.UVFFI_READ_DIRECT}


@pytest.fixture(autouse=True, params=sorted(LARGE_READ_MODES))
def large_read_mode(request, monkeypatch):
    """How uvffi reads large reads in the test: by itself (POSIX's way) or
    through libuv (the other platforms', tested here all the same)."""
    loop = request.getfixturevalue("any_loop")
    if loop.kind != "uvffi" and request.param != "self":
        pytest.skip("one way of reading on asyncio's loop")
    if request.param == "self" and os.name != "posix":
        pytest.skip("self reads are POSIX only")
    monkeypatch.setattr(streamreads, "BUFFERED_LARGE_MODE", LARGE_READ_MODES[request.param])
    return LARGE_READ_MODES[request.param]


class Collector(asyncio.BufferedProtocol):
    """Collects what it is given; ``hook(self, where)`` runs in get_buffer
    ('get') and buffer_updated ('updated') when set."""

    def __init__(self, loop, size=256 * 1024):
        self.loop = loop
        self.buf = bytearray(size)
        self.view = memoryview(self.buf)
        self.got = bytearray()
        self.events = []
        self.modes = set()
        self.hook = None
        self.transport = None
        self.lost = loop.create_future()
        self.after_lost = []

    def connection_made(self, transport):
        self.transport = transport

    def get_buffer(self, sizehint):
        if self.lost.done():
            self.after_lost.append("get_buffer")
        if self.hook is not None:
            self.hook(self, "get")
        return self.view

    def buffer_updated(self, nbytes):
        if self.lost.done():
            self.after_lost.append("buffer_updated")
        self.got += self.view[:nbytes]
        stream = getattr(self.transport, "_stream", None)
        if stream is not None and hasattr(stream, "mode"):
            self.modes.add(stream.mode)
        if self.hook is not None:
            self.hook(self, "updated")

    def eof_received(self):
        self.events.append("eof")

    def connection_lost(self, exc):
        self.events.append(("lost", exc))
        if not self.lost.done():
            self.lost.set_result(exc)


async def _large_read_until_lost(loop, proto):
    """Send 1 MiB to *proto* (the first read large) and wait until its
    connection is lost: returns what connection_lost got."""
    server, client = await connected(loop, proto)
    await send_large_first(loop, proto, client, payload(BIG))
    exc = await proto.lost
    client.close()
    server.close()
    await server.wait_closed()
    return exc


def test_large_and_small_reads_arrive_whole_and_in_order(any_loop, large_read_mode):
    loop = any_loop
    proto = Collector(loop)
    parts = [payload(BIG, 1)] + [payload(100, i) for i in range(20)] + [payload(BIG // 2, 3)]

    async def main():
        server, client = await connected(loop, proto)
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
    if loop.kind == "uvffi":
        # both ways of reading were used: into the protocol's buffer while
        # reads were large, batched and copied for the 100-byte ones
        assert large_read_mode in proto.modes
        assert proto.modes - {large_read_mode}


def test_small_protocol_buffer_gets_large_reads_in_pieces(any_loop):
    loop = any_loop
    proto = Collector(loop, size=1000)
    data = payload(BIG)

    run(loop, deliver_all(loop, proto, data))
    assert bytes(proto.got) == data


@pytest.mark.parametrize("failure, message, exc_type", [
    ("raise", "Fatal error: protocol.get_buffer() call failed.", ZeroDivisionError),
    ("empty", "Fatal error: protocol.get_buffer() call failed.", RuntimeError),
    ("readonly", "Fatal read error on socket transport", TypeError),
])
def test_get_buffer_failure_while_reading_large(any_loop, failure, message, exc_type):
    loop = any_loop
    errors = recorded_errors(loop)
    proto = Collector(loop)

    def get_buffer(sizehint):
        if len(proto.got) < BIG // 2:
            return proto.view
        if failure == "raise":
            raise ZeroDivisionError("from get_buffer")
        return bytearray() if failure == "empty" else b"read-only" * 100

    proto.get_buffer = get_buffer

    exc = run(loop, _large_read_until_lost(loop, proto))
    assert isinstance(exc, exc_type)
    assert [e["message"] for e in errors] == [message]
    assert errors[0]["exception"] is exc
    if failure == "empty":
        assert str(exc) == "get_buffer() returned an empty buffer"
    if failure == "readonly":
        a, b = socket.socketpair()
        with a, b:
            b.send(b"x")
            with pytest.raises(TypeError) as info:
                a.recv_into(b"read-only")
        assert str(exc) == str(info.value)  # recv_into's own words


def test_buffer_updated_failure_while_reading_large(any_loop):
    loop = any_loop
    errors = recorded_errors(loop)
    proto = Collector(loop)

    def hook(p, where):
        if where == "updated" and len(p.got) > BIG // 2:
            raise ValueError("from buffer_updated")

    proto.hook = hook

    exc = run(loop, _large_read_until_lost(loop, proto))
    assert isinstance(exc, ValueError)
    assert [e["message"] for e in errors] == [
        "Fatal error: protocol.buffer_updated() call failed."]
    assert proto.after_lost == []


@pytest.mark.parametrize("where", ["get", "updated"])
def test_pause_and_resume_inside_protocol_calls_lose_nothing(any_loop, where):
    loop = any_loop
    proto = Collector(loop)
    data = payload(4 * BIG)
    pauses = []

    def hook(p, at):
        # pause every ~256 KiB, resume a moment later
        if at == where and len(p.got) // (256 * 1024) > len(pauses):
            pauses.append(len(p.got))
            p.transport.pause_reading()
            loop.call_later(0.005, p.transport.resume_reading)

    run(loop, deliver_all(loop, proto, data, hook))
    assert bytes(proto.got) == data
    assert len(pauses) >= 3


@pytest.mark.parametrize("where", ["get", "updated"])
@pytest.mark.parametrize("how", ["close", "abort"])
def test_closing_inside_protocol_calls(any_loop, how, where):
    loop = any_loop
    errors = recorded_errors(loop)
    proto = Collector(loop)

    def hook(p, at):
        if at == where and len(p.got) >= BIG // 4 and not p.transport.is_closing():
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


def test_eof_kept_open_stops_reading_and_the_transport_still_writes(any_loop):
    # eof_received() returning True: reading stops after one EOF (an EOF
    # stays readable: reading on would report it again and again)
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

    async def main():
        server, client = await connected(loop, proto)
        proto.transport.pause_reading()
        await loop.sock_sendall(client, payload(200 * 1024))
        await asyncio.sleep(0.05)
        # unread data on the client's side too: close() sends a reset
        proto.transport.write(b"unread")
        await asyncio.sleep(0.05)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                          __import__("struct").pack("ii", 1, 0))
        client.close()
        await asyncio.sleep(0.05)
        proto.transport.resume_reading()
        exc = await proto.lost
        server.close()
        await server.wait_closed()
        return exc

    exc = run(loop, main())
    assert isinstance(exc, ConnectionResetError)
    assert errors == []  # asyncio logs no reset


def test_switch_to_plain_protocol_while_reading_large(any_loop):
    loop = any_loop
    proto = Collector(loop)
    data = payload(2 * BIG)

    class Plain(asyncio.Protocol):
        def __init__(self):
            self.got = bytearray()
            self.lost = loop.create_future()

        def data_received(self, chunk):
            self.got += chunk

        def connection_lost(self, exc):
            self.lost.set_result(exc)

    plain = Plain()

    def hook(p, where):
        if where == "updated" and len(p.got) >= BIG // 2 and p.hook is not None:
            p.hook = None
            p.transport.set_protocol(plain)

    async def main():
        server, client = await connected(loop, proto)
        proto.hook = hook
        await send_large_first(loop, proto, client, data)
        await wait_for(lambda: len(proto.got) + len(plain.got) == len(data))
        client.close()
        await plain.lost
        server.close()
        await server.wait_closed()

    run(loop, main())
    assert bytes(proto.got) + bytes(plain.got) == data
    assert plain.got


def test_large_read_waits_behind_a_callback_queued_before_the_poll(any_loop, large_read_mode):
    # Direct reads ask get_buffer() in libuv's alloc callback, inside the
    # poll: the read waits (Stream.hold, then the copy path) behind the
    # callback, get_buffer() included, as asyncio orders it.
    loop = any_loop
    proto = Collector(loop)
    order = run(loop, order_behind_a_queued_callback(loop, proto, large_read_mode))
    assert order[0] == "callback" and "read" in order, order


def test_eof_in_large_read_mode_waits_behind_a_callback_queued_before_the_poll(any_loop, large_read_mode):
    loop = any_loop
    proto = Collector(loop)
    order = run(loop, order_behind_a_queued_callback(loop, proto, large_read_mode, then="eof"))
    # (asyncio asks get_buffer() before its recv_into() sees the EOF; a
    # held EOF is known before any protocol call)
    assert order[0] == "callback" and order[-1] == "eof", order
    assert proto.events[-1] == ("lost", None)


def test_keyboard_interrupt_in_get_buffer_keeps_the_data(any_loop):
    loop = any_loop
    proto = Collector(loop)
    data = payload(BIG)
    raised = []

    def hook(p, where):
        if where == "get" and len(p.got) >= BIG // 4 and not raised:
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
    # the interrupted read never happened: the rest arrives once the loop
    # runs again, whole and in order
    loop.run_until_complete(wait_for(lambda: len(proto.got) == len(data)))
    assert bytes(proto.got) == data
    proto.transport.close()
    loop.run_until_complete(proto.lost)
