"""How the sock_* calls that had to wait share an fd's watch with each other
and with add_reader/add_writer, and in which order their readiness runs
against callbacks already queued: the same on both loops (any_loop).  On
uvffi a plain socket waits through its poll's SockWait (fdwatch.py), a
socket subclass or debug mode through a Handle per call; both are run."""
import asyncio
import socket

import pytest


def run(loop, coro, timeout=30):
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


class Sub(socket.socket):
    """A socket subclass: uvffi's per-call Handle path."""


@pytest.fixture(params=["plain", "subclass", "debug"])
def sockets(request, any_loop):
    """A non-blocking pair as the parameter has it: plain sockets, a
    subclass (the waits' own Handle), or plain ones on a loop in debug mode."""
    a, b = socket.socketpair()
    if request.param == "subclass":
        a = Sub(fileno=a.detach())
    if request.param == "debug":
        any_loop.set_debug(True)
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


def no_watcher(loop, sock):
    return (loop.remove_reader(sock.fileno()) is False and
            loop.remove_writer(sock.fileno()) is False)


def assert_no_holds(loop, *socks):
    for s in socks:
        assert s._io_refs == 0
    if loop.kind == "uvffi":
        assert not loop._sock_held


def assert_released(loop, sock):
    """No watcher left on *sock*'s fd and no hold on it."""
    assert no_watcher(loop, sock)
    assert_no_holds(loop, sock)


async def cancelled(task):
    """Cancel a waiting call and see it end with CancelledError."""
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def until_waiting(*futs):
    for _ in range(3):
        await asyncio.sleep(0)
    for f in futs:
        assert not f.done()


def test_wait_then_data(any_loop, sockets):
    a, b = sockets

    async def main():
        t = asyncio.ensure_future(any_loop.sock_recv(a, 10))
        await until_waiting(t)
        b.send(b"late")
        return await t

    assert run(any_loop, main()) == b"late"
    assert_released(any_loop, a)


def test_many_waits_in_turn_on_both_directions(any_loop, sockets):
    # ping-pong: every call of the pair waits, alternately on each socket
    a, b = sockets

    async def pong():
        for _ in range(50):
            data = await any_loop.sock_recv(b, 1)
            await any_loop.sock_sendall(b, data)

    async def main():
        t = asyncio.ensure_future(pong())
        for i in range(50):
            await any_loop.sock_sendall(a, b"%d" % (i % 10))
            assert await any_loop.sock_recv(a, 1) == b"%d" % (i % 10)
        await t

    run(any_loop, main())
    assert no_watcher(any_loop, a) and no_watcher(any_loop, b)
    assert_no_holds(any_loop, a, b)


def test_a_newer_call_replaces_a_waiting_one(any_loop, sockets):
    # selector_events: the second add_reader cancels the first call's
    # handle; the data goes to the newer call, the older waits until
    # cancelled, and its cancellation leaves the fd alone
    a, b = sockets

    async def main():
        first = asyncio.ensure_future(any_loop.sock_recv(a, 10))
        await until_waiting(first)
        second = asyncio.ensure_future(any_loop.sock_recv(a, 10))
        await until_waiting(first, second)
        b.send(b"data")
        assert await second == b"data"
        await asyncio.sleep(0.01)
        assert not first.done()
        await cancelled(first)
        b.send(b"more")  # the fd still works for a third call
        return await any_loop.sock_recv(a, 10)

    assert run(any_loop, main()) == b"more"
    assert_released(any_loop, a)


def test_replaced_call_cancelled_before_the_newer_one_ends(any_loop, sockets):
    a, b = sockets

    async def main():
        first = asyncio.ensure_future(any_loop.sock_recv(a, 10))
        await until_waiting(first)
        second = asyncio.ensure_future(any_loop.sock_recv(a, 10))
        await until_waiting(first, second)
        await cancelled(first)
        await until_waiting(second)  # still watched
        b.send(b"data")
        return await second

    assert run(any_loop, main()) == b"data"
    assert_released(any_loop, a)


def test_add_reader_replaces_a_waiting_call(any_loop, sockets):
    # the call waits until cancelled; the new reader stays after that
    a, b = sockets
    fired = []

    async def main():
        t = asyncio.ensure_future(any_loop.sock_recv(a, 10))
        await until_waiting(t)
        got = any_loop.create_future()

        def reader():
            fired.append(a.recv(100))
            if not got.done():
                got.set_result(None)
        any_loop.add_reader(a.fileno(), reader)
        b.send(b"for the reader")
        await got
        assert not t.done()
        await cancelled(t)
        assert any_loop.remove_reader(a.fileno()) is True
        # and a call after it watches the fd again
        b.send(b"again")
        return await any_loop.sock_recv(a, 10)

    assert run(any_loop, main()) == b"again"
    assert fired == [b"for the reader"]
    assert_released(any_loop, a)


def test_remove_reader_under_a_waiting_call(any_loop, sockets):
    # selector_events: the call's handle is gone, the call waits until
    # cancelled and its cancellation removes nothing more
    a, b = sockets

    async def main():
        t = asyncio.ensure_future(any_loop.sock_recv(a, 10))
        await until_waiting(t)
        assert any_loop.remove_reader(a.fileno()) is True
        b.send(b"unseen")
        await asyncio.sleep(0.02)
        assert not t.done()
        await cancelled(t)
        return await any_loop.sock_recv(a, 10)

    assert run(any_loop, main()) == b"unseen"
    assert_released(any_loop, a)


def test_cancel_queued_before_the_poll_keeps_the_data(any_loop, sockets):
    # the data and a cancel() already queued arrive in one iteration: the
    # callbacks queued before the poll run first, so the call is cancelled
    # and the data stays in the socket for the next call (nothing lost)
    a, b = sockets

    async def main():
        t = asyncio.ensure_future(any_loop.sock_recv(a, 10))
        await until_waiting(t)
        b.send(b"kept")
        any_loop.call_soon(t.cancel)
        await asyncio.sleep(0)
        with pytest.raises(asyncio.CancelledError):
            await t
        return await any_loop.sock_recv(a, 10)

    assert run(any_loop, main()) == b"kept"
    assert no_watcher(any_loop, a)


def test_reader_and_writer_calls_on_one_fd(any_loop, sockets):
    # a sock_recv and a sock_sendall wait on the same fd at once; each ends
    # on its own, in either order
    a, b = sockets

    async def main():
        chunk = b"y" * 65536
        while True:  # fill the buffers: sock_sendall has to wait
            try:
                a.send(chunk)
            except BlockingIOError:
                break
        recv = asyncio.ensure_future(any_loop.sock_recv(a, 10))
        send = asyncio.ensure_future(any_loop.sock_sendall(a, b"z" * 200000))
        await until_waiting(recv, send)
        b.send(b"first")
        assert await recv == b"first"
        assert not send.done()
        got = 0
        while not send.done():
            try:
                got += len(b.recv(1 << 20))
            except BlockingIOError:
                await asyncio.sleep(0.001)
        await send
        return got

    assert run(any_loop, main()) > 200000
    assert_released(any_loop, a)


def test_eof_while_waiting(any_loop, sockets):
    a, b = sockets

    async def main():
        t = asyncio.ensure_future(any_loop.sock_recv_into(a, bytearray(10)))
        await until_waiting(t)
        b.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
        b.close()
        return await t

    assert run(any_loop, main()) == 0  # EOF from a socketpair
    assert_released(any_loop, a)


def test_plain_socket_reuses_its_sockwait(loop, pair):
    # uvffi: one SockWait per fd and direction, kept across calls
    a, b = pair

    async def main():
        seen = set()
        for i in range(5):
            loop.call_soon(b.send, b"%d" % i)
            assert await loop.sock_recv(a, 10) == b"%d" % i
            seen.add(id(loop._fd_watches[a.fileno()].rwait))
        return seen

    assert len(run(loop, main())) == 1
