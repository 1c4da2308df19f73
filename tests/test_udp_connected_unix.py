"""A connected AF_UNIX datagram socket (socketpair) handed to
create_datagram_endpoint(sock=...): datagrams arrive with the address
recvfrom() gives (None on Linux for an unnamed peer), and
transport.sendto(data) with no address sends to the peer.

asyncio's loop takes the unnamed peer's '' for "not connected" and calls
sendto(data, None), a fatal TypeError (tests/test_udp_engine.py pins that
quirk on asyncio's loop); uvffi sends, as uvloop does: the sending half is
uvffi only."""
import asyncio
import socket
import sys

import pytest

pytestmark = pytest.mark.skipif(not hasattr(socket, "AF_UNIX"),
                                reason="AF_UNIX datagram sockets")

TIMEOUT = 10


class Collect(asyncio.DatagramProtocol):
    def __init__(self):
        self.datagrams = asyncio.Queue()
        self.errors = []
        self.lost = asyncio.get_event_loop().create_future()

    def datagram_received(self, data, addr):
        self.datagrams.put_nowait((data, addr))

    def error_received(self, exc):
        self.errors.append(exc)

    def connection_lost(self, exc):
        if not self.lost.done():
            self.lost.set_result(exc)


def _run(loop, coro):
    return loop.run_until_complete(asyncio.wait_for(coro, TIMEOUT))


def _unnamed_peer_addr():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with a, b:
        b.send(b"x")
        return a.recvfrom(10)[1]


def test_datagram_from_unnamed_peer_has_recvfroms_address(any_loop):
    async def main():
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        with b:
            transport, proto = await any_loop.create_datagram_endpoint(
                Collect, sock=a)
            try:
                b.send(b"hello, socketpair")
                got = await proto.datagrams.get()
                peername = transport.get_extra_info("peername")
            finally:
                transport.close()
            await proto.lost
        return got, peername

    got, peername = _run(any_loop, main())
    assert got == (b"hello, socketpair", _unnamed_peer_addr())
    if sys.platform.startswith("linux"):
        assert got[1] is None
    assert peername == ""


def test_sendto_without_address_goes_to_connected_peer(loop):
    # uvffi only: asyncio's loop fails here (see the module docstring)
    handled = []
    loop.set_exception_handler(lambda lp, ctx: handled.append(ctx))

    async def main():
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        b.settimeout(TIMEOUT)
        with b:
            transport, proto = await loop.create_datagram_endpoint(
                Collect, sock=a)
            try:
                transport.sendto(b"to the peer")
                transport.sendto(bytearray(b"second"))
                first = await loop.run_in_executor(None, b.recv, 100)
                second = await loop.run_in_executor(None, b.recv, 100)
                # and back the other way, still open
                b.send(b"reply")
                reply = await proto.datagrams.get()
            finally:
                transport.close()
            await proto.lost
        return first, second, reply, proto.errors

    first, second, reply, errors = _run(loop, main())
    assert (first, second) == (b"to the peer", b"second")
    assert reply[0] == b"reply"
    assert errors == [] and handled == []


def test_sendto_to_connected_peer_when_socket_buffer_full(loop):
    # uvffi only: the queued path sends with send() as well
    async def main():
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        with b:
            transport, proto = await loop.create_datagram_endpoint(
                Collect, sock=a)
            try:
                sent = [b"%05d" % i + b"." * 1000 for i in range(300)]
                for data in sent:
                    transport.sendto(data)
                assert transport.get_write_buffer_size() > 0, \
                    "the kernel took every datagram: nothing was queued"
                b.setblocking(False)
                got = []
                for _ in range(TIMEOUT * 100):
                    try:
                        while True:
                            got.append(b.recv(2000))
                    except BlockingIOError:
                        pass
                    if len(got) == len(sent):
                        break
                    await asyncio.sleep(0.01)
            finally:
                transport.close()
            await proto.lost
        return sent, got, proto.errors

    sent, got, errors = _run(loop, main())
    assert got == sent
    assert errors == []
