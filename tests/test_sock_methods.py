"""loop.sock_* coroutines: same results, exceptions and watcher cleanup as
asyncio's SelectorEventLoop (any_loop runs each scenario on both)."""
import asyncio
import errno
import io
import os
import socket
import ssl
import sys
import time

import pytest

HAS_IPV6 = socket.has_ipv6
try:
    socket.socket(socket.AF_INET6).close()
except OSError:
    HAS_IPV6 = False


def run(loop, coro, timeout=30):
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


def nb(sock):
    sock.setblocking(False)
    return sock


@pytest.fixture
def tcp_pair():
    """A connected, non-blocking TCP pair over 127.0.0.1."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    c = socket.create_connection(srv.getsockname())
    s, _ = srv.accept()
    srv.close()
    nb(c)
    nb(s)
    yield c, s
    c.close()
    s.close()


@pytest.fixture
def listener():
    srv = nb(socket.socket())
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    yield srv
    srv.close()


@pytest.fixture
def udp_pair():
    a = nb(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    b = nb(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    a.bind(("127.0.0.1", 0))
    b.bind(("127.0.0.1", 0))
    yield a, b
    a.close()
    b.close()


def needs(loop, *names):
    """asyncio before 3.11 has no sock_recvfrom/sock_recvfrom_into/sock_sendto."""
    missing = [n for n in names if not hasattr(loop, n)]
    if missing:
        pytest.skip(f"{type(loop).__name__} lacks {missing} on this Python")


def no_watcher(loop, sock):
    """Nothing left registered for the socket's fd."""
    return (loop.remove_reader(sock.fileno()) is False and
            loop.remove_writer(sock.fileno()) is False)


# -- receiving ------------------------------------------------------------------

def test_sock_recv_returns_available_data_immediately(any_loop, tcp_pair):
    c, s = tcp_pair
    c.sendall(b"hello")
    any_loop.run_until_complete(asyncio.sleep(0.01))
    assert run(any_loop, any_loop.sock_recv(s, 100)) == b"hello"


def test_sock_recv_waits_for_data_and_cleans_up_watcher(any_loop, tcp_pair):
    c, s = tcp_pair
    any_loop.call_later(0.05, c.send, b"later")
    assert run(any_loop, any_loop.sock_recv(s, 100)) == b"later"
    assert no_watcher(any_loop, s)


def test_sock_recv_returns_empty_bytes_at_eof(any_loop, tcp_pair):
    c, s = tcp_pair
    any_loop.call_later(0.02, c.shutdown, socket.SHUT_WR)
    assert run(any_loop, any_loop.sock_recv(s, 100)) == b""


def test_sock_recv_into_fills_buffer(any_loop, tcp_pair):
    c, s = tcp_pair
    buf = bytearray(10)
    any_loop.call_later(0.02, c.send, b"abc")
    assert run(any_loop, any_loop.sock_recv_into(s, buf)) == 3
    assert buf[:3] == b"abc"
    assert no_watcher(any_loop, s)


def test_sock_recv_error_raises_connection_reset(any_loop, tcp_pair):
    c, s = tcp_pair
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")

    async def main():
        any_loop.call_later(0.02, c.close)
        return await any_loop.sock_recv(s, 10)

    with pytest.raises(ConnectionResetError):
        run(any_loop, main())
    assert no_watcher(any_loop, s)


@pytest.mark.parametrize("n", [10, 256 * 1024])
def test_sock_recv_reset_raises_connection_reset_for_any_n(any_loop, tcp_pair, n):
    # a large n takes uvffi's own receive (on PyPy, into C memory): its
    # errors are the socket module's
    c, s = tcp_pair
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    c.close()
    time.sleep(0.02)
    with pytest.raises(ConnectionResetError) as info:
        run(any_loop, any_loop.sock_recv(s, n))
    assert info.value.errno == errno.ECONNRESET
    assert no_watcher(any_loop, s)


@pytest.mark.parametrize("n", [10, 256 * 1024])
def test_sock_recv_on_a_closed_socket_raises_bad_file_descriptor(any_loop, tcp_pair, n):
    c, s = tcp_pair
    s.close()
    with pytest.raises(OSError) as info:
        run(any_loop, any_loop.sock_recv(s, n))
    assert info.value.errno == errno.EBADF


def test_sock_recv_with_a_large_n_on_a_socket_with_a_timeout_receives_as_asyncio(any_loop, tcp_pair):
    # outside debug mode asyncio just calls sock.recv(n); uvffi's own
    # receive of a large n (on PyPy into C memory) must not take over a
    # socket that waits in recv(), nor trip over the buffer it left
    c, s = tcp_pair
    c.sendall(b"first")
    time.sleep(0.02)
    assert run(any_loop, any_loop.sock_recv(s, 256 * 1024)) == b"first"
    s.settimeout(5)
    c.sendall(b"second")
    time.sleep(0.02)
    assert run(any_loop, any_loop.sock_recv(s, 256 * 1024)) == b"second"
    s.setblocking(False)
    c.sendall(b"third")
    time.sleep(0.02)
    assert run(any_loop, any_loop.sock_recv(s, 256 * 1024)) == b"third"


@pytest.mark.parametrize("n", [100 * 1024, 256 * 1024, 4 * 1024 * 1024])
def test_sock_recv_with_a_large_n_gives_exactly_what_came(any_loop, tcp_pair, n):
    # (uvffi receives a large n through a buffer kept on the loop)
    c, s = tcp_pair
    chunks = [bytes([i]) * (1000 + i) for i in range(30)]

    async def main():
        got = []
        for chunk in chunks:
            c.sendall(chunk)
            data = b""
            while len(data) < len(chunk):
                data += await any_loop.sock_recv(s, n)
            got.append(data)
        any_loop.call_later(0.01, c.shutdown, socket.SHUT_WR)
        got.append(await any_loop.sock_recv(s, n))
        return got

    got = run(any_loop, main())
    assert got == chunks + [b""]
    assert all(type(g) is bytes for g in got)
    assert no_watcher(any_loop, s)


def test_sock_recv_calls_a_socket_subclass_own_recv(any_loop):
    calls = []

    class Recording(socket.socket):
        def recv(self, n, *args):
            calls.append(n)
            return super().recv(n, *args)

    a, b = socket.socketpair()
    r = Recording(a.family, a.type, fileno=a.detach())
    r.setblocking(False)
    try:
        any_loop.call_later(0.02, b.send, b"sub")
        assert run(any_loop, any_loop.sock_recv(r, 256 * 1024)) == b"sub"
        assert calls and set(calls) == {256 * 1024}
    finally:
        r.close()
        b.close()


def test_sock_recvfrom_returns_datagram_and_address(any_loop, udp_pair):
    needs(any_loop, "sock_recvfrom")
    a, b = udp_pair
    any_loop.call_later(0.02, b.sendto, b"dgram", a.getsockname())
    data, addr = run(any_loop, any_loop.sock_recvfrom(a, 100))
    assert data == b"dgram" and addr == b.getsockname()
    assert no_watcher(any_loop, a)


def test_sock_recvfrom_into_respects_nbytes(any_loop, udp_pair):
    needs(any_loop, "sock_recvfrom_into")
    a, b = udp_pair
    buf = bytearray(10)
    any_loop.call_later(0.02, b.sendto, b"0123456789", a.getsockname())
    n, addr = run(any_loop, any_loop.sock_recvfrom_into(a, buf, 4))
    assert n == 4 and buf[:4] == b"0123" and addr == b.getsockname()


def test_sock_recvfrom_into_defaults_to_whole_buffer(any_loop, udp_pair):
    needs(any_loop, "sock_recvfrom_into")
    a, b = udp_pair
    buf = bytearray(6)
    b.sendto(b"abcdef", a.getsockname())
    n, _ = run(any_loop, any_loop.sock_recvfrom_into(a, buf))
    assert (n, bytes(buf)) == (6, b"abcdef")


# -- sending -------------------------------------------------------------------

def test_sock_sendto_sends_datagram(any_loop, udp_pair):
    needs(any_loop, "sock_sendto", "sock_recvfrom")
    a, b = udp_pair
    assert run(any_loop, any_loop.sock_sendto(a, b"to-b", b.getsockname())) == 4
    assert run(any_loop, any_loop.sock_recvfrom(b, 100)) == (b"to-b", a.getsockname())


def test_sock_sendto_waits_on_a_mock_with_a_sockets_spec(any_loop, udp_pair):
    # CPython's test_sock_lowlevel.test_sendto_blocking: the first sendto()
    # of a Mock(sock) raises BlockingIOError, so the call waits; the loop
    # must not take the stand-in's attributes (_io_refs...) for a socket's
    from unittest.mock import Mock
    needs(any_loop, "sock_sendto", "sock_recvfrom")
    a, b = udp_pair
    stand_in = Mock(a)
    stand_in.gettimeout = a.gettimeout
    stand_in.fileno = a.fileno
    stand_in.sendto.configure_mock(side_effect=BlockingIOError)

    async def send():
        # the real sendto comes back after the first try
        any_loop.call_soon(setattr, stand_in, "sendto", a.sendto)
        return await any_loop.sock_sendto(stand_in, b"late", b.getsockname())
    assert run(any_loop, send()) == 4
    assert run(any_loop, any_loop.sock_recvfrom(b, 100)) == (b"late", a.getsockname())


def test_sock_sendto_unresolvable_address_raises(any_loop, udp_pair):
    needs(any_loop, "sock_sendto")
    a, _ = udp_pair
    with pytest.raises(socket.gaierror):
        run(any_loop, any_loop.sock_sendto(a, b"x", ("nonexistent.invalid", 9)))


def test_sock_sendall_large_payload_waits_for_reader(any_loop, tcp_pair):
    c, s = tcp_pair
    payload = os.urandom(4 * 1024 * 1024)

    async def reader():
        chunks, n = [], 0
        while n < len(payload):
            d = await any_loop.sock_recv(s, 1 << 16)
            chunks.append(d)
            n += len(d)
        return b"".join(chunks)

    async def main():
        rtask = asyncio.ensure_future(reader())
        assert await any_loop.sock_sendall(c, payload) is None
        return await rtask

    assert run(any_loop, main()) == payload
    assert no_watcher(any_loop, c) and no_watcher(any_loop, s)


def test_sock_sendall_accepts_memoryview_and_bytearray(any_loop, tcp_pair):
    c, s = tcp_pair
    run(any_loop, any_loop.sock_sendall(c, memoryview(b"mv")))
    run(any_loop, any_loop.sock_sendall(c, bytearray(b"ba")))
    any_loop.run_until_complete(asyncio.sleep(0.01))
    assert run(any_loop, any_loop.sock_recv(s, 10)) == b"mvba"


def test_sock_sendall_to_reset_peer_raises(any_loop, tcp_pair):
    c, s = tcp_pair
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()

    async def main():
        for _ in range(100):
            await any_loop.sock_sendall(c, b"x" * 65536)
            await asyncio.sleep(0.001)

    with pytest.raises((BrokenPipeError, ConnectionResetError)):
        run(any_loop, main())


# -- connect / accept ---------------------------------------------------------------

def test_sock_connect_and_accept(any_loop, listener):
    c = nb(socket.socket())

    async def main():
        acc = asyncio.ensure_future(any_loop.sock_accept(listener))
        await any_loop.sock_connect(c, listener.getsockname())
        return await acc

    try:
        conn, addr = run(any_loop, main())
        assert addr == c.getsockname()
        assert conn.gettimeout() == 0  # accepted socket is non-blocking
        conn.close()
        assert no_watcher(any_loop, listener) and no_watcher(any_loop, c)
    finally:
        c.close()


def test_sock_connect_resolves_hostname_through_loop(any_loop, listener):
    c = nb(socket.socket())
    port = listener.getsockname()[1]
    calls = []
    orig = any_loop.getaddrinfo

    async def spy(*args, **kwargs):
        calls.append(args)
        return await orig(*args, **kwargs)

    any_loop.getaddrinfo = spy
    try:
        run(any_loop, any_loop.sock_connect(c, ("localhost", port)))
        assert c.getpeername() == ("127.0.0.1", port)
        assert calls and calls[0][:2] == ("localhost", port)
    finally:
        c.close()


def test_sock_connect_numeric_address_skips_resolver(any_loop, listener):
    c = nb(socket.socket())

    async def fail(*args, **kwargs):
        raise AssertionError("resolver called")

    any_loop.getaddrinfo = fail
    try:
        run(any_loop, any_loop.sock_connect(c, listener.getsockname()))
    finally:
        c.close()


@pytest.mark.skipif(not HAS_IPV6, reason="no IPv6")
def test_sock_connect_ipv6_loopback(any_loop):
    srv = nb(socket.socket(socket.AF_INET6))
    c = nb(socket.socket(socket.AF_INET6))
    try:
        srv.bind(("::1", 0))
        srv.listen()

        async def main():
            acc = asyncio.ensure_future(any_loop.sock_accept(srv))
            await any_loop.sock_connect(c, srv.getsockname()[:2])
            conn, addr = await acc
            conn.close()
            return addr

        addr = run(any_loop, main())
        assert addr[:2] == c.getsockname()[:2]
    finally:
        srv.close()
        c.close()


def test_sock_connect_refused_raises_with_asyncio_message(any_loop):
    # a port that was just free: nobody listens there
    tmp = socket.socket()
    tmp.bind(("127.0.0.1", 0))
    addr = tmp.getsockname()
    tmp.close()
    c = nb(socket.socket())
    try:
        with pytest.raises(ConnectionRefusedError) as ei:
            run(any_loop, any_loop.sock_connect(c, addr))
        assert str(ei.value) == f"[Errno 111] Connect call failed {addr}" or \
            sys.platform != "linux"
        assert no_watcher(any_loop, c)
    finally:
        c.close()


def test_sock_connect_unresolvable_host_raises_gaierror(any_loop):
    c = nb(socket.socket())
    try:
        with pytest.raises(socket.gaierror) as ei:
            run(any_loop, any_loop.sock_connect(c, ("nonexistent.invalid", 80)))
        with pytest.raises(socket.gaierror) as ref:
            socket.getaddrinfo("nonexistent.invalid", 80, type=socket.SOCK_STREAM)
        assert ei.value.errno == ref.value.errno
    finally:
        c.close()


def test_sock_connect_udp_sets_default_peer(any_loop, udp_pair):
    a, b = udp_pair
    run(any_loop, any_loop.sock_connect(a, b.getsockname()))
    assert a.getpeername() == b.getsockname()


# -- argument checks ------------------------------------------------------------

def _all_calls(loop, sock):
    buf = bytearray(4)
    calls = [
        loop.sock_recv(sock, 1), loop.sock_recv_into(sock, buf),
        loop.sock_sendall(sock, b"x"),
        loop.sock_connect(sock, ("127.0.0.1", 9)), loop.sock_accept(sock),
    ]
    if hasattr(loop, "sock_sendto"):  # asyncio >= 3.11
        calls += [loop.sock_recvfrom(sock, 1), loop.sock_recvfrom_into(sock, buf),
                  loop.sock_sendto(sock, b"x", ("127.0.0.1", 9))]
    return calls


def test_blocking_socket_raises_value_error_in_debug_mode(any_loop):
    any_loop.set_debug(True)
    sock = socket.socket()
    try:
        for coro in _all_calls(any_loop, sock):
            with pytest.raises(ValueError) as ei:
                any_loop.run_until_complete(coro)
            assert str(ei.value) == "the socket must be non-blocking"
        with pytest.raises(ValueError, match="non-blocking"):
            any_loop.run_until_complete(any_loop.sock_sendfile(sock, io.BytesIO(b"")))
    finally:
        sock.close()


def test_ssl_socket_is_rejected_with_type_error(any_loop):
    ctx = ssl.create_default_context()
    sock = ctx.wrap_socket(socket.socket(), server_hostname="example",
                           do_handshake_on_connect=False)
    sock.setblocking(False)
    try:
        for coro in _all_calls(any_loop, sock):
            with pytest.raises(TypeError) as ei:
                any_loop.run_until_complete(coro)
            assert str(ei.value) == "Socket cannot be of type SSLSocket"
    finally:
        sock.close()


def test_socket_of_a_transport_is_refused_when_waiting(any_loop, tcp_pair):
    c, s = tcp_pair

    class Tr:
        def is_closing(self):
            return False

    tr = Tr()
    any_loop._transports[s.fileno()] = tr
    with pytest.raises(RuntimeError, match="is used by transport"):
        run(any_loop, any_loop.sock_recv(s, 10))
    del any_loop._transports[s.fileno()]


# -- cancellation: no stale watcher ------------------------------------------

@pytest.mark.parametrize("method", ["recv", "recv_into", "accept", "recvfrom"])
def test_cancelled_read_leaves_no_watcher(any_loop, tcp_pair, listener, udp_pair, method):
    if method == "recvfrom":
        needs(any_loop, "sock_recvfrom")
    c, s = tcp_pair
    sock, coro = {
        "recv": (s, lambda: any_loop.sock_recv(s, 10)),
        "recv_into": (s, lambda: any_loop.sock_recv_into(s, bytearray(10))),
        "accept": (listener, lambda: any_loop.sock_accept(listener)),
        "recvfrom": (udp_pair[0], lambda: any_loop.sock_recvfrom(udp_pair[0], 10)),
    }[method]

    async def main():
        t = asyncio.ensure_future(coro())
        await asyncio.sleep(0.02)
        assert not t.done()
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t

    run(any_loop, main())
    assert no_watcher(any_loop, sock)


def test_recv_after_cancelled_recv_gets_the_data(any_loop, tcp_pair):
    c, s = tcp_pair

    async def main():
        t = asyncio.ensure_future(any_loop.sock_recv(s, 10))
        await asyncio.sleep(0.01)
        t.cancel()
        any_loop.call_later(0.02, c.send, b"second")
        return await any_loop.sock_recv(s, 10)

    assert run(any_loop, main()) == b"second"
    assert no_watcher(any_loop, s)


def test_cancelled_sendall_leaves_no_watcher(any_loop, tcp_pair):
    c, s = tcp_pair

    async def main():
        t = asyncio.ensure_future(any_loop.sock_sendall(c, b"x" * (64 << 20)))
        await asyncio.sleep(0.05)
        assert not t.done()  # nobody reads: the kernel buffers are full
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t

    run(any_loop, main())
    assert no_watcher(any_loop, c)


def test_cancelled_connect_leaves_no_watcher(any_loop, listener):
    c = nb(socket.socket())

    async def main():
        t = asyncio.ensure_future(any_loop.sock_connect(c, listener.getsockname()))
        await asyncio.sleep(0)  # connect() issued, waiting for writability
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t

    try:
        run(any_loop, main())
        assert no_watcher(any_loop, c)
    finally:
        c.close()


# -- sendfile ---------------------------------------------------------------------

@pytest.fixture
def data_file(tmp_path):
    data = os.urandom(300_000)
    path = tmp_path / "blob"
    path.write_bytes(data)
    with open(path, "rb") as f:
        yield f, data


def _sendfile_and_read(loop, c, s, coro, expected_len):
    async def main():
        t = asyncio.ensure_future(coro)
        chunks, n = [], 0
        while n < expected_len:
            d = await loop.sock_recv(s, 1 << 16)
            if not d:
                break
            chunks.append(d)
            n += len(d)
        return await t, b"".join(chunks)

    return run(loop, main())


def test_sock_sendfile_sends_whole_file_and_moves_file_position(any_loop, tcp_pair, data_file):
    c, s = tcp_pair
    f, data = data_file
    sent, got = _sendfile_and_read(any_loop, c, s, any_loop.sock_sendfile(c, f), len(data))
    assert sent == len(data) and got == data
    assert f.tell() == len(data)
    assert no_watcher(any_loop, c)


def test_sock_sendfile_offset_and_count(any_loop, tcp_pair, data_file):
    c, s = tcp_pair
    f, data = data_file
    sent, got = _sendfile_and_read(any_loop, c, s,
                                   any_loop.sock_sendfile(c, f, 1000, 5000), 5000)
    assert sent == 5000 and got == data[1000:6000]
    assert f.tell() == 6000


def test_sock_sendfile_native_path_uses_os_sendfile(loop, tcp_pair, data_file, monkeypatch):
    if not hasattr(os, "sendfile"):
        pytest.skip("no os.sendfile")
    c, s = tcp_pair
    f, data = data_file
    calls = []
    real = os.sendfile

    def spy(*args):
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(os, "sendfile", spy)
    sent, got = _sendfile_and_read(loop, c, s,
                                   loop.sock_sendfile(c, f, fallback=False), len(data))
    assert sent == len(data) and got == data and calls


def test_sock_sendfile_empty_file_returns_zero(any_loop, tcp_pair, tmp_path):
    c, _ = tcp_pair
    path = tmp_path / "empty"
    path.write_bytes(b"")
    with open(path, "rb") as f:
        assert run(any_loop, any_loop.sock_sendfile(c, f, fallback=False)) == 0


def test_sock_sendfile_non_regular_file_without_fallback_raises(any_loop, tcp_pair):
    c, _ = tcp_pair
    with pytest.raises(asyncio.SendfileNotAvailableError):
        run(any_loop, any_loop.sock_sendfile(c, io.BytesIO(b"data"), fallback=False))


def test_sock_sendfile_non_regular_file_falls_back(any_loop, tcp_pair):
    c, s = tcp_pair
    sent, got = _sendfile_and_read(any_loop, c, s,
                                   any_loop.sock_sendfile(c, io.BytesIO(b"fallback!")), 9)
    assert (sent, got) == (9, b"fallback!")


def test_sock_sendfile_argument_errors_match_asyncio(any_loop, tcp_pair, udp_pair, data_file, tmp_path):
    c, _ = tcp_pair
    f, _ = data_file
    text = tmp_path / "t.txt"
    text.write_text("x")
    with open(text, "r") as tf:
        with pytest.raises(ValueError, match="binary mode"):
            run(any_loop, any_loop.sock_sendfile(c, tf))
    with pytest.raises(ValueError, match="only SOCK_STREAM"):
        run(any_loop, any_loop.sock_sendfile(udp_pair[0], f))
    for bad, exc in ((0, ValueError), (-1, ValueError), ("1", TypeError)):
        with pytest.raises(exc, match="count must be a positive integer"):
            run(any_loop, any_loop.sock_sendfile(c, f, 0, bad))
    with pytest.raises(ValueError, match="offset must be a non-negative integer"):
        run(any_loop, any_loop.sock_sendfile(c, f, -1))


def test_cancelled_sock_sendfile_leaves_no_watcher(any_loop, tcp_pair, tmp_path):
    c, _ = tcp_pair
    path = tmp_path / "big"
    with open(path, "wb") as out:
        out.truncate(64 << 20)  # sparse: big but cheap

    async def main(f):
        t = asyncio.ensure_future(any_loop.sock_sendfile(c, f))
        await asyncio.sleep(0.05)
        assert not t.done()  # nobody reads
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t

    with open(path, "rb") as f:
        run(any_loop, main(f))
    assert no_watcher(any_loop, c)


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no AF_UNIX")
def test_sock_connect_and_accept_unix_socket_without_resolution(any_loop, tmp_path):
    path = str(tmp_path / "s.sock")
    srv = nb(socket.socket(socket.AF_UNIX))
    c = nb(socket.socket(socket.AF_UNIX))
    try:
        srv.bind(path)
        srv.listen()

        async def main():
            acc = asyncio.ensure_future(any_loop.sock_accept(srv))
            await any_loop.sock_connect(c, path)
            conn, _ = await acc
            await any_loop.sock_sendall(c, b"unix")
            data = await any_loop.sock_recv(conn, 10)
            conn.close()
            return data

        assert run(any_loop, main()) == b"unix"
    finally:
        srv.close()
        c.close()


# -- the socket method is looked up on every try --------------------------------

def test_sock_sendto_retries_call_the_sockets_current_sendto(any_loop, udp_pair):
    # CPython's test_sendto_blocking: a mock whose sendto would block for
    # ever is given the real sendto while the call waits; asyncio looks the
    # method up again on each try (uvffi used to keep the first one: a hang)
    from unittest import mock
    needs(any_loop, "sock_sendto", "sock_recvfrom")
    a, b = udp_pair
    fake = mock.Mock(a)
    fake.gettimeout = a.gettimeout
    fake.fileno = a.fileno
    fake.sendto.configure_mock(side_effect=BlockingIOError)
    any_loop.call_soon(lambda: setattr(fake, "sendto", a.sendto))

    async def main():
        assert await any_loop.sock_sendto(fake, b"x" * 100, b.getsockname()) == 100
        return await any_loop.sock_recvfrom(b, 4096)

    data, addr = run(any_loop, main())
    assert data == b"x" * 100 and addr == a.getsockname()


def test_sock_recv_retries_call_the_sockets_current_recv(any_loop, tcp_pair):
    from unittest import mock
    c, s = tcp_pair
    fake = mock.Mock(s)
    fake.gettimeout = s.gettimeout
    fake.fileno = s.fileno
    fake.recv.configure_mock(side_effect=BlockingIOError)

    def swap():
        fake.recv = s.recv
        c.send(b"ping")
    any_loop.call_soon(swap)
    assert run(any_loop, any_loop.sock_recv(fake, 1024)) == b"ping"
