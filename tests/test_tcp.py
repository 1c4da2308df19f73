"""TCP connections: create_connection parameters, the stream transport's
methods, flow control and fault behaviour, on both loops (any_loop)."""
import asyncio
import errno
import socket
import sys

import pytest

from _netutil import Recorder, run


async def _echo_server(loop, **kwargs):
    protos = []

    def factory():
        p = Recorder(loop, echo=True)
        protos.append(p)
        return p
    server = await loop.create_server(factory, "127.0.0.1", 0, **kwargs)
    return server, server.sockets[0].getsockname()[1], protos


def _unused_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_echo_bytes_bytearray_memoryview_and_writelines(any_loop):
    loop = any_loop

    async def main():
        server, port, _ = await _echo_server(loop)
        tr, pr = await loop.create_connection(lambda: Recorder(loop),
                                              "127.0.0.1", port)
        tr.write(b"abc")
        tr.write(bytearray(b"def"))
        tr.write(memoryview(b"xxghixx")[2:5])
        tr.write(b"")
        tr.writelines([b"jk", bytearray(b"l"), memoryview(b"mn")])
        big = bytes(range(256)) * 4096  # 1 MiB: exercises the queued path
        tr.write(big)
        got = await pr.wait_data(14 + len(big))
        tr.close()
        await pr.lost
        server.close()
        await server.wait_closed()
        return got, pr.events

    got, events = run(loop, main())
    assert got[:14] == b"abcdefghijklmn"
    assert got[14:] == bytes(range(256)) * 4096
    assert events == ["made", "lost"]


def test_write_rejects_non_bytes_like(any_loop):
    loop = any_loop

    async def main():
        server, port, _ = await _echo_server(loop)
        tr, pr = await loop.create_connection(lambda: Recorder(loop),
                                              "127.0.0.1", port)
        try:
            with pytest.raises(TypeError, match="bytes-like"):
                tr.write("text")
        finally:
            tr.close()
            server.close()
            await server.wait_closed()

    run(loop, main())


def test_extra_info_socket_sockname_peername_and_nodelay(any_loop):
    loop = any_loop

    async def main():
        server, port, protos = await _echo_server(loop)
        tr, pr = await loop.create_connection(lambda: Recorder(loop),
                                              "127.0.0.1", port)
        tr.write(b"x")
        await pr.wait_data(1)
        srv_tr = protos[0].transport
        out = []
        for t in (tr, srv_tr):
            sock = t.get_extra_info("socket")
            out.append((
                type(sock).__name__, sock.family, sock.type,
                sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0,
                t.get_extra_info("sockname"), t.get_extra_info("peername"),
                sock.getsockname(), t.get_extra_info("nonexistent", "dflt"),
            ))
        tr.close()
        server.close()
        await server.wait_closed()
        return out, port

    (cli, srv), port = run(loop, main())
    assert cli[0] == srv[0] == "TransportSocket"
    assert cli[1] == socket.AF_INET and cli[2] == socket.SOCK_STREAM
    assert cli[3] and srv[3]
    assert cli[5] == ("127.0.0.1", port)
    assert srv[4] == ("127.0.0.1", port)
    assert cli[4] == srv[5] == cli[6]
    assert cli[7] == srv[7] == "dflt"


def test_connection_refused_raises_connectionrefusederror(any_loop):
    loop = any_loop
    port = _unused_port()
    with pytest.raises(ConnectionRefusedError):
        run(loop, loop.create_connection(asyncio.Protocol, "127.0.0.1", port))


@pytest.mark.skipif(sys.version_info < (3, 12), reason="all_errors is 3.12+")
def test_all_errors_gives_exception_group(any_loop):
    loop = any_loop
    port = _unused_port()
    with pytest.raises(ExceptionGroup) as info:
        run(loop, loop.create_connection(asyncio.Protocol, "127.0.0.1", port,
                                         all_errors=True))
    assert all(isinstance(e, ConnectionRefusedError)
               for e in info.value.exceptions)


def test_create_connection_with_sock(any_loop):
    loop = any_loop

    async def main():
        server, port, _ = await _echo_server(loop)
        sock = socket.socket()
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", port))
        tr, pr = await loop.create_connection(lambda: Recorder(loop),
                                              sock=sock)
        same = tr.get_extra_info("socket").fileno() == sock.fileno()
        tr.write(b"ping")
        got = await pr.wait_data(4)
        tr.close()
        await pr.lost
        server.close()
        await server.wait_closed()
        return got, same, sock.fileno()

    got, same, fd_after = run(loop, main())
    assert got == b"ping" and same
    assert fd_after == -1  # the transport closed the socket it was given


def test_create_connection_local_addr_family_proto_flags(any_loop):
    loop = any_loop

    async def main():
        server, port, protos = await _echo_server(loop)
        tr, pr = await loop.create_connection(
            lambda: Recorder(loop), "127.0.0.1", port,
            family=socket.AF_INET, proto=socket.IPPROTO_TCP,
            flags=socket.AI_NUMERICHOST, local_addr=("127.0.0.1", 0),
            happy_eyeballs_delay=0.25, interleave=1)
        tr.write(b"x")
        await pr.wait_data(1)
        local = tr.get_extra_info("sockname")
        peer_seen = protos[0].transport.get_extra_info("peername")
        tr.close()
        server.close()
        await server.wait_closed()
        return local, peer_seen

    local, peer_seen = run(loop, main())
    assert local == peer_seen
    assert local[0] == "127.0.0.1"


def test_local_addr_in_use_gives_same_error(any_loop):
    loop = any_loop
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        async def main():
            server, port, _ = await _echo_server(loop)
            try:
                await loop.create_connection(
                    asyncio.Protocol, "127.0.0.1", port,
                    local_addr=busy.getsockname())
            finally:
                server.close()
                await server.wait_closed()
        with pytest.raises(OSError) as info:
            run(loop, main())
        assert info.value.errno == errno.EADDRINUSE
        assert "error while attempting to bind on address" in str(info.value)
    finally:
        busy.close()


def test_bad_arguments_raise_as_asyncio(any_loop):
    loop = any_loop
    with pytest.raises(ValueError, match="server_hostname is only meaningful"):
        run(loop, loop.create_connection(asyncio.Protocol, "127.0.0.1", 1,
                                         server_hostname="x"))
    with socket.socket() as sock:
        with pytest.raises(ValueError, match="host/port and sock"):
            run(loop, loop.create_connection(asyncio.Protocol, "127.0.0.1", 1,
                                             sock=sock))


def test_write_eof_half_close_and_eof_received(any_loop):
    loop = any_loop

    class HalfServer(Recorder):
        def eof_received(self):
            super().eof_received()
            # the write side is still open after the peer's EOF
            self.transport.write(b"reply:" + bytes(self.data))
            self.transport.close()
            return True

    async def main():
        srv_protos = []

        def factory():
            p = HalfServer(loop)
            srv_protos.append(p)
            return p
        server = await loop.create_server(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        tr, pr = await loop.create_connection(
            lambda: Recorder(loop, keep_open_on_eof=True), "127.0.0.1", port)
        assert tr.can_write_eof()
        tr.write(b"question")
        tr.write_eof()
        tr.write_eof()  # a second call is a no-op
        with pytest.raises(RuntimeError, match="write_eof"):
            tr.write(b"more")
        await pr.eof
        got = bytes(pr.data)
        closing = tr.is_closing()
        tr.close()
        await pr.lost
        server.close()
        await server.wait_closed()
        return got, closing, pr.events, srv_protos[0].events

    got, closing, cevents, sevents = run(loop, main())
    assert got == b"reply:question"
    assert closing is False  # eof_received returned True: kept open
    assert cevents == ["made", "eof", "lost"]
    assert sevents == ["made", "eof", "lost"]


def test_eof_received_false_closes_transport(any_loop):
    loop = any_loop

    async def main():
        server, port, protos = await _echo_server(loop)
        tr, pr = await loop.create_connection(lambda: Recorder(loop),
                                              "127.0.0.1", port)
        tr.write_eof()
        await protos_lost(protos)
        exc = await pr.lost
        server.close()
        await server.wait_closed()
        return exc, pr.events, protos[0].events

    async def protos_lost(protos):
        while not protos:
            await asyncio.sleep(0.01)
        return await protos[0].lost

    exc, cevents, sevents = run(loop, main())
    assert exc is None
    assert sevents == ["made", "eof", "lost"]
    assert cevents == ["made", "eof", "lost"]


def test_close_flushes_pending_writes_and_later_writes_are_dropped(any_loop):
    loop = any_loop

    async def main():
        received = []
        done = loop.create_future()

        async def reader(r, w):
            received.append(await r.read())
            w.close()
            done.set_result(None)
        server = await asyncio.start_server(reader, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        tr, pr = await loop.create_connection(lambda: Recorder(loop),
                                              "127.0.0.1", port)
        payload = b"z" * (4 * 1024 * 1024)
        tr.write(payload)
        tr.close()
        assert tr.is_closing()
        tr.write(b"tail")  # after close: neither raises nor breaks the rest
        tr.close()
        await pr.lost
        await done
        server.close()
        await server.wait_closed()
        return received[0], payload

    got, payload = run(loop, main())
    assert got[:len(payload)] == payload


def test_abort_drops_buffer_and_calls_connection_lost_none(any_loop):
    loop = any_loop

    async def main():
        server, port, protos = await _echo_server(loop)
        tr, pr = await loop.create_connection(lambda: Recorder(loop),
                                              "127.0.0.1", port)
        tr.write(b"x" * 1024)
        tr.abort()
        assert tr.is_closing()
        exc = await pr.lost
        tr.abort()  # again: nothing happens
        server.close()
        await server.wait_closed()
        return exc, pr.events

    exc, events = run(loop, main())
    assert exc is None and events == ["made", "lost"]


def test_pause_resume_reading(any_loop):
    loop = any_loop

    async def main():
        server, port, protos = await _echo_server(loop)
        tr, pr = await loop.create_connection(lambda: Recorder(loop),
                                              "127.0.0.1", port)
        states = [tr.is_reading()]
        tr.pause_reading()
        tr.pause_reading()  # idempotent
        states.append(tr.is_reading())
        tr.write(b"hello")
        await asyncio.sleep(0.2)
        while_paused = bytes(pr.data)
        tr.resume_reading()
        tr.resume_reading()
        states.append(tr.is_reading())
        got = await pr.wait_data(5)
        tr.close()
        states.append(tr.is_reading())
        await pr.lost
        server.close()
        await server.wait_closed()
        return states, while_paused, got

    states, while_paused, got = run(loop, main())
    assert states == [True, False, True, False]
    assert while_paused == b""
    assert got == b"hello"


def test_slow_reader_pauses_writer_then_resumes(any_loop):
    loop = any_loop

    class NotReading(Recorder):
        def connection_made(self, transport):
            super().connection_made(transport)
            # deferred: 3.9's selector transport starts reading after
            # connection_made even if it paused there
            self.loop.call_soon(transport.pause_reading)

    async def main():
        peers = []
        server = await loop.create_server(
            lambda: peers.append(NotReading(loop)) or peers[-1],
            "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        tr, pr = await loop.create_connection(lambda: Recorder(loop),
                                              "127.0.0.1", port)
        tr.set_write_buffer_limits(high=64 * 1024, low=16 * 1024)
        limits = tr.get_write_buffer_limits()
        # the server protocol does not read: flood it
        chunk = b"w" * 65536
        sent = 0
        while not pr.paused and sent < 256 * 1024 * 1024:
            tr.write(chunk)
            sent += len(chunk)
            await asyncio.sleep(0)
        size_when_paused = tr.get_write_buffer_size()
        assert pr.paused == 1
        tr.write(chunk)  # still accepted while paused
        tr.abort()
        await pr.lost
        for p in peers:  # not reading, so it would never see the EOF
            p.transport.abort()
        server.close()
        await server.wait_closed()
        return limits, size_when_paused, pr.paused

    limits, size, paused = run(loop, main())
    assert limits == (16 * 1024, 64 * 1024)
    assert size > 64 * 1024
    assert paused == 1


def test_writer_resumes_when_peer_drains(any_loop):
    loop = any_loop

    async def main():
        srv = []
        server = await loop.create_server(
            lambda: srv.append(Recorder(loop)) or srv[-1], "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        tr, pr = await loop.create_connection(lambda: Recorder(loop),
                                              "127.0.0.1", port)
        tr.set_write_buffer_limits(high=32 * 1024)
        while not srv:
            await asyncio.sleep(0.01)
        srv[0].transport.pause_reading()
        total = 0
        while not pr.paused:
            tr.write(b"q" * 65536)
            total += 65536
            await asyncio.sleep(0)
        srv[0].transport.resume_reading()
        await srv[0].wait_data(total, timeout=20)
        for _ in range(100):
            if pr.resumed:
                break
            await asyncio.sleep(0.02)
        size = tr.get_write_buffer_size()
        tr.close()
        await pr.lost
        server.close()
        await server.wait_closed()
        return pr.paused, pr.resumed, size

    paused, resumed, size = run(loop, main())
    assert (paused, resumed, size) == (1, 1, 0)


def test_set_write_buffer_limits_validation(any_loop):
    loop = any_loop

    async def main():
        server, port, _ = await _echo_server(loop)
        tr, pr = await loop.create_connection(lambda: Recorder(loop),
                                              "127.0.0.1", port)
        try:
            with pytest.raises(ValueError):
                tr.set_write_buffer_limits(high=1, low=2)
            tr.set_write_buffer_limits(high=100)
            a = tr.get_write_buffer_limits()
            tr.set_write_buffer_limits(low=10)
            b = tr.get_write_buffer_limits()
            return a, b, tr.get_write_buffer_size()
        finally:
            tr.close()
            server.close()
            await server.wait_closed()

    a, b, size = run(loop, main())
    assert a == (25, 100) and b == (10, 40) and size == 0


def test_peer_reset_mid_write_connection_lost_once(any_loop):
    loop = any_loop

    async def main():
        accepted = loop.create_future()

        def factory():
            p = Recorder(loop)
            accepted.set_result(p)
            return p
        server = await loop.create_server(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        lost_calls = []

        class Counting(Recorder):
            def connection_lost(self, exc):
                lost_calls.append(exc)
                super().connection_lost(exc)
        tr, pr = await loop.create_connection(lambda: Counting(loop),
                                              "127.0.0.1", port)
        peer = await accepted
        psock = peer.transport.get_extra_info("socket")
        # RST instead of FIN when the peer goes away
        psock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                         b"\x01\x00\x00\x00\x00\x00\x00\x00")
        peer.transport.abort()
        for _ in range(2000):
            if pr.lost.done():
                break
            tr.write(b"y" * 65536)
            await asyncio.sleep(0.001)
        exc = await pr.lost
        await asyncio.sleep(0.1)
        tr.write(b"after")  # no raise
        server.close()
        await server.wait_closed()
        return exc, lost_calls

    exc, calls = run(loop, main())
    assert len(calls) == 1
    assert isinstance(exc, (ConnectionResetError, BrokenPipeError))


def test_reset_after_the_last_data_is_a_connection_reset_not_eof(any_loop):
    # The peer resets with data still queued for us: the data arrives, then
    # ConnectionResetError, as on asyncio's loop.  (libuv reports such a
    # reset as EOF when one poll brings both the last data and the hang-up.)
    loop = any_loop
    got = bytearray()
    events = []

    class Reader(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport
            self.lost = loop.create_future()

        def data_received(self, data):
            got.extend(data)

        def eof_received(self):
            events.append("eof")

        def connection_lost(self, exc):
            events.append("lost")
            self.lost.set_result(exc)

    async def main():
        proto = Reader()
        server = await loop.create_server(lambda: proto, "127.0.0.1", 0)
        client = socket.socket()
        client.setblocking(False)
        await loop.sock_connect(client, server.sockets[0].getsockname())
        while not hasattr(proto, "transport"):
            await asyncio.sleep(0.01)
        proto.transport.pause_reading()
        await loop.sock_sendall(client, b"d" * 50_000)
        proto.transport.write(b"unread")  # so that close() sends a reset
        await asyncio.sleep(0.05)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        client.close()
        await asyncio.sleep(0.05)
        proto.transport.resume_reading()
        exc = await asyncio.wait_for(proto.lost, 10)
        server.close()
        await server.wait_closed()
        return exc

    exc = run(loop, main())
    assert isinstance(exc, ConnectionResetError)
    assert bytes(got) == b"d" * 50_000
    assert events == ["lost"]


def test_buffered_protocol_receives_everything(any_loop):
    loop = any_loop

    class Buf(asyncio.BufferedProtocol):
        def __init__(self):
            self.buf = bytearray(1000)
            self.got = bytearray()
            self.lost = loop.create_future()
            self.sizes = []

        def connection_made(self, transport):
            self.transport = transport

        def get_buffer(self, sizehint):
            self.sizes.append(sizehint)
            return self.buf

        def buffer_updated(self, nbytes):
            self.got += self.buf[:nbytes]

        def eof_received(self):
            return False

        def connection_lost(self, exc):
            self.lost.set_result(exc)

    async def main():
        protos = []
        server = await loop.create_server(
            lambda: protos.append(Buf()) or protos[-1], "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        tr, pr = await loop.create_connection(lambda: Recorder(loop),
                                              "127.0.0.1", port)
        payload = bytes(range(256)) * 400
        tr.write(payload)
        tr.write_eof()
        while not protos:
            await asyncio.sleep(0.01)
        exc = await protos[0].lost
        tr.close()
        server.close()
        await server.wait_closed()
        return bytes(protos[0].got), payload, exc, protos[0].sizes

    got, payload, exc, sizes = run(loop, main())
    assert got == payload and exc is None
    assert set(sizes) == {-1}


def test_set_protocol_switches_receiver(any_loop):
    loop = any_loop

    async def main():
        server, port, _ = await _echo_server(loop)
        tr, first = await loop.create_connection(lambda: Recorder(loop),
                                                 "127.0.0.1", port)
        second = Recorder(loop)
        tr.set_protocol(second)
        same = tr.get_protocol() is second
        tr.write(b"hi")
        got = await second.wait_data(2)
        tr.close()
        await second.lost
        server.close()
        await server.wait_closed()
        return same, got, bytes(first.data)

    same, got, first_data = run(loop, main())
    assert same and got == b"hi" and first_data == b""


def test_connect_accepted_socket(any_loop):
    loop = any_loop

    async def main():
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen()
        lsock.setblocking(False)
        csock = socket.socket()
        csock.setblocking(False)
        await loop.sock_connect(csock, lsock.getsockname())
        conn, _ = await loop.sock_accept(lsock)
        tr, pr = await loop.connect_accepted_socket(
            lambda: Recorder(loop, echo=True), conn)
        await loop.sock_sendall(csock, b"echo me")
        got = b""
        while len(got) < 7:
            got += await loop.sock_recv(csock, 100)
        peer = tr.get_extra_info("peername")
        tr.close()
        await pr.lost
        csock.close()
        lsock.close()
        return got, peer == csock.getsockname() if False else peer

    got, peer = run(loop, main())
    assert got == b"echo me" and peer[0] == "127.0.0.1"


def test_connect_accepted_socket_rejects_udp(any_loop):
    loop = any_loop
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        with pytest.raises(ValueError):
            run(loop, loop.connect_accepted_socket(asyncio.Protocol, s))
    finally:
        s.close()


def test_transport_socket_fd_refused_by_add_reader(any_loop):
    loop = any_loop

    async def main():
        server, port, _ = await _echo_server(loop)
        tr, pr = await loop.create_connection(lambda: Recorder(loop),
                                              "127.0.0.1", port)
        fd = tr.get_extra_info("socket").fileno()
        try:
            with pytest.raises(RuntimeError, match="is used by transport"):
                loop.add_reader(fd, lambda: None)
        finally:
            tr.close()
            await pr.lost
            server.close()
            await server.wait_closed()

    run(loop, main())


def test_ipv6_loopback_connection(any_loop):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    loop = any_loop

    async def main():
        try:
            server = await loop.create_server(lambda: Recorder(loop, echo=True),
                                              "::1", 0)
        except OSError:
            pytest.skip("::1 not available")
        port = server.sockets[0].getsockname()[1]
        tr, pr = await loop.create_connection(lambda: Recorder(loop), "::1", port)
        tr.write(b"v6")
        got = await pr.wait_data(2)
        fam = tr.get_extra_info("socket").family
        peer = tr.get_extra_info("peername")
        tr.close()
        server.close()
        await server.wait_closed()
        return got, fam, peer

    got, fam, peer = run(loop, main())
    assert got == b"v6" and fam == socket.AF_INET6 and peer[0] == "::1"


def test_transport_repr_and_del_of_closed(loop):
    async def main():
        server, port, _ = await _echo_server(loop)
        tr, pr = await loop.create_connection(lambda: Recorder(loop),
                                              "127.0.0.1", port)
        text = repr(tr)
        tr.close()
        await pr.lost
        closed_text = repr(tr)
        server.close()
        await server.wait_closed()
        return text, closed_text

    text, closed_text = run(loop, main())
    assert "fd=" in text and "read=polling" in text
    assert "closed" in closed_text


def test_unused_port_on_all_addresses_combines_errors(any_loop):
    loop = any_loop
    port = _unused_port()
    with pytest.raises(OSError) as info:
        run(loop, loop.create_connection(asyncio.Protocol, "localhost", port,
                                         family=socket.AF_INET))
    text = str(info.value)
    assert ("Connect call failed" in text
            or text.startswith("Multiple exceptions"))


def test_addresses_tried_in_order_until_one_connects(any_loop):
    # the first address refuses, the second accepts: create_connection
    # moves on, with and without happy eyeballs
    loop = any_loop
    dead_port = _unused_port()

    async def main():
        server = await loop.create_server(lambda: Recorder(loop, echo=True),
                                          "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        real_getaddrinfo = loop.getaddrinfo

        async def two_addresses(host, p, **kwargs):
            infos = await real_getaddrinfo("127.0.0.1", port, **kwargs)
            bad = [(f, t, pr, c, ("127.0.0.1", dead_port))
                   for f, t, pr, c, a in infos]
            return bad + infos
        loop.getaddrinfo = two_addresses
        try:
            results = []
            for delay in (None, 0.1):
                tr, pr = await loop.create_connection(
                    lambda: Recorder(loop), "example.invalid", 1,
                    happy_eyeballs_delay=delay)
                results.append(tr.get_extra_info("peername"))
                tr.close()
                await pr.lost
        finally:
            del loop.getaddrinfo
            server.close()
            await server.wait_closed()
        return results, port

    results, port = run(loop, main())
    assert results == [("127.0.0.1", port)] * 2
