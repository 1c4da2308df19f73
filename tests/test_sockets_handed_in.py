"""What a stream transport does with the socket it is given or offers:
TCP_NODELAY on a connected socket handed to create_connection(sock=...)
and open_connection(sock=...) as on the loop's own connections, a
TransportSocket repr that names its family and type, and no socket to
offer once the transport is closed.  asyncio's loop skips TCP_NODELAY on a
socket made with socket.socket()'s default proto 0, prints the family and
type as numbers on 3.11+, and offers a closed socket: uvffi does as uvloop
does, so the checks of those run on uvffi only."""
import asyncio
import socket

import pytest

TIMEOUT = 10


def _listener():
    srv = socket.create_server(("127.0.0.1", 0))
    srv.settimeout(TIMEOUT)
    return srv


def _nodelay(sock):
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


@pytest.mark.parametrize("api", ["create_connection", "open_connection"])
def test_tcp_nodelay_on_a_connected_socket_handed_in(loop, api):
    listener = _listener()

    async def main():
        sock = socket.socket()  # proto 0, as most code makes them
        assert sock.proto == 0
        sock.connect(listener.getsockname())
        peer, _ = listener.accept()
        with peer:
            if api == "create_connection":
                tr, _ = await loop.create_connection(asyncio.Protocol,
                                                     sock=sock)
            else:
                _, writer = await asyncio.open_connection(sock=sock)
                tr = writer.transport
            try:
                assert _nodelay(tr.get_extra_info("socket"))
                assert _nodelay(sock)
            finally:
                tr.close()
                await asyncio.sleep(0)

    try:
        loop.run_until_complete(asyncio.wait_for(main(), TIMEOUT))
    finally:
        listener.close()


def test_tcp_nodelay_on_both_loops_own_connections(any_loop):
    listener = _listener()

    async def main():
        tr, _ = await any_loop.create_connection(asyncio.Protocol,
                                                 *listener.getsockname())
        peer, _ = listener.accept()
        with peer:
            try:
                assert _nodelay(tr.get_extra_info("socket"))
            finally:
                tr.close()
                await asyncio.sleep(0)

    try:
        any_loop.run_until_complete(asyncio.wait_for(main(), TIMEOUT))
    finally:
        listener.close()


@pytest.mark.parametrize("family, type_, names", [
    (socket.AF_UNIX, socket.SOCK_STREAM, ("AF_UNIX", "SOCK_STREAM")),
    (socket.AF_INET, socket.SOCK_STREAM, ("AF_INET", "SOCK_STREAM")),
    (socket.AF_INET, socket.SOCK_DGRAM, ("AF_INET", "SOCK_DGRAM")),
])
def test_transport_socket_repr_names_family_and_type(loop, family, type_,
                                                     names):
    async def main():
        if type_ == socket.SOCK_DGRAM:
            tr, _ = await loop.create_datagram_endpoint(
                asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
        else:
            a, b = socket.socketpair(family) if family == socket.AF_UNIX else (
                None, None)
            if a is None:
                listener = _listener()
                a = socket.create_connection(listener.getsockname())
                b, _ = listener.accept()
                listener.close()
            tr, _ = await loop.connect_accepted_socket(asyncio.Protocol, a)
            b.close()
        try:
            text = repr(tr.get_extra_info("socket"))
            for name in names:
                assert name in text, text
            assert text.startswith("<asyncio.TransportSocket fd="), text
        finally:
            tr.close()
            await asyncio.sleep(0)

    loop.run_until_complete(asyncio.wait_for(main(), TIMEOUT))


@pytest.mark.parametrize("how", ["create_connection", "accepted"])
def test_no_socket_after_abort_in_connection_made(loop, how):
    class AbortAtOnce(asyncio.Protocol):
        def connection_made(self, tr):
            tr.abort()

    async def main():
        if how == "create_connection":
            listener = _listener()
            tr, _ = await loop.create_connection(AbortAtOnce,
                                                 *listener.getsockname())
            listener.close()
        else:
            srv = await loop.create_server(AbortAtOnce, "127.0.0.1", 0)
            got = loop.create_future()

            class Keep(AbortAtOnce):
                def connection_made(self, tr):
                    got.set_result(tr)
                    super().connection_made(tr)

            srv.close()
            srv = await loop.create_server(Keep, "127.0.0.1", 0)
            client = socket.create_connection(srv.sockets[0].getsockname())
            tr = await asyncio.wait_for(got, TIMEOUT)
            await asyncio.sleep(0.01)
            client.close()
            srv.close()
        assert tr.is_closing()
        assert tr.get_extra_info("socket") is None
        assert tr.get_extra_info("socket", "gone") == "gone"
        tr.close()

    loop.run_until_complete(asyncio.wait_for(main(), TIMEOUT))
