"""A protocol with get_buffer() and buffer_updated() that does not
subclass asyncio.BufferedProtocol (nor asyncio.Protocol) is fed through
them, on TCP, Unix sockets and TLS, as uvloop does.  asyncio's loop only
looks at the class and calls the missing data_received(), so these run on
uvffi only; a subclass of asyncio.BufferedProtocol is the same on both
(tests elsewhere)."""
import asyncio
import os
import socket
import sys
import tempfile

import pytest

from _netutil import client_ssl_context, server_ssl_context

TIMEOUT = 10


class DuckBuffered(asyncio.BaseProtocol):
    """Buffered by its methods, not by its class."""

    def __init__(self):
        self.buf = bytearray(7)  # smaller than the message: several rounds
        self.received = bytearray()
        self.eof = None
        self.lost = None
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        self.eof = asyncio.get_running_loop().create_future()
        self.lost = asyncio.get_running_loop().create_future()

    def get_buffer(self, sizehint):
        return self.buf

    def buffer_updated(self, nbytes):
        self.received += self.buf[:nbytes]

    def eof_received(self):
        self.eof.set_result(bytes(self.received))

    def connection_lost(self, exc):
        self.lost.set_result(exc)


@pytest.mark.parametrize("family", ["tcp", "unix", "tls"])
def test_duck_typed_buffered_protocol_gets_the_data(loop, family):
    proto = DuckBuffered()
    message = b"0123456789" * 1000 + b"end"

    async def main():
        ssl = server_ssl_context() if family == "tls" else None
        if family == "unix":
            path = os.path.join(tempfile.mkdtemp(), "s")
            srv = await loop.create_unix_server(lambda: proto, path)
            client = socket.socket(socket.AF_UNIX)
            addr = path
        else:
            srv = await loop.create_server(lambda: proto, "127.0.0.1", 0,
                                           ssl=ssl)
            client = socket.socket(socket.AF_INET)
            addr = srv.sockets[0].getsockname()
        client.settimeout(TIMEOUT)
        await loop.run_in_executor(None, client.connect, addr)
        if ssl is not None:
            client = await loop.run_in_executor(
                None, lambda: client_ssl_context().wrap_socket(
                    client, server_hostname="localhost"))
        with client:
            await loop.run_in_executor(None, client.sendall, message)
            if ssl is not None:
                client = await loop.run_in_executor(None, client.unwrap)
            client.shutdown(socket.SHUT_WR)
            if ssl is None or sys.version_info >= (3, 11):
                # (the older sslproto of 3.9/3.10 goes to connection_lost)
                await asyncio.wait_for(asyncio.shield(proto.eof), TIMEOUT)
            assert await asyncio.wait_for(proto.lost, TIMEOUT) is None
        srv.close()
        await srv.wait_closed()
        return bytes(proto.received)

    assert loop.run_until_complete(main()) == message


def test_a_protocol_with_data_received_stays_plain(loop):
    """An asyncio.Protocol that also has get_buffer() is a plain protocol
    (its data_received() is what asyncio calls)."""
    got = []

    class Both(asyncio.Protocol):
        def get_buffer(self, sizehint):
            raise AssertionError("get_buffer() of a plain Protocol")

        buffer_updated = get_buffer

        def data_received(self, data):
            got.append(data)

    async def main():
        a, b = socket.socketpair()
        with b:
            tr, _ = await loop.connect_accepted_socket(Both, a)
            b.sendall(b"plain")
            for _ in range(int(TIMEOUT / 0.01)):
                if got:
                    break
                await asyncio.sleep(0.01)
            tr.close()

    loop.run_until_complete(main())
    assert b"".join(got) == b"plain"
