"""Reads that arrive together: uvffi hands a loop's reads to Python in one
batch after libuv's poll phase (transports/stream.py: _on_reads).  Whatever a protocol
does to another transport (or to its own) while a batch is delivered, the
observable behaviour must stay asyncio's: nothing reaches a paused or
closed transport, nothing is lost or reordered, and one failing protocol
leaves the other connections alone.  Each test runs on asyncio's
SelectorEventLoop too."""
import asyncio
import socket

import pytest


class Recorder(asyncio.Protocol):
    """Records what it receives; ``paused`` mirrors the transport's state
    so that a delivery while paused shows up as a violation."""

    def __init__(self, name, log):
        self.name = name
        self.log = log
        self.data = bytearray()
        self.paused = False
        self.violations = []
        self.eof = False
        self.lost = asyncio.get_event_loop().create_future()
        self.on_data = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        if self.paused or self.transport.is_closing():
            self.violations.append(("data", bytes(data)))
        self.data += data
        self.log.append((self.name, len(data)))
        if self.on_data is not None:
            self.on_data(self)

    def eof_received(self):
        if self.paused:
            self.violations.append(("eof",))
        self.eof = True

    def connection_lost(self, exc):
        if not self.lost.done():
            self.lost.set_result(exc)

    def pause(self):
        self.paused = True
        self.transport.pause_reading()

    def resume(self):
        self.paused = False
        self.transport.resume_reading()


async def _server_pair(loop, n, log):
    """n accepted connections (server side protocols) and their client
    sockets, in accept order."""
    protos = []
    accepted = asyncio.Queue()

    def factory():
        p = Recorder("s%d" % len(protos), log)
        protos.append(p)
        accepted.put_nowait(p)
        return p

    server = await loop.create_server(factory, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    clients = []
    for _ in range(n):
        c = socket.create_connection(("127.0.0.1", port))
        c.setblocking(False)
        clients.append(c)
        await accepted.get()
    return server, protos, clients


def _send_all(clients, payload):
    # both kernels' buffers hold it: the next poll sees every connection ready
    for c in clients:
        c.sendall(payload)


async def _shut(server, clients):
    for c in clients:
        c.close()
    server.close()
    await server.wait_closed()


async def _until(pred, timeout=5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not pred():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.005)


def test_pausing_another_transport_mid_batch_holds_its_data(any_loop):
    async def main():
        log = []
        server, protos, clients = await _server_pair(any_loop, 4, log)
        try:
            for rnd in range(20):
                # whichever connection is delivered first pauses all others
                def pause_others(p):
                    for q in protos:
                        if q is not p and not q.paused:
                            q.pause()
                for p in protos:
                    p.on_data = pause_others
                before = [len(p.data) for p in protos]
                _send_all(clients, b"x" * 100)
                await _until(lambda: any(len(p.data) > b for p, b in zip(protos, before)))
                await asyncio.sleep(0.01)
                for p in protos:
                    p.on_data = None
                for p in protos:
                    if p.paused:
                        p.resume()
                await _until(lambda: all(len(p.data) == b + 100 for p, b in zip(protos, before)))
            assert [p.violations for p in protos] == [[]] * 4
        finally:
            await _shut(server, clients)
    any_loop.run_until_complete(main())


def test_closing_another_transport_mid_batch_delivers_nothing_more(any_loop):
    async def main():
        log = []
        server, protos, clients = await _server_pair(any_loop, 4, log)
        try:
            def close_others(p):
                for q in protos:
                    if q is not p:
                        q.transport.close()
            for p in protos:
                p.on_data = close_others
            _send_all(clients, b"y" * 50)
            await _until(lambda: any(p.data for p in protos))
            first = [p for p in protos if p.data]
            assert len(first) == 1 and bytes(first[0].data) == b"y" * 50
            others = [p for p in protos if p is not first[0]]
            await asyncio.wait_for(asyncio.gather(*(p.lost for p in others)), 5)
            await asyncio.sleep(0.02)
            assert [p.violations for p in protos] == [[]] * 4
            assert [bytes(p.data) for p in others] == [b""] * 3
        finally:
            await _shut(server, clients)
    any_loop.run_until_complete(main())


def test_pausing_itself_holds_the_eof_that_came_with_the_data(any_loop):
    async def main():
        log = []
        server, protos, clients = await _server_pair(any_loop, 1, log)
        p = protos[0]
        try:
            p.on_data = lambda p: p.pause()
            clients[0].sendall(b"z" * 10)
            clients[0].shutdown(socket.SHUT_WR)
            await _until(lambda: p.data)
            await asyncio.sleep(0.05)
            assert not p.eof  # paused: the EOF waits as asyncio's does
            p.on_data = None
            p.resume()
            await _until(lambda: p.eof)
            assert bytes(p.data) == b"z" * 10 and p.violations == []
        finally:
            clients[0].close()
            server.close()
            await server.wait_closed()
    any_loop.run_until_complete(main())


def test_a_failing_protocol_leaves_the_other_connections_alone(any_loop):
    async def main():
        errors = []
        any_loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))
        log = []
        server, protos, clients = await _server_pair(any_loop, 3, log)
        try:
            def boom(p):
                if p is protos[1]:
                    raise ZeroDivisionError("protocol bug")
            for p in protos:
                p.on_data = boom
            _send_all(clients, b"w" * 64)
            await asyncio.wait_for(protos[1].lost, 5)
            await _until(lambda: len(protos[0].data) == 64 and len(protos[2].data) == 64)
            for c in (clients[0], clients[2]):
                c.sendall(b"v" * 8)
            await _until(lambda: len(protos[0].data) == 72 and len(protos[2].data) == 72)
            assert [type(c.get("exception")) for c in errors] == [ZeroDivisionError]
            assert not protos[0].transport.is_closing()
        finally:
            await _shut(server, clients)
    any_loop.run_until_complete(main())


def test_keyboard_interrupt_in_data_received_loses_no_other_data(any_loop):
    log = []
    state = {}

    async def setup():
        state["server"], state["protos"], state["clients"] = await _server_pair(any_loop, 3, log)

    any_loop.run_until_complete(setup())
    protos, clients = state["protos"], state["clients"]
    try:
        fired = []

        def interrupt(p):
            if not fired:
                fired.append(p)
                raise KeyboardInterrupt

        for p in protos:
            p.on_data = interrupt
        _send_all(clients, b"k" * 32)
        with pytest.raises(KeyboardInterrupt):
            any_loop.run_until_complete(asyncio.sleep(5))
        for p in protos:
            p.on_data = None

        async def rest():
            await _until(lambda: all(len(p.data) == 32 for p in protos))
        any_loop.run_until_complete(rest())
        assert [p.violations for p in protos] == [[]] * 3
        assert sorted(n for _, n in log) == [32, 32, 32]

        # every connection still reads: the clients' EOF reaches all three
        # (the interrupted one included: its reads had been held, and it
        # used to stay stopped, so wait_closed() of 3.12+ hung)
        for c in clients:
            c.close()

        async def all_lost():
            await asyncio.wait_for(asyncio.gather(*(p.lost for p in protos)), 5)
        any_loop.run_until_complete(all_lost())
        assert [p.eof for p in protos] == [True] * 3
    finally:
        for c in clients:
            c.close()
        state["server"].close()
        any_loop.run_until_complete(state["server"].wait_closed())


@pytest.mark.parametrize("size", [100 * 1024, 1024 * 1024])
def test_large_reads_from_many_connections_arrive_whole_and_in_order(any_loop, size):
    # more data at once than the loop's read buffer: batches are handed over
    # early, and every byte still arrives in order
    async def main():
        log = []
        server, protos, clients = await _server_pair(any_loop, 6, log)
        payloads = [bytes([65 + i]) * size + bytes(range(256)) for i in range(len(clients))]
        try:
            pending = list(zip(clients, payloads))
            while pending:
                rest = []
                for c, data in pending:
                    try:
                        n = c.send(data)
                    except BlockingIOError:
                        n = 0
                    if n < len(data):
                        rest.append((c, data[n:]))
                pending = rest
                await asyncio.sleep(0)
            await _until(lambda: all(len(p.data) == len(d) for p, d in zip(protos, payloads)),
                         timeout=20)
            assert [bytes(p.data) == d for p, d in zip(protos, payloads)] == [True] * len(protos)
        finally:
            await _shut(server, clients)
    any_loop.run_until_complete(main())


def test_write_after_loop_close_never_reaches_a_reused_fd_number(loop, tmp_path):
    # writes go straight to the stream's fd (os.write) while libuv has it
    # open; once libuv closed it, the number may belong to another file
    async def connect():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        tr, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        return server, tr
    server, tr = loop.run_until_complete(connect())
    from uvffi.handles import stream as streamhandle
    if streamhandle._OS_WRITES:
        assert tr._wstream.wfd >= 0
    server.close()
    loop.close()
    assert tr._wstream.wfd == -1
    path = tmp_path / "victim"
    with open(path, "wb") as f:
        try:
            tr.write(b"must not land in the file")
        except RuntimeError:
            pass  # the closed loop refuses to schedule the error report
    assert path.read_bytes() == b""


class SmallBuffers(asyncio.BufferedProtocol):
    """Hands out small buffers of a given kind: every read is copied in
    several pieces, at offsets into the loop's read buffer."""

    def __init__(self, kind, size):
        self.kind = kind
        self.size = size
        self.received = bytearray()
        self.done = asyncio.get_event_loop().create_future()

    def get_buffer(self, sizehint):
        self.buf = bytearray(self.size)
        return self.buf if self.kind == "bytearray" else memoryview(self.buf)

    def buffer_updated(self, nbytes):
        self.received += self.buf[:nbytes]

    def eof_received(self):
        self.done.set_result(bytes(self.received))


@pytest.mark.parametrize("kind", ["bytearray", "memoryview"])
@pytest.mark.parametrize("size", [7, 4096])
def test_buffered_protocol_gets_every_byte_through_small_buffers(any_loop, kind, size):
    payload = bytes(range(256)) * 200 + b"tail"

    async def main():
        proto = SmallBuffers(kind, size)
        server = await any_loop.create_server(lambda: proto, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        c = socket.create_connection(("127.0.0.1", port))
        try:
            c.sendall(payload)
            c.shutdown(socket.SHUT_WR)
            got = await asyncio.wait_for(proto.done, 10)
        finally:
            c.close()
            server.close()
            await server.wait_closed()
        assert got == payload
    any_loop.run_until_complete(main())


def test_reads_reach_their_own_protocol_after_other_connections_came_and_went(any_loop):
    # uvffi's batches name a stream by a small key that a closed stream
    # gives back for the next one (streamhandle.Stream._init_done): data
    # for a new connection must never reach the protocol of an old one
    async def main():
        log = []
        server, protos, clients = await _server_pair(any_loop, 4, log)
        port = server.sockets[0].getsockname()[1]
        try:
            for rnd in range(5):
                # close every other connection from the server side ...
                for i in (0, 2):
                    protos[i].transport.close()
                    await asyncio.wait_for(protos[i].lost, 5)
                    clients[i].close()
                await asyncio.sleep(0.01)  # libuv's close callbacks run
                # ... and connect new ones in their place
                for i in (0, 2):
                    n = len(protos)
                    c = socket.create_connection(("127.0.0.1", port))
                    c.setblocking(False)
                    await _until(lambda: len(protos) > n)
                    clients[i] = c
                    protos[i] = protos[-1]
                live = protos[:4]
                before = [len(p.data) for p in live]
                for i, c in enumerate(clients):
                    c.sendall(bytes([97 + i]) * (50 + i))
                await _until(lambda: all(len(p.data) == b + 50 + i for i, (p, b)
                                         in enumerate(zip(live, before))))
                for i, p in enumerate(live):
                    assert bytes(p.data[before[i]:]) == bytes([97 + i]) * (50 + i)
            assert [p.violations for p in protos] == [[]] * len(protos)
        finally:
            await _shut(server, clients)
    any_loop.run_until_complete(main())


def test_the_read_table_does_not_grow_with_connections_that_came_and_went(loop):
    # a closed stream's key is reused: a long-running server's table stays
    # as large as the most streams it had open at once
    async def main():
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        for _ in range(60):
            tr, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
            tr.close()
            await asyncio.sleep(0.005)
        server.close()
        await server.wait_closed()
        await asyncio.sleep(0.01)
    loop.run_until_complete(main())
    streams = loop._read_batches.streams
    assert len(streams) <= 8
    assert [s for s in streams if s is not None] == []
