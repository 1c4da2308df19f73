"""A failure inside one of libuv's callbacks reaches the exception handler
with its transport and protocol in the context, and closes that transport,
as asyncio reports the failures of its own I/O callbacks (_fatal_error);
the loop and the other connections go on."""
import asyncio
import socket

TIMEOUT = 10


class _Recorder(asyncio.Protocol):
    def __init__(self, loop):
        self.lost = loop.create_future()

    def connection_lost(self, exc):
        if not self.lost.done():
            self.lost.set_result(exc)


def test_a_failing_write_completion_reports_its_transport_and_closes_it(loop):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport, protocol = await loop.create_connection(
            lambda: _Recorder(loop), "127.0.0.1", port)
        other, other_protocol = await loop.create_connection(
            lambda: _Recorder(loop), "127.0.0.1", port)

        def fail(status):
            raise RuntimeError("write completion failed")
        transport._stream.on_write = fail
        # more than the kernel takes at once: libuv completes the rest
        transport.write(b"x" * (8 * 1024 * 1024))
        exc = await asyncio.wait_for(protocol.lost, TIMEOUT)
        # the other connection is untouched
        other.write(b"still fine")
        await asyncio.sleep(0.05)
        assert not other.is_closing()
        other.close()
        server.close()
        return transport, protocol, exc

    transport, protocol, exc = loop.run_until_complete(main())
    assert isinstance(exc, RuntimeError)
    (ctx,) = contexts
    assert ctx["message"] == "Fatal error in a stream write callback"
    assert isinstance(ctx["exception"], RuntimeError)
    assert ctx["transport"] is transport
    assert ctx["protocol"] is protocol
    assert transport.is_closing()


def test_a_failing_datagram_receive_reports_its_transport(loop):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    class Datagrams(asyncio.DatagramProtocol):
        def __init__(self):
            self.lost = loop.create_future()

        def connection_lost(self, exc):
            if not self.lost.done():
                self.lost.set_result(exc)

    async def main():
        transport, protocol = await loop.create_datagram_endpoint(
            Datagrams, local_addr=("127.0.0.1", 0))

        def fail(*args):
            raise RuntimeError("receive failed")
        transport._udp.on_recv = fail
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.sendto(b"ping", transport.get_extra_info("sockname"))
        await asyncio.wait_for(protocol.lost, TIMEOUT)
        return transport, protocol

    transport, protocol = loop.run_until_complete(main())
    (ctx,) = contexts
    assert ctx["message"] == "Fatal error in a datagram receive callback"
    assert isinstance(ctx["exception"], RuntimeError)
    assert ctx["transport"] is transport
    assert ctx["protocol"] is protocol
