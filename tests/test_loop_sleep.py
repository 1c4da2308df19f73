"""Work that reaches a sleeping loop from outside its ready queue.

A uvffi loop with nothing queued sleeps inside libuv across I/O events
(scheduler.py: _poll, shim uvffi_run_sleep) and returns to asyncio only
when something sets its wanted flag.  Each test here makes work arrive in
one of those ways while the loop sleeps (the event comes from another
thread, so the loop is asleep when it lands) and checks that it is done
promptly; each runs on asyncio's loop too.  A watchdog thread ends a test
that would otherwise hang, saying what it waited for."""
import asyncio
import socket
import threading
import time

import pytest

WAIT = 5.0  # seconds a test waits for what it checks


class _Watchdog:
    """Cancels *task* from another thread after WAIT seconds."""

    def __init__(self, loop, task):
        self.fired = False
        self._timer = threading.Timer(WAIT, self._fire, (loop, task))
        self._timer.daemon = True
        self._timer.start()

    def _fire(self, loop, task):
        self.fired = True
        loop.call_soon_threadsafe(task.cancel)

    def cancel(self):
        self._timer.cancel()


def _run(loop, coro, waiting_for):
    task = loop.create_task(coro)
    dog = _Watchdog(loop, task)
    try:
        return loop.run_until_complete(task)
    except asyncio.CancelledError:
        if dog.fired:
            pytest.fail("the loop did not wake within %.0f s for %s"
                        % (WAIT, waiting_for))
        raise
    finally:
        dog.cancel()


def _send_later(sock, data, delay=0.05):
    """Send *data* on *sock* from another thread after *delay* seconds."""
    t = threading.Timer(delay, sock.sendall, (data,))
    t.daemon = True
    t.start()
    return t


class _OnData(asyncio.Protocol):
    def __init__(self, on_data):
        self.on_data = on_data

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.on_data(self.transport, data)


async def _connected(loop, on_data):
    """A transport on one end of a socket pair whose protocol calls
    on_data(transport, data), and the other end (a blocking socket)."""
    a, b = socket.socketpair()
    transport, _ = await loop.create_connection(lambda: _OnData(on_data), sock=a)
    return transport, b


def test_call_soon_from_a_protocol_callback_runs(any_loop):
    async def main():
        got = any_loop.create_future()
        transport, peer = await _connected(
            any_loop, lambda tr, data: any_loop.call_soon(got.set_result, data))
        with peer:
            _send_later(peer, b"ping")
            data = await got
        transport.close()
        return data
    assert _run(any_loop, main(), "a call_soon from data_received") == b"ping"


def test_call_later_from_a_protocol_callback_fires_on_time(any_loop):
    # the only event after the data is the timer itself
    async def main():
        fired = any_loop.create_future()

        def on_data(transport, data):
            start = any_loop.time()
            any_loop.call_later(0.05, lambda: fired.set_result(any_loop.time() - start))
        transport, peer = await _connected(any_loop, on_data)
        with peer:
            _send_later(peer, b"x")
            elapsed = await fired
        transport.close()
        return elapsed
    elapsed = _run(any_loop, main(), "a call_later from data_received")
    assert 0.04 <= elapsed < 1.0, elapsed


def test_stop_from_a_protocol_callback_ends_run_forever(any_loop):
    transport, peer = any_loop.run_until_complete(
        _connected(any_loop, lambda tr, data: any_loop.stop()))
    watchdog = threading.Timer(WAIT, any_loop.call_soon_threadsafe, (any_loop.stop,))
    watchdog.daemon = True
    with peer:
        _send_later(peer, b"x")
        t0 = time.monotonic()
        watchdog.start()
        try:
            any_loop.run_forever()
        finally:
            watchdog.cancel()
        assert time.monotonic() - t0 < WAIT / 2, "stop() from data_received"
    transport.close()
    any_loop.run_until_complete(asyncio.sleep(0))


def test_an_append_to_the_ready_queue_from_a_protocol_callback_runs(any_loop):
    # code outside the loop that queues handles itself (loop._ready.append)
    async def main():
        got = any_loop.create_future()

        def on_data(transport, data):
            any_loop._ready.append(asyncio.Handle(got.set_result, (data,), any_loop))
        transport, peer = await _connected(any_loop, on_data)
        with peer:
            _send_later(peer, b"queued")
            data = await got
        transport.close()
        return data
    assert _run(any_loop, main(), "a handle appended to loop._ready") == b"queued"


def test_call_soon_threadsafe_wakes_a_loop_with_nothing_else_to_do(any_loop):
    async def main():
        got = any_loop.create_future()
        t = threading.Timer(0.05, any_loop.call_soon_threadsafe,
                            (got.set_result, "woken"))
        t.daemon = True
        t.start()
        return await got
    assert _run(any_loop, main(), "call_soon_threadsafe") == "woken"


def test_a_timer_cancelled_while_the_loop_sleeps_does_not_fire(any_loop):
    async def main():
        fired = []
        done = any_loop.create_future()

        def on_data(transport, data):
            if data == b"arm":
                on_data.timer = any_loop.call_later(0.05, fired.append, 1)
            else:
                on_data.timer.cancel()
                any_loop.call_later(0.1, done.set_result, None)
        transport, peer = await _connected(any_loop, on_data)
        with peer:
            peer.sendall(b"arm")
            await asyncio.sleep(0.01)
            _send_later(peer, b"disarm", delay=0.0)
            await done
        transport.close()
        return fired
    assert _run(any_loop, main(), "the timers of data_received") == []


def test_protocol_writes_alone_run_no_asyncio_iteration(loop):
    # uvffi's own: an echo whose protocol only writes is served inside
    # libuv; asyncio's _run_once runs for the set-up and the end, not per
    # message
    rounds = 200
    iterations = [0]
    run_once = loop._run_once

    def counting_run_once():
        iterations[0] += 1
        run_once()

    async def main():
        transport, peer = await _connected(loop, lambda tr, data: tr.write(data))
        done = loop.create_future()

        def client():
            try:
                for _ in range(rounds):
                    peer.sendall(b"x" * 100)
                    got = 0
                    while got < 100:
                        got += len(peer.recv(4096))
            finally:
                loop.call_soon_threadsafe(done.set_result, None)
        with peer:
            start = iterations[0]
            threading.Thread(target=client, daemon=True).start()
            await done
            served_in = iterations[0] - start
        transport.close()
        return served_in

    loop._run_once = counting_run_once
    try:
        served_in = _run(loop, main(), "the echo client")
    finally:
        del loop._run_once
    assert served_in < rounds // 10, served_in
