"""One request model (handles/core.py): a request made on a handle -- a
write, a shutdown, a UDP send -- is held with the memory it points at in its
handle's ``reqs`` until libuv calls it back, and closing the handle (abort,
loop.close()) ends every one of them before the handle's close callback.

uvffi only: these pin down what keeps libuv's memory alive, which asyncio's
loop does not have.  Each test also checks the bytes that arrive, so that a
released-too-early buffer shows as wrong data, not only as a count.
"""
import asyncio
import socket

import pytest

from uvffi._uv import ffi, lib
from uvffi.transports import udp as uvffi_udp

from _udp_helpers import endpoint, recv_from, udp_peer

TIMEOUT = 10  # generous: two shared cores
BIG = 8 * 1024 * 1024  # more than loopback's socket buffers take at once


class Sink(asyncio.Protocol):
    def __init__(self):
        self.lost = asyncio.get_event_loop().create_future()

    def connection_lost(self, exc):
        if not self.lost.done():
            self.lost.set_result(exc)


async def _connected_pair(loop):
    """A uvffi transport and the plain socket at the other end (not read
    until the test says so)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    try:
        client = socket.create_connection(listener.getsockname())
        peer, _ = await loop.sock_accept(listener)
    finally:
        listener.close()
    client.setblocking(False)
    tr, proto = await loop.connect_accepted_socket(Sink, client)
    return tr, proto, peer


async def _read_exactly(loop, sock, n):
    got = bytearray()
    while len(got) < n:
        chunk = await asyncio.wait_for(loop.sock_recv(sock, 1 << 20), TIMEOUT)
        assert chunk, "EOF after %d of %d bytes" % (len(got), n)
        got += chunk
    return bytes(got)


async def _handle_closed(loop, handle):
    """Wait for libuv's close callback of *handle*."""
    for _ in range(int(TIMEOUT / 0.01)):
        if handle not in loop._uv_handles:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the handle's close callback did not come")


async def _reqs_once_called_back(handle):
    """*handle*'s requests, once they are gone or TIMEOUT has passed (the
    caller asserts what is left)."""
    for _ in range(int(TIMEOUT / 0.01)):
        if not handle.reqs:
            break
        await asyncio.sleep(0.01)
    return dict(handle.reqs)


def test_a_write_in_flight_is_held_by_its_stream_until_its_callback(loop):
    data = bytes(range(256)) * (BIG // 256)

    async def main():
        tr, proto, peer = await _connected_pair(loop)
        stream = tr._stream
        tr.write(data)
        await asyncio.sleep(0.05)
        held = list(stream.reqs.items())
        got = await _read_exactly(loop, peer, len(data))
        after = await _reqs_once_called_back(stream)
        tr.close()
        await asyncio.wait_for(proto.lost, TIMEOUT)
        peer.close()
        return held, got, after

    held, got, after = loop.run_until_complete(main())
    assert len(held) == 1
    req, keep = held[0]
    assert ffi.typeof(req) is ffi.typeof("uv_write_t *")
    assert keep is not None  # the buffer libuv reads from
    assert got == data
    assert after == {}


def test_abort_ends_a_write_in_flight_before_the_handle_closes(loop):
    async def main():
        tr, proto, peer = await _connected_pair(loop)
        stream = tr._stream
        tr.write(b"\x5a" * BIG)
        await asyncio.sleep(0.05)
        before = len(stream.reqs)
        tr.abort()
        exc = await asyncio.wait_for(proto.lost, TIMEOUT)
        await _handle_closed(loop, stream)
        peer.close()
        return before, exc, dict(stream.reqs)

    assert loop.run_until_complete(main()) == (1, None, {})


def test_shutdown_request_is_released_by_its_callback(loop):
    async def main():
        tr, proto, peer = await _connected_pair(loop)
        stream = tr._stream
        tr.write(b"last words")
        tr.write_eof()
        kinds = [ffi.typeof(r).cname for r in stream.reqs]
        got = await _read_exactly(loop, peer, len(b"last words"))
        eof = await asyncio.wait_for(loop.sock_recv(peer, 10), TIMEOUT)
        after = await _reqs_once_called_back(stream)
        tr.close()
        await asyncio.wait_for(proto.lost, TIMEOUT)
        peer.close()
        return kinds, got, eof, after

    kinds, got, eof, after = loop.run_until_complete(main())
    # the write may already be done; the shutdown waits for it in libuv
    assert "uv_shutdown_t *" in kinds
    assert (got, eof, after) == (b"last words", b"", {})


def test_loop_close_ends_a_write_in_flight(loop_factory):
    lp = loop_factory()
    box = {}

    async def main():
        tr, proto, peer = await _connected_pair(lp)
        box["stream"], box["peer"] = tr._stream, peer
        tr.write(b"\xa5" * BIG)
        await asyncio.sleep(0.05)
        box["before"] = len(tr._stream.reqs)

    try:
        lp.run_until_complete(main())
    finally:
        lp.close()  # the transport is still open, its write unsent
        box.get("peer") and box["peer"].close()
    assert box["before"] == 1
    assert box["stream"].reqs == {}
    assert not lp._uv_handles


@pytest.fixture
def send_would_block(monkeypatch):
    """Every datagram takes the uv_udp_send queue (see test_udp_engine)."""
    monkeypatch.setattr(uvffi_udp, "_try_send", lambda *args: lib.UV_EAGAIN)


def test_queued_datagrams_are_held_until_sent(loop, send_would_block):
    async def main():
        t, p = await endpoint(loop, local_addr=("127.0.0.1", 0))
        udp = t._udp
        with udp_peer() as peer:
            for i in range(3):
                t.sendto(b"d%d" % i, peer.getsockname())
            held = sorted(keep[1] for keep in udp.reqs.values())
            got = [(await recv_from(peer))[0] for _ in range(3)]
        after = await _reqs_once_called_back(udp)
        t.close()
        await asyncio.wait_for(p.lost, TIMEOUT)
        return held, got, after

    held, got, after = loop.run_until_complete(main())
    assert len(held) == 3  # (C copy, bytes charged) per datagram
    assert got == [b"d0", b"d1", b"d2"]
    assert after == {}


def test_abort_ends_queued_datagrams_before_the_handle_closes(loop, send_would_block):
    async def main():
        t, p = await endpoint(loop, local_addr=("127.0.0.1", 0))
        udp = t._udp
        t.sendto(b"x", ("127.0.0.1", 9))
        t.sendto(b"y", ("127.0.0.1", 9))
        before = len(udp.reqs)
        t.abort()
        await asyncio.wait_for(p.lost, TIMEOUT)
        await _handle_closed(loop, udp)
        return before, dict(udp.reqs)

    assert loop.run_until_complete(main()) == (2, {})


def test_pipe_connect_request_is_released_by_its_callback(loop, monkeypatch, tmp_path):
    # uv_pipe_connect (the named-pipe path; AF_UNIX paths here): its
    # request is held until libuv calls back, for a connection made and for
    # one refused (FileNotFoundError), and nothing is left on the stream
    from uvffi.facets import unix as uvffi_unix
    from uvffi.transports import namedpipes
    monkeypatch.setattr(uvffi_unix, "_NATIVE_PIPES", True)
    made = []

    class SpyStream(namedpipes.PipeStream):
        __slots__ = ()

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)
    monkeypatch.setattr(namedpipes, "PipeStream", SpyStream)
    path = str(tmp_path / "pipe.sock")

    async def main():
        server = await loop.create_unix_server(asyncio.Protocol, path)
        made.clear()  # the server's own pipe
        tr, proto = await loop.create_unix_connection(Sink, path)
        connected = dict(made[0].reqs)
        tr.close()
        await asyncio.wait_for(proto.lost, TIMEOUT)
        server.close()
        await server.wait_closed()
        made.clear()
        try:
            await loop.create_unix_connection(Sink, str(tmp_path / "missing"))
        except FileNotFoundError as exc:
            refused = exc
        await _handle_closed(loop, made[0])
        return connected, refused, dict(made[0].reqs)

    connected, refused, after = loop.run_until_complete(main())
    assert connected == {}
    assert isinstance(refused, FileNotFoundError)
    assert after == {}
