"""A stream's read state machine (handles/streamreads.py) decides how its
reads come on its own: its owner supplies only the calls that hand reads
to a protocol.  These drive a bare ``TCPStream`` with such an owner -- no
transport -- and check the mode the stream reads in after each read, and
that the bytes arrive whole and in order.

uvffi only: asyncio's loop has no read modes (the transports' behaviour,
the same on both loops, is pinned by test_large_reads.py and
test_direct_reads.py).
"""
import asyncio
import contextvars
import os
import socket

import pytest

from uvffi._uv import lib
from uvffi.handles import streamreads
from uvffi.handles.stream import TCPStream

TIMEOUT = 10
FROM = streamreads.LARGE_READS_FROM
UNTIL = streamreads.LARGE_READS_UNTIL

pytestmark = pytest.mark.skipif(os.name != "posix", reason="self reads: POSIX")


class Owner:
    """What a transport gives a stream for a BufferedProtocol-like reader,
    and nothing more: each read's size and mode, and the bytes."""

    def __init__(self, stream, fd):
        self.stream, self.fd = stream, fd
        self.reads = []  # (how, nread, mode at the time)
        self.got = bytearray()
        stream.on_read = self.on_read
        stream.on_self_read = self.on_self_read
        stream.on_data_failed = None

    def on_read(self, nread, data):
        self.reads.append(("copy", nread, self.stream.mode))
        if nread > 0:
            self.got += data

    def on_self_read(self):
        try:
            data = os.read(self.fd, 256 * 1024)
        except BlockingIOError:
            return 0
        self.reads.append(("self", len(data), self.stream.mode))
        self.got += data
        return len(data)


async def _wait_for(cond, what):
    for _ in range(int(TIMEOUT / 0.005)):
        if cond():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("timed out waiting for " + what)


async def _bare_stream(loop):
    """A TCPStream on the accepted end of a loopback connection, and the
    client socket that writes to it."""
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    finally:
        listener.close()
    server.setblocking(False)
    stream = TCPStream(loop)
    stream.open(server.detach())
    stream.use_context(contextvars.Context())
    return stream, client


async def _reading(loop, buffered):
    """A bare stream reading for an Owner, with the protocol kind set
    (*buffered*: a BufferedProtocol's large mode; None: no protocol), and
    the mode it reads in by default."""
    stream, client = await _bare_stream(loop)
    owner = Owner(stream, stream.fileno())
    if buffered is None:
        stream.set_protocol(None)
    else:
        stream.set_protocol(None, buffered=buffered)
    default = stream.mode
    stream.read_start()
    return stream, client, owner, default


async def _send(client, owner, data):
    before = len(owner.got)
    client.sendall(data)
    await _wait_for(lambda: len(owner.got) >= before + len(data),
                    "%d bytes to reach the owner" % len(data))


def _close(loop, stream, client):
    client.close()
    stream.close()
    loop.run_until_complete(_wait_for(lambda: stream not in loop._uv_handles,
                                      "the stream's close callback"))


def test_a_large_read_switches_to_large_mode_and_a_small_one_back(loop):
    async def main():
        stream, client, owner, default = await _reading(loop, True)
        big = bytes(range(256)) * (FROM // 256 * 2)
        await _send(client, owner, big)
        assert any(n >= FROM for _, n, _ in owner.reads), owner.reads
        assert stream.mode == streamreads.BUFFERED_LARGE_MODE
        owner.reads.clear()
        await _send(client, owner, b"s" * 1000)  # a small read, self-read
        assert owner.reads == [("self", 1000, streamreads._READ_SELF)]
        assert stream.mode == default
        owner.reads.clear()
        await _send(client, owner, b"t" * 1000)  # the copying way again
        assert owner.reads == [("copy", 1000, default)]
        assert bytes(owner.got) == big + b"s" * 1000 + b"t" * 1000
        return stream, client

    _close(loop, *loop.run_until_complete(main()))


def test_without_a_large_mode_a_large_read_changes_nothing(loop):
    # a read pipe's owner, say: on_read only (set_protocol(None))
    async def main():
        stream, client, owner, default = await _reading(loop, None)
        await _send(client, owner, b"x" * (FROM * 2))
        assert stream.mode == default
        assert {how for how, _, _ in owner.reads} == {"copy"}
        return stream, client

    _close(loop, *loop.run_until_complete(main()))


def test_held_reads_move_the_mode_as_delivered_ones_do(loop):
    # reads held on the stream (a poll that deferred I/O, say) count when
    # they are delivered: a large one switches to large mode, a small one
    # in large mode back
    async def main():
        stream, client, owner, default = await _reading(loop, True)
        stream.hold(FROM, b"L" * FROM)
        await _wait_for(lambda: len(owner.got) == FROM, "the held large read")
        assert stream.mode == streamreads.BUFFERED_LARGE_MODE
        stream.hold(UNTIL - 1, b"s" * (UNTIL - 1))
        await _wait_for(lambda: len(owner.got) == FROM + UNTIL - 1,
                        "the held small read")
        assert stream.mode == default
        assert [how for how, _, _ in owner.reads] == ["copy", "copy"]
        await _send(client, owner, b"after")  # libuv reads again
        assert bytes(owner.got) == b"L" * FROM + b"s" * (UNTIL - 1) + b"after"
        return stream, client

    _close(loop, *loop.run_until_complete(main()))


class _RefusingRestart:
    """The binding, but libuv refuses to restart reading in another mode."""

    def uvffi_read_restart(self, ptr, mode):
        return lib.UV_EINVAL

    def __getattr__(self, name):
        return getattr(lib, name)


def test_a_failed_switch_is_reported_as_a_read_error(loop, monkeypatch):
    # libuv refusing the new mode ends the reading, and the owner hears of
    # it as of a failed read (a transport's fatal read error)
    async def main():
        stream, client, owner, _ = await _reading(loop, True)
        monkeypatch.setattr(streamreads, "lib", _RefusingRestart())
        await _send(client, owner, b"x" * (FROM * 2))
        await _wait_for(lambda: owner.reads and owner.reads[-1][1] < 0,
                        "the read error")
        assert owner.reads[-1][1] == lib.UV_EINVAL
        assert not stream.reading
        return stream, client

    _close(loop, *loop.run_until_complete(main()))
