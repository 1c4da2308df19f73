"""The idle polls of fdwatch.py: a poll whose last reader/writer is removed
is kept (parked: silenced in epoll, started for libuv) until the guard's
next run, so that the ``sock_*`` methods' remove-then-add-again in one batch of
callbacks reuses it.  Most tests close a socket right after a completed
``sock_recv`` (its poll is idle then) and have the fd number taken over in
the same batch: by a new socket watched again, by a regular file, by a
libuv stream opened on it, by an accepted connection, by a subprocess.
Every handle must keep working and nothing may abort or spin."""
import asyncio
import os
import socket
import sys
import time

import pytest

import uvffi

pytestmark = pytest.mark.skipif(sys.platform == "win32",
                                reason="fd numbers are POSIX here")


@pytest.fixture
def loop():
    loop = uvffi.new_event_loop()
    yield loop
    loop.close()


def _pair():
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    return a, b


async def _recv_then_close(loop):
    """sock_recv on a fresh pair until it had to wait, then close that
    socket: returns its (now free) fd number and the poll left idle."""
    a, b = _pair()
    loop.call_soon(b.send, b"x")
    assert await loop.sock_recv(a, 10) == b"x"
    fd = a.fileno()
    p = loop._fd_watches[fd]
    assert p.idle  # the scenario under test: started, no reader
    a.close()
    b.close()
    return fd, p


def _lowest_free_fd_is(fd):
    probe = os.dup(0)
    os.close(probe)
    return probe == fd


def test_same_socket_rewatched_reuses_the_started_poll(loop):
    a, b = _pair()

    async def main():
        for i in range(20):
            loop.call_soon(b.send, b"%d" % i)
            assert await loop.sock_recv(a, 10) == b"%d" % i
            if i == 0:
                first = loop._fd_watches[a.fileno()]
        assert loop._fd_watches[a.fileno()] is first
    try:
        loop.run_until_complete(main())
    finally:
        a.close()
        b.close()


def test_fd_closed_and_reused_by_socket_between_two_waits(loop):
    async def main():
        fd, old = await _recv_then_close(loop)
        c, d = _pair()
        try:
            if c.fileno() != fd:
                pytest.skip("fd number not reused")
            loop.call_later(0.01, d.send, b"new")
            # the old registration died with the old socket: the new one
            # must be registered afresh, or this waits forever
            got = await asyncio.wait_for(loop.sock_recv(c, 10), 5)
            assert got == b"new"
            assert old.closing  # dropped for a fresh poll on the new socket
        finally:
            c.close()
            d.close()
    loop.run_until_complete(main())


def test_fd_reused_by_regular_file_between_two_waits(loop, tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x")

    async def main():
        fd, _ = await _recv_then_close(loop)
        f = os.open(path, os.O_RDONLY)
        try:
            if f != fd:
                pytest.skip("fd number not reused")
            with pytest.raises(PermissionError):  # as epoll refuses it
                loop.add_reader(f, lambda: None)
            assert loop.remove_reader(f) is False
        finally:
            os.close(f)
        await asyncio.sleep(0)
    loop.run_until_complete(main())


def test_stream_takes_over_fd_number_of_idle_poll(loop):
    async def main():
        fd, old = await _recv_then_close(loop)
        c, d = socket.socketpair()
        # the transport's stream gets a dup of c: make that dup take fd
        if c.fileno() == fd:
            c2 = c.dup()
            c.close()
            c = c2
        if not _lowest_free_fd_is(fd):
            pytest.skip("fd number not reused")
        got = loop.create_future()

        class Proto(asyncio.Protocol):
            def data_received(self, data):
                if not got.done():
                    got.set_result(data)
        tr, _ = await loop.connect_accepted_socket(Proto, c)
        try:
            assert tr.get_extra_info("socket").fileno() != fd
            d.send(b"ping")
            assert await asyncio.wait_for(got, 5) == b"ping"
            assert old.closing
        finally:
            tr.close()
            d.close()
    loop.run_until_complete(main())


def test_accepted_connection_takes_over_fd_number_of_idle_poll(loop):
    received = []

    async def handler(reader, writer):
        received.append(await reader.read(10))
        writer.close()

    async def main():
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            client = socket.socket()
            client.setblocking(False)
            await loop.sock_connect(client, ("127.0.0.1", port))
            fd, _ = await _recv_then_close(loop)
            # the server accepts the connection into the lowest free number
            await loop.sock_sendall(client, b"hello")
            for _ in range(500):
                if received:
                    break
                await asyncio.sleep(0.01)
            assert received == [b"hello"]
            client.close()
        finally:
            server.close()
            await server.wait_closed()
    loop.run_until_complete(main())


@pytest.mark.parametrize("fast_spawn", [True, False])
def test_subprocess_pipe_takes_over_fd_number_of_idle_poll(loop, monkeypatch,
                                                           fast_spawn):
    from uvffi.process import spawn as process
    if fast_spawn and not process.FAST_SPAWN:
        pytest.skip("no posix_spawn path here")
    # uv_spawn opens its stdio pipes without libuv's duplicate-fd check
    monkeypatch.setattr(process, "FAST_SPAWN", fast_spawn)

    async def main():
        await _recv_then_close(loop)
        # no pipes of ours: on this loop's first uv_spawn libuv's own
        # SIGCHLD pipe takes the lowest free numbers
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "pass", stdout=asyncio.subprocess.DEVNULL)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        await _recv_then_close(loop)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "print('out')",
            stdout=asyncio.subprocess.PIPE)
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
        assert out.strip() == b"out"
    loop.run_until_complete(main())


def test_idle_polls_are_closed_by_the_next_iteration(loop):
    async def main():
        fd, p = await _recv_then_close(loop)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert p.closing and fd not in loop._fd_watches
    loop.run_until_complete(main())


def test_closed_fd_whose_file_lives_on_does_not_fire(loop):
    # epoll keys a registration by (file, fd number): had the idle poll
    # kept the closed fd registered, the dup's file would stay in epoll
    # with no fd left to unregister it, and wake the loop forever
    async def main():
        a, b = _pair()
        dup = a.dup()
        try:
            loop.call_soon(b.send, b"x")
            assert await loop.sock_recv(a, 10) == b"x"
            a.close()  # in the same batch: the poll is idle
            b.send(b"more")  # the file behind dup is readable from now on
            cpu = time.process_time()
            await asyncio.sleep(0.3)
            assert time.process_time() - cpu < 0.15  # no busy loop
        finally:
            dup.close()
            b.close()
    loop.run_until_complete(main())


@pytest.mark.parametrize("reuse", ["reader", "transport"])
def test_hung_up_file_behind_a_closed_fd_reaches_no_one(loop, reuse):
    # A parked registration stays in epoll (silenced); if its file outlives
    # the fd and hangs up, epoll reports EPOLLHUP for it whatever the mask.
    # That report must not wake the loop forever, nor reach the next user
    # of the fd number (a spurious reader call, or an EOF on a live stream).
    async def main():
        a, b = _pair()
        dup = a.dup()
        fd = a.fileno()
        try:
            loop.call_soon(b.send, b"x")
            assert await loop.sock_recv(a, 10) == b"x"
            a.close()  # in the same batch: the poll is parked
            b.close()  # the file behind dup hangs up
            c, d = _pair()
            if c.fileno() != fd:
                pytest.skip("fd number not reused")
            calls = []
            if reuse == "reader":
                loop.add_reader(c.fileno(), calls.append, "read")
            else:
                class Proto(asyncio.Protocol):
                    def data_received(self, data):
                        calls.append(("data", data))

                    def eof_received(self):
                        calls.append("eof")
                tr, _ = await loop.connect_accepted_socket(Proto, c)
            cpu = time.process_time()
            await asyncio.sleep(0.3)
            assert time.process_time() - cpu < 0.15  # no busy loop
            assert calls == []  # nothing reached the new user of the number
            d.send(b"live")
            await asyncio.sleep(0.05)
            if reuse == "reader":
                assert calls and set(calls) == {"read"}
                loop.remove_reader(c.fileno())
                c.close()
            else:
                assert calls == [("data", b"live")]
                tr.close()
            d.close()
        finally:
            dup.close()
    loop.run_until_complete(main())


def test_parked_socket_hung_up_then_rewatched_reports_the_hangup(loop):
    # a hang-up that came while parked (reported once, into nothing) is
    # still there for the next sock_recv: EOF, as asyncio gives it
    async def main():
        a, b = _pair()
        try:
            loop.call_soon(b.send, b"x")
            assert await loop.sock_recv(a, 10) == b"x"
            b.close()
            await asyncio.sleep(0)  # an iteration with the poll parked
            assert await asyncio.wait_for(loop.sock_recv(a, 10), 5) == b""
        finally:
            a.close()
    loop.run_until_complete(main())
