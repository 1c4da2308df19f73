"""A socket closed while a loop.sock_* call waits on it: no hang, no watch
left on a closed fd.

uvffi holds the socket's fd while the call waits (as uvloop does): a
``sock.close()`` meanwhile is deferred until the call finishes, so the call
completes when the kernel gets ready, or ends with CancelledError when
cancelled, and the fd is closed right after.  asyncio 3.11's loop closes
the fd at once and the waiting call never finishes by itself (epoll forgets
the closed fd): those scenarios run on uvffi only.  Cancellation and
``loop.close()`` behave alike on both loops and run on both.
"""
import asyncio
import gc
import socket

import pytest

WAIT = 10  # seconds any single wait below may take before the test fails


async def within(aw, what):
    try:
        return await asyncio.wait_for(aw, WAIT)
    except asyncio.TimeoutError:
        pytest.fail("timed out after %ss waiting for %s" % (WAIT, what))


def run(loop, coro):
    return loop.run_until_complete(coro)


def nb(sock):
    sock.setblocking(False)
    return sock


async def until_waiting(fut, what):
    """Let the call reach its wait (it found nothing ready)."""
    for _ in range(3):
        await asyncio.sleep(0)
    assert not fut.done(), "%s did not wait: %r" % (what, fut)


def fill(sock):
    """Send until the kernel buffer is full."""
    chunk = b"x" * 65536
    sent = 0
    while True:
        try:
            sent += sock.send(chunk)
        except BlockingIOError:
            return sent


def drain(sock):
    got = 0
    while True:
        try:
            data = sock.recv(1 << 20)
        except BlockingIOError:
            return got
        if not data:
            return got
        got += len(data)


@pytest.fixture
def stream_pair():
    a, b = socket.socketpair()
    nb(a)
    nb(b)
    yield a, b
    a.close()
    b.close()


@pytest.fixture
def dgram_pair(tmp_path):
    """Two bound AF_UNIX datagram sockets (a full receive queue makes
    sendto wait, unlike UDP which drops)."""
    a = nb(socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM))
    b = nb(socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM))
    a.bind(str(tmp_path / "a"))
    b.bind(str(tmp_path / "b"))
    yield a, b
    a.close()
    b.close()


@pytest.fixture
def listener():
    srv = nb(socket.socket())
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    yield srv
    srv.close()


# -- each call: close while it waits, then the kernel gets ready --------------
# (uvffi only: on asyncio 3.11 these waits never end)

async def _recv(loop, a, b):
    fut = asyncio.ensure_future(loop.sock_recv(a, 10))
    return fut, lambda: b.send(b"helo"), b"helo"


async def _recv_into(loop, a, b):
    buf = bytearray(10)
    fut = asyncio.ensure_future(loop.sock_recv_into(a, buf))
    return fut, lambda: b.send(b"helo"), 4


async def _recvfrom(loop, a, b):
    fut = asyncio.ensure_future(loop.sock_recvfrom(a, 10))
    return fut, lambda: b.sendto(b"helo", a.getsockname()), \
        (b"helo", b.getsockname())


async def _recvfrom_into(loop, a, b):
    buf = bytearray(10)
    fut = asyncio.ensure_future(loop.sock_recvfrom_into(a, buf))
    return fut, lambda: b.sendto(b"helo", a.getsockname()), \
        (4, b.getsockname())


async def _sendall(loop, a, b):
    fill(a)
    fut = asyncio.ensure_future(loop.sock_sendall(a, b"y" * (4 << 20)))

    def ready():
        # the peer reads until everything went through
        drain(b)
        if not fut.done():
            loop.call_later(0.001, ready)
    return fut, ready, None


async def _sendto(loop, a, b):
    dest = b.getsockname()
    while True:  # fill b's receive queue
        try:
            a.sendto(b"z" * 1024, dest)
        except BlockingIOError:
            break
    fut = asyncio.ensure_future(loop.sock_sendto(a, b"last", dest))
    return fut, lambda: drain(b), 4


WAITERS = {
    "recv": ("stream", _recv),
    "recv_into": ("stream", _recv_into),
    "recvfrom": ("dgram", _recvfrom),
    "recvfrom_into": ("dgram", _recvfrom_into),
    "sendall": ("stream", _sendall),
    "sendto": ("dgram", _sendto),
}


@pytest.mark.parametrize("name", sorted(WAITERS))
def test_close_while_waiting_defers_the_close_until_the_call_ends(
        loop, request, name):
    kind, start = WAITERS[name]
    a, b = request.getfixturevalue(kind + "_pair")

    async def main():
        fut, make_ready, expected = await start(loop, a, b)
        await until_waiting(fut, "sock_" + name)
        fd = a.fileno()
        a.close()
        # the waiting call keeps the fd: the number is not free for reuse
        assert a.fileno() == fd
        make_ready()
        result = await within(fut, "sock_%s after close()" % name)
        if expected is not None:
            assert result == expected
        # the deferred close happened before the caller resumed, and the
        # fd's watch went with it
        assert a.fileno() == -1
        assert fd not in (loop._fd_watches or {})
    run(loop, main())


def test_close_while_accept_waits(loop, listener):
    async def main():
        fut = asyncio.ensure_future(loop.sock_accept(listener))
        await until_waiting(fut, "sock_accept")
        fd = listener.fileno()
        addr = listener.getsockname()
        listener.close()
        assert listener.fileno() == fd
        client = socket.create_connection(addr, timeout=WAIT)
        with client:
            conn, peer = await within(fut, "sock_accept after close()")
            with conn:
                assert peer == client.getsockname()
                assert conn.gettimeout() == 0  # non-blocking, as asyncio's
        assert listener.fileno() == -1
        assert fd not in (loop._fd_watches or {})
    run(loop, main())


def test_close_deferred_until_the_last_waiting_call_ends(loop, stream_pair):
    a, b = stream_pair

    async def main():
        fill(a)
        recv = asyncio.ensure_future(loop.sock_recv(a, 10))
        send = asyncio.ensure_future(loop.sock_sendall(a, b"y" * 1_000_000))
        await until_waiting(recv, "sock_recv")
        await until_waiting(send, "sock_sendall")
        fd = a.fileno()
        a.close()
        b.send(b"helo")
        assert await within(recv, "sock_recv after close()") == b"helo"
        assert a.fileno() == fd  # sock_sendall still waits on it
        while not send.done():
            drain(b)
            await asyncio.sleep(0.001)
        assert await within(send, "sock_sendall after close()") is None
        assert a.fileno() == -1
    run(loop, main())


def test_fd_number_reused_right_after_the_deferred_close(loop, stream_pair):
    # the watch of the closed fd is gone before the fd is: a new socket
    # that gets the same number is watched afresh, in the same batch of
    # callbacks, with no stale registration in libuv
    a, b = stream_pair

    async def main():
        fut = asyncio.ensure_future(loop.sock_recv(a, 10))
        await until_waiting(fut, "sock_recv")
        fd = a.fileno()
        a.close()
        b.send(b"one")
        assert await within(fut, "sock_recv after close()") == b"one"
        c, d = socket.socketpair()
        with c, d:
            nb(c)
            nb(d)
            # wait on the socket that got the old number (the lowest free
            # one: the kernel hands it out again)
            waiter, other = (d, c) if d.fileno() == fd else (c, d)
            second = asyncio.ensure_future(loop.sock_recv(waiter, 10))
            await until_waiting(second, "sock_recv on the new socket")
            other.send(b"two")
            assert await within(second, "sock_recv on a reused fd") == b"two"
    run(loop, main())


def test_sendfile_continues_after_close(loop, stream_pair, tmp_path):
    a, b = stream_pair
    path = tmp_path / "data"
    path.write_bytes(b"f" * (4 * 1024 * 1024))

    async def main():
        with open(path, "rb") as f:
            fut = asyncio.ensure_future(loop.sock_sendfile(a, f))
            await until_waiting(fut, "sock_sendfile")
            fd = a.fileno()
            a.close()
            assert a.fileno() == fd
            got = 0
            while not fut.done():
                got += drain(b)
                await asyncio.sleep(0.001)
            assert await within(fut, "sock_sendfile") == 4 * 1024 * 1024
            got += drain(b)
        assert got == 4 * 1024 * 1024
        assert a.fileno() == -1
    run(loop, main())


# -- cancelling a call that waits on a closed socket (both loops) ----------------

def _blocked_connect(loop):
    """A sock_connect that stays in progress: the listener's backlog is
    full, so the kernel drops our SYN.  Returns (start, cleanup)."""
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(0)
    fillers = []
    for _ in range(4):
        s = nb(socket.socket())
        try:
            s.connect(lst.getsockname())
        except BlockingIOError:
            pass
        fillers.append(s)
    sock = nb(socket.socket())

    def start():
        return sock, asyncio.ensure_future(
            loop.sock_connect(sock, lst.getsockname()))

    def cleanup():
        for s in fillers + [lst, sock]:
            s.close()
    return start, cleanup


CANCELLABLE = ["recv", "recv_into", "recvfrom", "recvfrom_into", "sendall",
               "accept", "connect"]


@pytest.mark.parametrize("name", CANCELLABLE)
def test_cancel_after_close_ends_the_call_and_closes_the_fd(any_loop, name):
    loop = any_loop
    if not hasattr(loop, "sock_" + name):
        pytest.skip("asyncio before 3.11 has no sock_%s" % name)
    a, b = socket.socketpair()
    nb(a)
    nb(b)
    cleanup = None

    async def main():
        nonlocal cleanup
        sock = a
        if name == "recv":
            fut = asyncio.ensure_future(loop.sock_recv(a, 10))
        elif name == "recv_into":
            fut = asyncio.ensure_future(loop.sock_recv_into(a, bytearray(4)))
        elif name == "recvfrom":
            fut = asyncio.ensure_future(loop.sock_recvfrom(a, 10))
        elif name == "recvfrom_into":
            fut = asyncio.ensure_future(
                loop.sock_recvfrom_into(a, bytearray(4)))
        elif name == "sendall":
            fill(a)
            fut = asyncio.ensure_future(loop.sock_sendall(a, b"y" * 1000000))
        elif name == "accept":
            sock = nb(socket.socket())
            sock.bind(("127.0.0.1", 0))
            sock.listen()
            fut = asyncio.ensure_future(loop.sock_accept(sock))
        else:
            start, cleanup = _blocked_connect(loop)
            sock, fut = start()
        await until_waiting(fut, "sock_" + name)
        sock.close()
        fut.cancel()
        with pytest.raises(asyncio.CancelledError):
            await within(fut, "the cancelled sock_%s" % name)
        assert sock.fileno() == -1
        if loop.kind == "uvffi":
            assert not loop._sock_held
    try:
        run(loop, main())
    finally:
        a.close()
        b.close()
        if cleanup is not None:
            cleanup()


# -- loop.close() while calls wait (both loops) -----------------------------------

def test_loop_close_with_waiting_calls(any_loop, stream_pair):
    # the futures stay pending, as on asyncio's loop (nothing can run their
    # callbacks any more); a socket closed meanwhile is closed for real, one
    # left open stays open and usable
    loop = any_loop
    a, b = stream_pair
    c, d = socket.socketpair()
    nb(c)

    async def main():
        futs = [asyncio.ensure_future(loop.sock_recv(a, 10)),
                asyncio.ensure_future(loop.sock_recv(c, 10))]
        for f in futs:
            await until_waiting(f, "sock_recv")
        return futs

    with c, d:
        futs = run(loop, main())
        a.close()
        loop.close()
        for f in futs:
            assert not f.done()
            f._log_destroy_pending = False  # pending on purpose
        assert a.fileno() == -1
        assert c.fileno() != -1
        d.send(b"still")
        assert c.recv(10) == b"still"
    del futs
    gc.collect()


def test_loop_close_releases_the_watch_before_the_fd(loop, stream_pair):
    # the deferred close at loop.close(): the fd is closed only once its
    # poll is gone, and the number is reusable afterwards
    a, b = stream_pair

    async def main():
        fut = asyncio.ensure_future(loop.sock_recv(a, 10))
        await until_waiting(fut, "sock_recv")
        return fut

    fut = run(loop, main())
    fd = a.fileno()
    a.close()
    assert a.fileno() == fd
    loop.close()
    fut._log_destroy_pending = False
    assert a.fileno() == -1
