"""The order of I/O callbacks against callbacks already queued: asyncio's
loop runs what was in the ready queue when it polled before the I/O
callbacks of that poll.  So the coroutine awaiting create_connection()
resumes, and holds its transport, before the protocol sees the first data
a server sent at once (CPython's test_buffered_proto relies on it; uvffi,
which delivers I/O during its poll, used to call the protocol first)."""
import asyncio
import socket

import pytest


def _run(loop, coro, timeout=30):
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


async def _server_sending_at_once(payload):
    async def on_client(reader, writer):
        writer.write(payload)
        await reader.read(1)
        writer.close()
    return await asyncio.start_server(on_client, "127.0.0.1", 0)


class SeesTransportFirst(asyncio.Protocol):
    """Records, at each data_received, whether the coroutine had its
    transport by then (``holder`` is filled in after create_connection)."""

    def __init__(self, holder, done):
        self.holder, self.done, self.seen = holder, done, []

    def data_received(self, data):
        self.seen.append("transport" in self.holder)
        self.holder["transport"].write(b"1")  # what CPython's test does
        if not self.done.done():
            self.done.set_result(None)


class BufferedSeesTransportFirst(asyncio.BufferedProtocol):
    def __init__(self, holder, done):
        self.holder, self.done, self.seen = holder, done, []
        self.buffer = bytearray(100)

    def get_buffer(self, sizehint):
        return self.buffer

    def buffer_updated(self, nbytes):
        self.seen.append("transport" in self.holder)
        self.holder["transport"].write(b"1")
        if not self.done.done():
            self.done.set_result(None)


@pytest.mark.parametrize("protocol_class", [SeesTransportFirst, BufferedSeesTransportFirst])
@pytest.mark.parametrize("size", [9216, 300 * 1024])
def test_first_data_arrives_after_create_connection_returns(any_loop, protocol_class, size):
    async def main():
        server = await _server_sending_at_once(b"x" * size)
        holder = {}
        done = any_loop.create_future()
        # something already queued when the data comes in: the resumption of
        # this coroutine (the order asyncio gives it)
        transport, protocol = await any_loop.create_connection(
            lambda: protocol_class(holder, done), *server.sockets[0].getsockname())
        holder["transport"] = transport
        await done
        transport.close()
        server.close()
        await server.wait_closed()
        return protocol.seen

    seen = _run(any_loop, main())
    assert seen and all(seen), seen


def test_callbacks_queued_before_a_poll_run_before_its_reads(any_loop):
    order = []

    class Recorder(asyncio.Protocol):
        def data_received(self, data):
            order.append("data")

    async def main():
        a, b = socket.socketpair()
        transport, _ = await any_loop.create_connection(Recorder, sock=a)

        def send_and_queue():
            b.send(b"ping")  # readable at the next poll
            any_loop.call_soon(order.append, "queued")  # queued before it
        any_loop.call_soon(send_and_queue)
        await asyncio.sleep(0.05)
        transport.close()
        b.close()
        return order

    assert _run(any_loop, main()) == ["queued", "data"]


async def _until_recorded(order, n, timeout=2.0):
    """Wait until *order* holds *n* entries, or *timeout* passed (the test's
    assertion then shows what came)."""
    for _ in range(int(timeout / 0.01)):
        if len(order) >= n:
            return
        await asyncio.sleep(0.01)


class _Recorder(asyncio.DatagramProtocol):
    def __init__(self, order):
        self.order = order

    def datagram_received(self, data, addr):
        self.order.append((data, addr))

    def error_received(self, exc):
        self.order.append(type(exc))


@pytest.fixture(params=["udp", "unix"])
def dgram_pair(request, any_loop, tmp_path):
    """(make_endpoint, sender socket, the sender's address as the protocol
    should see it): UDP (uvffi: libuv's uv_udp_t) or a Unix datagram
    socket (uvffi: a uv_poll_t and recvfrom, as asyncio)."""
    if request.param == "udp":
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sender.bind(("127.0.0.1", 0))

        def make(factory):
            return any_loop.create_datagram_endpoint(factory, local_addr=("127.0.0.1", 0))
    else:
        if not hasattr(socket, "AF_UNIX"):
            pytest.skip("no AF_UNIX")
        sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sender.bind(str(tmp_path / "sender"))

        def make(factory):
            return any_loop.create_datagram_endpoint(
                factory, local_addr=str(tmp_path / "receiver"), family=socket.AF_UNIX)
    yield make, sender, sender.getsockname()
    sender.close()


def test_datagrams_wait_behind_callbacks_queued_before_the_poll(any_loop, dgram_pair):
    # (the datagram, its sender, an empty one and a large one come through
    # the wait whole)
    make, sender, sender_addr = dgram_pair
    order = []
    big = bytes(range(256)) * 200

    async def main():
        transport, _ = await make(lambda: _Recorder(order))

        def send_and_queue():
            to = transport.get_extra_info("sockname")
            for data in (b"d", b"", big):
                sender.sendto(data, to)
            any_loop.call_soon(order.append, "queued")
        any_loop.call_soon(send_and_queue)
        await _until_recorded(order, 4)
        transport.close()
        return order

    assert _run(any_loop, main()) == [
        "queued", (b"d", sender_addr), (b"", sender_addr), (big, sender_addr)]


def test_datagram_held_behind_a_queued_close_reaches_no_one(any_loop, dgram_pair):
    # the callback queued before the poll closes the transport: asyncio's
    # loop then drops the read callback the poll queued behind it
    make, sender, _ = dgram_pair
    order = []

    async def main():
        transport, proto = await make(lambda: _Recorder(order))
        lost = any_loop.create_future()
        proto.connection_lost = lambda exc: lost.set_result(exc)

        def send_and_queue_close():
            sender.sendto(b"late", transport.get_extra_info("sockname"))
            any_loop.call_soon(transport.close)
        any_loop.call_soon(send_and_queue_close)
        await asyncio.wait_for(lost, 10)  # (waits for: connection_lost after close)
        await asyncio.sleep(0.05)
        return order

    assert _run(any_loop, main()) == []


def test_send_error_waits_behind_callbacks_queued_before_the_poll(any_loop):
    # an ICMP "port unreachable" for an earlier send, reported by the poll
    # (error_received), keeps its place behind the queued callback
    order = []
    dead = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dead.bind(("127.0.0.1", 0))
    dead_addr = dead.getsockname()
    dead.close()

    async def main():
        transport, _ = await any_loop.create_datagram_endpoint(
            lambda: _Recorder(order), remote_addr=dead_addr)

        def send_and_queue():
            transport.sendto(b"to no one")
            any_loop.call_soon(order.append, "queued")
        any_loop.call_soon(send_and_queue)
        await _until_recorded(order, 2)
        transport.close()
        return order

    assert _run(any_loop, main()) == ["queued", ConnectionRefusedError]


def test_guest_mode_reads_wait_behind_callbacks_queued_before_the_hosts_poll():
    # the same order on a host's uv_loop_t: our prepare step runs before the
    # host polls, the check step after it
    from test_embedding import Host, finish, guest, lib

    host = Host()
    loop = guest(host)
    order = []

    class Recorder(asyncio.Protocol):
        def data_received(self, data):
            order.append("data")

    a, b = socket.socketpair()
    try:
        made = loop.create_task(loop.create_connection(Recorder, sock=a))
        host.run_until(made.done)
        transport, _ = made.result()

        def send_and_queue():
            b.send(b"ping")
            loop.call_soon(order.append, "queued")
        loop.call_soon(send_and_queue)
        host.run_until(lambda: len(order) == 2)
        assert order == ["queued", "data"]
        transport.close()
        host.run(lib.UV_RUN_NOWAIT)
    finally:
        finish(loop, host)
        b.close()
        assert host.close() == 0
