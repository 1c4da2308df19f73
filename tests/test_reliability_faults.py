"""Faults: peers that reset mid-write, half-close or vanish during the TLS
handshake; a reader that stops reading; connects that are refused or hang;
cancellation at random points.  After each, nothing of the loop is left
behind (libuv handles and requests back to the baseline) and no callback
runs after a cancellation.  Only loopback addresses are used: a hanging
connect is made with a listening socket whose backlog is full."""
import asyncio
import random
import socket
import ssl
import struct
import sys

import pytest

from _netutil import client_ssl_context, server_ssl_context
from _reliability import live_handles, rss_kib, settle

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def _rst_close(sock):
    """Close *sock* so that the kernel sends RST, not FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _baseline(loop):
    """Handle count of a loop that has run and watched an fd once: the
    signal wake-up poll and the fd-watch guard (a uv_prepare_t) are made on
    first use and kept for the loop's life."""
    a, b = socket.socketpair()
    loop.add_reader(a.fileno(), lambda: None)
    settle(loop, 0)
    loop.remove_reader(a.fileno())
    a.close()
    b.close()
    settle(loop, 0)
    return live_handles(loop)


def _assert_back_to(loop, baseline, seconds=2.0):
    """Handles and requests drain back to *baseline* (close callbacks and
    in-flight resolver work may need a few iterations)."""
    if not hasattr(loop, "_uv_handles"):
        return
    for _ in range(int(seconds / 0.01)):
        if live_handles(loop) <= baseline:
            break
        settle(loop, 0.01)
    assert live_handles(loop) <= baseline, (loop._uv_handles, loop._uv_requests)


class Flood(asyncio.Protocol):
    """Writes until paused, then again on resume; records the end."""

    def __init__(self, loop, chunk=b"x" * 65536, limit=None):
        self.loop = loop
        self.chunk = chunk
        self.limit = limit
        self.written = 0
        self.paused = False
        self.pauses = 0
        self.lost = loop.create_future()

    def connection_made(self, tr):
        self.tr = tr
        self._pump()

    def _pump(self):
        while not self.paused and not self.tr.is_closing():
            if self.limit is not None and self.written >= self.limit:
                return
            self.tr.write(self.chunk)
            self.written += len(self.chunk)

    def pause_writing(self):
        self.paused = True
        self.pauses += 1

    def resume_writing(self):
        self.paused = False
        self.loop.call_soon(self._pump)

    def connection_lost(self, exc):
        if not self.lost.done():
            self.lost.set_result(exc)


def test_peer_reset_mid_write_loses_the_connection_cleanly(any_loop):
    loop = any_loop
    base = _baseline(loop) if hasattr(loop, "_uv_handles") else None

    async def main():
        floods = []

        def factory():
            p = Flood(loop)
            floods.append(p)
            return p
        srv = await loop.create_server(factory, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        for _ in range(10):
            c = socket.socket()
            c.setblocking(False)
            await loop.sock_connect(c, ("127.0.0.1", port))
            await loop.sock_recv(c, 1000)  # the server is writing now
            await asyncio.sleep(0.01)
            _rst_close(c)
        results = [await asyncio.wait_for(p.lost, 10) for p in floods]
        srv.close()
        await srv.wait_closed()
        return results

    results = loop.run_until_complete(main())
    assert len(results) == 10
    for exc in results:
        assert exc is None or isinstance(exc, (ConnectionResetError, BrokenPipeError)), exc
    if base is not None:
        _assert_back_to(loop, base)


def test_half_close_then_reply_then_close(any_loop):
    loop = any_loop

    class HalfServer(asyncio.Protocol):
        def connection_made(self, tr):
            self.tr = tr
            self.data = b""

        def data_received(self, data):
            self.data += data

        def eof_received(self):
            self.tr.write(b"got:" + self.data)
            self.tr.close()
            return True

    async def main():
        srv = await loop.create_server(HalfServer, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        out = []
        for n in range(20):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"hello %d" % n)
            writer.write_eof()
            out.append(await asyncio.wait_for(reader.read(), 10))
            writer.close()
            await writer.wait_closed()
        srv.close()
        await srv.wait_closed()
        return out

    out = loop.run_until_complete(main())
    assert out == [b"got:hello %d" % n for n in range(20)]


@pytest.mark.parametrize("how", ["silent_close", "reset", "garbage", "partial_hello"])
def test_peer_vanishing_during_tls_handshake_leaves_server_serving(any_loop, how):
    loop = any_loop
    reported = []
    loop.set_exception_handler(lambda lp, ctx: reported.append(ctx))

    class Echo(asyncio.Protocol):
        def connection_made(self, tr):
            self.tr = tr

        def data_received(self, data):
            self.tr.write(data)

    async def main():
        srv = await loop.create_server(Echo, "127.0.0.1", 0, ssl=server_ssl_context(),
                                       ssl_handshake_timeout=5)
        port = srv.sockets[0].getsockname()[1]
        for _ in range(5):
            raw = socket.socket()
            raw.setblocking(False)
            await loop.sock_connect(raw, ("127.0.0.1", port))
            if how == "garbage":
                await loop.sock_sendall(raw, b"\x16\x03\x01\x00\x05hello-this-is-not-tls")
            elif how == "partial_hello":
                # the start of a ClientHello record announcing 512 bytes
                await loop.sock_sendall(raw, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
            await asyncio.sleep(0.01)
            if how == "reset":
                _rst_close(raw)
            else:
                raw.close()
        # a proper client is still served
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_ssl_context(), server_hostname="localhost",
            ssl_handshake_timeout=5)
        writer.write(b"still here")
        got = await asyncio.wait_for(reader.readexactly(10), 10)
        writer.close()
        try:
            await writer.wait_closed()
        except (ssl.SSLError, ConnectionError):
            pass
        srv.close()
        await srv.wait_closed()
        return got

    assert loop.run_until_complete(asyncio.wait_for(main(), 30)) == b"still here"


def test_tls_client_whose_server_vanishes_mid_handshake_gets_an_error(any_loop):
    loop = any_loop

    async def main():
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(8)
        lsock.setblocking(False)
        port = lsock.getsockname()[1]

        async def vanish():
            for _ in range(3):
                conn, _ = await loop.sock_accept(lsock)
                conn.setblocking(False)
                await loop.sock_recv(conn, 10)  # the ClientHello started
                _rst_close(conn)
        killer = loop.create_task(vanish())
        errors = []
        for _ in range(3):
            try:
                await loop.create_connection(asyncio.Protocol, "127.0.0.1", port,
                                             ssl=client_ssl_context(),
                                             server_hostname="localhost",
                                             ssl_handshake_timeout=5)
            except (OSError, ssl.SSLError) as exc:
                errors.append(exc)
        await killer
        lsock.close()
        return errors

    errors = loop.run_until_complete(asyncio.wait_for(main(), 30))
    assert len(errors) == 3
    assert all(isinstance(e, (ConnectionError, ssl.SSLError)) for e in errors), errors


def test_reader_that_stops_reading_pauses_the_writer_and_bounds_memory(any_loop):
    loop = any_loop
    limit = 256 * 1024 * 1024  # would be written without flow control

    stalled = []

    class Stalled(asyncio.Protocol):
        def connection_made(self, tr):
            # call_soon: asyncio 3.9's transport starts reading after
            # connection_made and would undo a pause made in it
            asyncio.get_running_loop().call_soon(tr.pause_reading)
            self.tr = tr
            stalled.append(tr)

    async def main():
        srv = await loop.create_server(Stalled, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        rss0 = rss_kib()
        tr, pr = await loop.create_connection(lambda: Flood(loop, limit=limit),
                                              "127.0.0.1", port)
        for _ in range(500):
            if pr.paused:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # a stalled peer: nothing more may be buffered
        buffered = tr.get_write_buffer_size()
        written, paused = pr.written, pr.paused
        rss1 = rss_kib()
        tr.abort()
        for server_side in stalled:  # Server.wait_closed() waits for it (3.12+)
            server_side.abort()
        srv.close()
        await srv.wait_closed()
        return paused, written, buffered, rss1 - rss0

    paused, written, buffered, grown_kib = loop.run_until_complete(main())
    print("stalled reader: written %d KiB, buffered %d KiB, RSS +%d KiB"
          % (written // 1024, buffered // 1024, grown_kib))
    assert paused
    assert written < 64 * 1024 * 1024  # the kernel's buffers, not the limit
    assert buffered < 1024 * 1024
    assert grown_kib < 64 * 1024


def test_connect_to_a_closed_port_is_refused(any_loop):
    loop = any_loop
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # bound then closed: nobody listens there

    async def main():
        outcomes = []
        for _ in range(20):
            try:
                await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
            except OSError as exc:
                outcomes.append(type(exc))
            c = socket.socket()
            c.setblocking(False)
            try:
                await loop.sock_connect(c, ("127.0.0.1", port))
            except OSError as exc:
                outcomes.append(type(exc))
            finally:
                c.close()
        return outcomes

    base = _baseline(loop) if hasattr(loop, "_uv_handles") else None
    outcomes = loop.run_until_complete(main())
    assert outcomes == [ConnectionRefusedError] * 40
    if base is not None:
        _assert_back_to(loop, base)


def _full_backlog_listener():
    """A loopback listener that accepts nothing and whose queue is full, so
    that one more connect hangs in SYN_SENT (the kernel drops its SYNs):
    an "unroutable" peer without leaving the machine."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(0)
    port = lsock.getsockname()[1]
    fillers = []
    for _ in range(8):
        c = socket.socket()
        c.setblocking(False)
        try:
            c.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(c)
    return lsock, port, fillers


def test_connect_that_hangs_times_out_and_leaves_nothing(any_loop):
    loop = any_loop
    lsock, port, fillers = _full_backlog_listener()
    base = _baseline(loop) if hasattr(loop, "_uv_handles") else None
    try:
        async def main():
            n = 0
            for _ in range(3):
                try:
                    await asyncio.wait_for(loop.create_connection(
                        asyncio.Protocol, "127.0.0.1", port), 0.2)
                except asyncio.TimeoutError:
                    n += 1
            return n
        timed_out = loop.run_until_complete(main())
    finally:
        for c in fillers:
            c.close()
        lsock.close()
    assert timed_out == 3
    if base is not None:
        _assert_back_to(loop, base)


# -- cancellation at random points ------------------------------------------------

def _cancel_at_random_points(loop, make, rounds, after=None, seed=9):
    """Start *make()* as a task, cancel it after a random number of loop
    iterations (0 = before it ever ran), and check nothing is left."""
    rng = random.Random(seed)
    base = _baseline(loop)
    outcomes = {"cancelled": 0, "finished": 0}
    for _ in range(rounds):
        async def one():
            task = loop.create_task(make())
            for _ in range(rng.randrange(0, 6)):
                await asyncio.sleep(0)
            task.cancel()
            try:
                await task
                outcomes["finished"] += 1
            except asyncio.CancelledError:
                outcomes["cancelled"] += 1
            except OSError:
                outcomes["finished"] += 1
            if after is not None:
                await after()
        loop.run_until_complete(asyncio.wait_for(one(), 10))
    _assert_back_to(loop, base, seconds=5)
    return outcomes


def test_cancelled_sleeps_leave_no_timer(loop):
    out = _cancel_at_random_points(loop, lambda: asyncio.sleep(rng_delay()), 200)
    assert out["cancelled"] + out["finished"] == 200
    settle(loop)
    assert all(h.cancelled() for h in _live_timers(loop))


def rng_delay(_r=random.Random(3)):
    return _r.choice([0, 0.0001, 0.001, 10])


def _live_timers(loop):
    return list(loop._scheduled)


def test_cancelled_getaddrinfo_leaves_no_request(loop):
    out = _cancel_at_random_points(
        loop, lambda: loop.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM), 100)
    assert out["cancelled"] + out["finished"] == 100


def test_cancelled_sock_recv_consumes_nothing_after_cancel(loop):
    a, b = socket.socketpair()
    a.setblocking(False)
    try:
        def check_nothing_consumed():
            async def after():
                b.send(b"Z")
                await asyncio.sleep(0.002)
                # the cancelled recv must not have taken the byte
                assert await loop.sock_recv(a, 10) == b"Z"
            return after()
        out = _cancel_at_random_points(loop, lambda: loop.sock_recv(a, 10), 100,
                                       after=check_nothing_consumed)
        assert out["cancelled"] == 100
        assert loop._fd_watches is None or a.fileno() not in loop._fd_watches
    finally:
        a.close()
        b.close()


def test_cancelled_connects_leave_no_handle_or_fd(loop):
    lsock, port, fillers = _full_backlog_listener()
    try:
        out = _cancel_at_random_points(
            loop, lambda: loop.create_connection(asyncio.Protocol, "127.0.0.1", port), 60)
        assert out["cancelled"] == 60
    finally:
        for c in fillers:
            c.close()
        lsock.close()


def test_cancelled_subprocess_waits_leave_no_handle(loop):
    async def start_and_wait():
        p = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "import sys; sys.stdin.read()",
            stdin=asyncio.subprocess.PIPE)
        try:
            return await p.wait()
        finally:
            # a cancelled wait leaves the child running: reap it, so that
            # the handle count can be compared afterwards
            if p.returncode is None:
                p.kill()
                await p.wait()

    out = _cancel_at_random_points(loop, start_and_wait, 8)
    assert out["cancelled"] == 8
