"""TLS: create_connection/create_server with ssl, start_tls, handshake
failures; asyncio's sslproto over our transports.  The certificate in
tests/data was made with `openssl req -x509 ... -days 36500` for
localhost/127.0.0.1/::1."""
import asyncio
import ssl
import sys

import pytest

from _netutil import Recorder, client_ssl_context, run, server_ssl_context


def _echo_factory(loop, store=None):
    def factory():
        p = Recorder(loop, echo=True)
        if store is not None:
            store.append(p)
        return p
    return factory


def test_tls_echo_and_extra_info(any_loop):
    loop = any_loop

    async def main():
        protos = []
        server = await loop.create_server(_echo_factory(loop, protos),
                                          "127.0.0.1", 0,
                                          ssl=server_ssl_context(),
                                          ssl_handshake_timeout=10)
        port = server.sockets[0].getsockname()[1]
        tr, pr = await loop.create_connection(
            lambda: Recorder(loop), "127.0.0.1", port,
            ssl=client_ssl_context(), server_hostname="localhost",
            ssl_handshake_timeout=10)
        payload = b"secret" * 50000
        tr.write(payload)
        got = await pr.wait_data(len(payload))
        info = {k: tr.get_extra_info(k) for k in
                ("sslcontext", "ssl_object", "peercert", "cipher",
                 "compression", "socket", "peername", "sockname")}
        srv_obj = protos[0].transport.get_extra_info("ssl_object")
        name = type(tr).__name__
        tr.close()
        exc = await pr.lost
        server.close()
        await server.wait_closed()
        return got == payload, info, srv_obj, exc, name

    same, info, srv_obj, exc, name = run(loop, main())
    assert same and exc is None
    # code tells TLS transports by their class name (CPython's test_events)
    assert "ssl" in name.lower(), name
    assert isinstance(info["sslcontext"], ssl.SSLContext)
    assert isinstance(info["ssl_object"], ssl.SSLObject)
    assert info["peercert"]["subject"] == ((("commonName", "localhost"),),)
    assert info["cipher"] is not None
    assert info["socket"] is not None and info["peername"][0] == "127.0.0.1"
    assert isinstance(srv_obj, ssl.SSLObject) and srv_obj.server_side


def test_tls_streams_api(any_loop):
    loop = any_loop

    async def handle(r, w):
        data = await r.readline()
        w.write(data[::-1])
        await w.drain()
        w.close()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", 0,
                                            ssl=server_ssl_context())
        port = server.sockets[0].getsockname()[1]
        r, w = await asyncio.open_connection("127.0.0.1", port,
                                             ssl=client_ssl_context(),
                                             server_hostname="localhost")
        w.write(b"abc\n")
        got = await r.read()
        w.close()
        try:
            await w.wait_closed()
        except (ssl.SSLError, ConnectionError):
            pass
        server.close()
        await server.wait_closed()
        return got

    assert run(loop, main()) == b"\ncba"


def test_tls_untrusted_certificate_fails_verification(any_loop):
    loop = any_loop

    async def main():
        server = await loop.create_server(_echo_factory(loop), "127.0.0.1", 0,
                                          ssl=server_ssl_context())
        port = server.sockets[0].getsockname()[1]
        try:
            await loop.create_connection(
                asyncio.Protocol, "127.0.0.1", port,
                ssl=ssl.create_default_context(), server_hostname="localhost")
        finally:
            server.close()
            await server.wait_closed()

    with pytest.raises(ssl.SSLCertVerificationError):
        run(loop, main())


def test_tls_wrong_hostname_fails(any_loop):
    loop = any_loop

    async def main():
        server = await loop.create_server(_echo_factory(loop), "127.0.0.1", 0,
                                          ssl=server_ssl_context())
        port = server.sockets[0].getsockname()[1]
        try:
            await loop.create_connection(
                asyncio.Protocol, "127.0.0.1", port,
                ssl=client_ssl_context(), server_hostname="not-localhost")
        finally:
            server.close()
            await server.wait_closed()

    with pytest.raises(ssl.SSLCertVerificationError):
        run(loop, main())


def test_tls_handshake_timeout_against_silent_server(any_loop):
    loop = any_loop

    async def main():
        # a plain server that never answers the ClientHello
        server = await loop.create_server(lambda: Recorder(loop),
                                          "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            await loop.create_connection(
                asyncio.Protocol, "127.0.0.1", port,
                ssl=client_ssl_context(), server_hostname="localhost",
                ssl_handshake_timeout=0.3)
        finally:
            server.close()
            await server.wait_closed()

    with pytest.raises((ConnectionAbortedError, asyncio.TimeoutError)):
        run(loop, main())


@pytest.mark.skipif(sys.version_info < (3, 11),
                    reason="ssl_shutdown_timeout is 3.11+")
def test_ssl_shutdown_timeout_accepted(any_loop):
    loop = any_loop

    async def main():
        server = await loop.create_server(_echo_factory(loop), "127.0.0.1", 0,
                                          ssl=server_ssl_context(),
                                          ssl_shutdown_timeout=5)
        port = server.sockets[0].getsockname()[1]
        tr, pr = await loop.create_connection(
            lambda: Recorder(loop), "127.0.0.1", port,
            ssl=client_ssl_context(), server_hostname="localhost",
            ssl_shutdown_timeout=5)
        tr.write(b"x")
        await pr.wait_data(1)
        tr.close()
        exc = await pr.lost
        server.close()
        await server.wait_closed()
        return exc

    assert run(loop, main()) is None


def test_start_tls_upgrades_plain_connection(any_loop):
    loop = any_loop

    async def main():
        upgraded = loop.create_future()

        class Upgrader(asyncio.Protocol):
            def connection_made(self, transport):
                self.transport = transport

            def data_received(self, data):
                if data == b"STARTTLS\n":
                    self.transport.write(b"GO\n")
                    loop.create_task(self.upgrade())

            async def upgrade(self):
                tls = await loop.start_tls(self.transport, self,
                                           server_ssl_context(),
                                           server_side=True)
                upgraded.set_result(tls)

        server = await loop.create_server(Upgrader, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        tr, pr = await loop.create_connection(lambda: Recorder(loop),
                                              "127.0.0.1", port)
        tr.write(b"STARTTLS\n")
        await pr.wait_data(3)
        tls_tr = await loop.start_tls(tr, pr, client_ssl_context(),
                                      server_hostname="localhost",
                                      ssl_handshake_timeout=10)
        srv_tls = await upgraded
        srv_tls.write(b"over tls")
        await pr.wait_data(3 + 8)
        version = tls_tr.get_extra_info("ssl_object").version()
        tls_tr.close()
        await pr.lost
        server.close()
        await server.wait_closed()
        return bytes(pr.data), version

    data, version = run(loop, main())
    assert data == b"GO\nover tls"
    assert version.startswith("TLS")


def test_start_tls_rejects_bad_arguments(any_loop):
    loop = any_loop

    async def main():
        server = await loop.create_server(lambda: Recorder(loop),
                                          "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        tr, pr = await loop.create_connection(lambda: Recorder(loop),
                                              "127.0.0.1", port)
        try:
            with pytest.raises(TypeError, match="sslcontext is expected"):
                await loop.start_tls(tr, pr, object())
        finally:
            tr.close()
            server.close()
            await server.wait_closed()

    run(loop, main())


def test_tls_sendfile_uses_fallback(any_loop, tmp_path):
    loop = any_loop
    path = tmp_path / "f.bin"
    payload = bytes(range(256)) * 1000
    path.write_bytes(payload)

    async def main():
        protos = []
        server = await loop.create_server(
            lambda: protos.append(Recorder(loop)) or protos[-1],
            "127.0.0.1", 0, ssl=server_ssl_context())
        port = server.sockets[0].getsockname()[1]
        tr, pr = await loop.create_connection(
            lambda: Recorder(loop), "127.0.0.1", port,
            ssl=client_ssl_context(), server_hostname="localhost")
        with open(path, "rb") as f:
            with pytest.raises(RuntimeError, match="fallback is disabled"):
                await loop.sendfile(tr, f, fallback=False)
            sent = await loop.sendfile(tr, f)
        while not protos:
            await asyncio.sleep(0.01)
        got = await protos[0].wait_data(len(payload))
        tr.close()
        await pr.lost
        server.close()
        await server.wait_closed()
        return sent, got

    sent, got = run(loop, main())
    assert sent == len(payload) and got == payload


def test_tls_connect_accepted_socket_server_side(any_loop):
    import socket
    loop = any_loop

    async def main():
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen()
        lsock.setblocking(False)
        accepted = loop.create_task(loop.sock_accept(lsock))
        client_task = loop.create_task(loop.create_connection(
            lambda: Recorder(loop), *lsock.getsockname(),
            ssl=client_ssl_context(), server_hostname="localhost"))
        conn, _ = await accepted
        str_, spr = await loop.connect_accepted_socket(
            lambda: Recorder(loop, echo=True), conn,
            ssl=server_ssl_context(), ssl_handshake_timeout=10)
        tr, pr = await client_task
        tr.write(b"tls accepted")
        got = await pr.wait_data(12)
        tr.close()
        await pr.lost
        lsock.close()
        return got, str_.get_extra_info("ssl_object").server_side

    assert run(loop, main()) == (b"tls accepted", True)


def test_tls_large_transfer_both_ways(any_loop):
    # asyncio's SSLProtocol (3.11+) is a BufferedProtocol: on uvffi its
    # large reads go straight into the buffers get_buffer() hands out
    loop = any_loop
    seen = set()

    async def handle(reader, writer):
        while True:
            data = await reader.read(1 << 20)
            if not data:
                break
            stream = getattr(getattr(getattr(writer.transport, "_ssl_protocol", None),
                                     "_transport", None), "_stream", None)
            if stream is not None:
                seen.add(stream.mode)
            writer.write(data)
            await writer.drain()
        writer.close()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", 0,
                                            ssl=server_ssl_context())
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_ssl_context(), server_hostname="localhost")
        data = bytes(range(256)) * (8 * 4096)  # 8 MiB
        writer.write(data)
        got = await reader.readexactly(len(data))
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return got == data

    assert run(loop, main())
    if loop.kind == "uvffi" and sys.version_info >= (3, 11):
        from uvffi.handles import streamreads
        assert streamreads.BUFFERED_LARGE_MODE in seen
