"""Load: connection churn against one echo server, and a long run of
requests on one connection; open fds and RSS must come back to their
starting level (measured from /proc, after a warm-up round so that
allocator arenas, interned objects and -- on PyPy -- JIT code are already
there).  The soak variants (pytest -m soak) run the full figures of issue 9:
10 000 connections and 1 000 000 requests."""
import asyncio
import time

import pytest

from _reliability import (Deadline, collect, echo_factory, live_handles,
                          open_fds, raise_nofile, rss_kib, settle)

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


class PingClient(asyncio.Protocol):
    """Opens, sends one line, waits for its echo, closes."""

    def __init__(self, loop, payload):
        self.payload = payload
        self.got = b""
        self.done = loop.create_future()

    def connection_made(self, tr):
        self.tr = tr
        tr.write(self.payload)

    def data_received(self, data):
        self.got += data
        if len(self.got) >= len(self.payload):
            self.tr.close()

    def connection_lost(self, exc):
        if not self.done.done():
            self.done.set_result(self.got)


async def _churn(loop, port, total, held, budget):
    """*total* connections in waves of *held* open at once; returns
    (connections completed, most held at once)."""
    done = 0
    most = 0
    deadline = Deadline(budget)
    while done < total and deadline:
        wave = min(held, total - done)
        conns = await asyncio.gather(*[
            loop.create_connection(lambda k=k: PingClient(loop, b"ping %d\n" % (done + k)),
                                   "127.0.0.1", port)
            for k in range(wave)])
        most = max(most, len(conns))
        results = await asyncio.wait_for(
            asyncio.gather(*[pr.done for _, pr in conns]), 60)
        for k, got in enumerate(results):
            assert got == b"ping %d\n" % (done + k), got
        done += wave
    return done, most


def _measure_churn(loop, total, held, budget):
    """Two measured rounds of total/2 connections after a warm-up wave.
    A leak shows as growth from the first round to the second; the first
    round may still grow the heap (PyPy's GC keeps what it once took)."""
    raise_nofile(held * 4 + 512)  # client + server socket, each with a libuv dup
    factory, served = echo_factory()

    async def start():
        return await loop.create_server(factory, "127.0.0.1", 0, backlog=held)
    srv = loop.run_until_complete(start())
    port = srv.sockets[0].getsockname()[1]
    # warm-up: one wave as wide as the measured ones
    loop.run_until_complete(_churn(loop, port, held, held, budget))
    points = []
    n = most = 0
    t0 = time.monotonic()
    for half in (total // 2, total - total // 2):
        settle(loop, 0.05)
        collect()
        points.append((open_fds(), rss_kib(), live_handles(loop)))
        done, wave = loop.run_until_complete(_churn(loop, port, half, held, budget))
        n += done
        most = max(most, wave)
    elapsed = time.monotonic() - t0
    settle(loop, 0.1)
    collect()
    points.append((open_fds(), rss_kib(), live_handles(loop)))
    srv.close()
    loop.run_until_complete(srv.wait_closed())
    print("\nchurn: %d connections (%d held at once) in %.1f s; server saw %d; "
          "fds %s; RSS %s KiB; libuv handles %s (start / half / end)"
          % (n, most, elapsed, served[0], " -> ".join(str(p[0]) for p in points),
             " -> ".join(str(p[1]) for p in points), " -> ".join(str(p[2]) for p in points)))
    return n, most, points


def _assert_churn_clean(points, rss_tolerance_kib):
    (fds0, rss0, h0), (fds1, rss1, h1), (fds2, rss2, h2) = points
    assert fds2 <= fds0 + 2 and fds1 <= fds0 + 2, points
    assert h2 <= h0, points
    assert rss2 - rss1 < rss_tolerance_kib, points  # no growth once warm


def test_connection_churn_returns_fds_and_memory(loop):
    n, most, points = _measure_churn(loop, 1000, 250, 40)
    assert n == 1000 and most == 250
    _assert_churn_clean(points, 8 * 1024)


@pytest.mark.soak
def test_connection_churn_10000_soak(loop):
    n, most, points = _measure_churn(loop, 10000, 2000, 600)
    assert n == 10000 and most == 2000
    _assert_churn_clean(points, 16 * 1024)


class Pinger(asyncio.Protocol):
    """Request/response on one connection: *window* requests in flight
    (1: each request waits for the previous answer)."""

    def __init__(self, loop, total, window, size=64):
        self.total = total
        self.window = window
        self.msg = b"r" * (size - 1) + b"\n"
        self.sent = self.answered = 0
        self.pending = 0
        self.done = loop.create_future()

    def connection_made(self, tr):
        self.tr = tr
        self._fill()

    def _fill(self):
        burst = min(self.window - (self.sent - self.answered), self.total - self.sent)
        if burst > 0:
            self.tr.write(self.msg * burst)
            self.sent += burst

    def data_received(self, data):
        self.pending += len(data)
        # the remainder: bytes of a partial reply, counted with the next data
        n, self.pending = divmod(self.pending, len(self.msg))
        self.answered += n
        if self.answered >= self.total:
            if not self.done.done():
                self.done.set_result(self.answered)
        else:
            self._fill()

    def connection_lost(self, exc):
        if not self.done.done():
            self.done.set_exception(exc or ConnectionError("closed early"))


def _measure_requests(loop, total, window, budget):
    factory, served = echo_factory()

    async def run(n):
        srv = await loop.create_server(factory, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        tr, pr = await loop.create_connection(lambda: Pinger(loop, n, window),
                                              "127.0.0.1", port)
        answered = await asyncio.wait_for(pr.done, budget)
        tr.close()
        srv.close()
        await srv.wait_closed()
        return answered

    loop.run_until_complete(run(2000))  # warm-up
    settle(loop)
    collect()
    fds0, rss0 = open_fds(), rss_kib()
    t0 = time.monotonic()
    answered = loop.run_until_complete(run(total))
    elapsed = time.monotonic() - t0
    settle(loop, 0.1)
    collect()
    fds1, rss1 = open_fds(), rss_kib()
    print("\nrequests: %d answered on one connection in %.1f s (%.0f/s); "
          "fds %d -> %d; RSS %d -> %d KiB"
          % (answered, elapsed, answered / elapsed, fds0, fds1, rss0, rss1))
    return answered, fds0, fds1, rss0, rss1


def test_many_requests_on_one_connection_return_fds_and_memory(loop):
    answered, fds0, fds1, rss0, rss1 = _measure_requests(loop, 20000, 1, 60)
    assert answered >= 20000
    assert fds1 <= fds0 + 2
    assert rss1 - rss0 < 16 * 1024


@pytest.mark.soak
def test_one_million_requests_on_one_connection_soak(loop):
    answered, fds0, fds1, rss0, rss1 = _measure_requests(loop, 1000000, 1, 1200)
    assert answered >= 1000000
    assert fds1 <= fds0 + 2
    assert rss1 - rss0 < 32 * 1024
