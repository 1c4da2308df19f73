"""Stream protocols run in the context that was current when their
transport was made: a ContextVar set around create_server (and seen by the
protocol factory), create_connection, create_unix_connection or
connect_accepted_socket is what connection_made, data_received,
buffer_updated, eof_received and connection_lost see, and what a protocol
sets in one callback it sees in the next, never in another connection's.

asyncio's loop agrees wherever the callback is one it registered from that
context; where it runs a callback in the context of whoever triggered it
(connection_lost after a close() from elsewhere, pause_writing from a
write() elsewhere, data after a resume_reading() from elsewhere), the test
says so and pins uvffi's behaviour (uvloop's) only.

uvffi calls a protocol whose creation context is empty without switching
contexts (handles/stream.py: Stream.plain); the tests where a protocol sets
a variable pin that this shortcut is invisible."""
import asyncio
import contextvars
import os
import socket
import tempfile

import pytest

from _netutil import client_ssl_context, server_ssl_context

from _contexts import TIMEOUT, cvar, in_other_context as _in_other_context
from _contexts import Recorder as _Recorder, run as _run


class Recorder(_Recorder):
    """A stream protocol's callbacks, recorded."""

    transport = None

    def connection_made(self, transport):
        self.transport = transport
        self.note("connection_made")

    def eof_received(self):
        self.note("eof_received")

    def connection_lost(self, exc):
        self.note("connection_lost")

    def pause_writing(self):
        self.note("pause_writing")

    def resume_writing(self):
        self.note("resume_writing")


class PlainRecorder(Recorder, asyncio.Protocol):
    def data_received(self, data):
        self.note("data_received")


class BufferedRecorder(Recorder, asyncio.BufferedProtocol):
    def get_buffer(self, sizehint):
        self.note("get_buffer")
        return bytearray(65536)

    def buffer_updated(self, nbytes):
        self.note("data_received")


KINDS = [PlainRecorder, BufferedRecorder]


def _only(values, expected="inner"):
    assert values and set(values) == {expected}, values


@pytest.fixture(params=["tcp", "unix"])
def family(request):
    return request.param


async def _serve(loop, family, factory, ssl=None, inner=True):
    """A server made while cvar is 'inner' (in the caller's context;
    *inner* False: with no variable set), and a connected client socket
    (blocking, for an executor)."""
    if inner:
        cvar.set("inner")
    if family == "tcp":
        srv = await loop.create_server(factory, "127.0.0.1", 0, ssl=ssl)
        addr = srv.sockets[0].getsockname()
        client = socket.socket(socket.AF_INET)
    else:
        path = os.path.join(tempfile.mkdtemp(), "s")
        srv = await loop.create_unix_server(factory, path, ssl=ssl)
        addr = path
        client = socket.socket(socket.AF_UNIX)
    client.settimeout(TIMEOUT)
    await loop.run_in_executor(None, client.connect, addr)
    if ssl is not None:
        client = await loop.run_in_executor(
            None, lambda: client_ssl_context().wrap_socket(
                client, server_hostname="localhost"))
    return srv, client


@pytest.mark.parametrize("kind", KINDS)
def test_server_callbacks_see_the_create_server_context(any_loop, family, kind):
    loop = any_loop
    proto = kind()
    factory_saw = []

    def factory():
        factory_saw.append(cvar.get())
        return proto

    async def main():
        srv, client = await _serve(loop, family, factory)
        cvar.set("changed after create_server")
        with client:
            await proto.wait("connection_made")
            await loop.run_in_executor(None, client.sendall, b"data")
            await proto.wait("data_received")
            client.shutdown(socket.SHUT_WR)
            await proto.wait("eof_received")
        await proto.wait("connection_lost")
        srv.close()
        await srv.wait_closed()

    asyncio.set_event_loop(loop)
    contextvars.copy_context().run(_run, loop, main())
    assert factory_saw == ["inner"]
    for name in ("connection_made", "data_received", "eof_received",
                 "connection_lost"):
        _only(proto.seen[name])
    if kind is BufferedRecorder:
        _only(proto.seen["get_buffer"])


@pytest.mark.parametrize("kind", KINDS)
def test_tls_server_callbacks_see_the_create_server_context(any_loop, kind):
    loop = any_loop
    proto = kind()

    async def main():
        srv, client = await _serve(loop, "tcp", lambda: proto,
                                   ssl=server_ssl_context())
        with client:
            await proto.wait("connection_made")
            await loop.run_in_executor(None, client.sendall, b"data")
            await proto.wait("data_received")
        await proto.wait("connection_lost")
        srv.close()
        await srv.wait_closed()

    contextvars.copy_context().run(_run, loop, main())
    for name in ("connection_made", "data_received", "connection_lost"):
        _only(proto.seen[name])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("how", ["address", "sock", "accepted"])
def test_client_callbacks_see_the_creation_context(any_loop, family, kind, how):
    loop = any_loop
    proto = kind()
    handler_calls = []
    loop.set_exception_handler(lambda lp, ctx: handler_calls.append(ctx))
    if family == "tcp":
        listener = socket.create_server(("127.0.0.1", 0))
        addr = listener.getsockname()
        sock_family = socket.AF_INET
    else:
        addr = os.path.join(tempfile.mkdtemp(), "s")
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(addr)
        listener.listen()
        sock_family = socket.AF_UNIX
    listener.settimeout(TIMEOUT)

    async def main():
        cvar.set("inner")
        accepting = loop.run_in_executor(None, listener.accept)
        if how == "accepted":
            # the loop's side is the accepted end; the peer connects
            peer = socket.socket(sock_family)
            peer.settimeout(TIMEOUT)
            await loop.run_in_executor(None, peer.connect, addr)
            ours, _ = await accepting
            await loop.connect_accepted_socket(lambda: proto, ours)
        elif how == "sock":
            sock = socket.socket(sock_family)
            sock.connect(addr)
            sock.setblocking(False)
            if family == "tcp":
                await loop.create_connection(lambda: proto, sock=sock)
            else:
                await loop.create_unix_connection(lambda: proto, sock=sock)
            peer, _ = await accepting
        else:
            if family == "tcp":
                await loop.create_connection(lambda: proto, *addr)
            else:
                await loop.create_unix_connection(lambda: proto, addr)
            peer, _ = await accepting
        cvar.set("changed after the connection was made")
        with peer:
            await proto.wait("connection_made")
            await loop.run_in_executor(None, peer.sendall, b"data")
            await proto.wait("data_received")
            peer.shutdown(socket.SHUT_WR)
            await proto.wait("eof_received")
        await proto.wait("connection_lost")

    try:
        contextvars.copy_context().run(_run, loop, main())
    finally:
        listener.close()
    for name in ("connection_made", "data_received", "eof_received",
                 "connection_lost"):
        _only(proto.seen[name])
    # connect_accepted_socket once reported a ConnectionResetError nobody
    # retrieved; nothing may reach the handler
    assert handler_calls == []


@pytest.mark.parametrize("kind", KINDS)
def test_what_a_protocol_sets_stays_in_its_connection(any_loop, family, kind):
    """Each connection's reads share one context of their own: a value
    set in a read (on uvffi, as on uvloop, also in connection_made) is
    there in the next read of that connection, and in no other connection,
    also when their reads come in the same poll."""
    loop = any_loop
    mine = contextvars.ContextVar("mine", default=None)
    nconn = 6
    seen = {}  # connection number -> values of `mine` at each read
    done = []

    class Setter(kind):
        def connection_made(self, transport):
            super().connection_made(transport)
            self.number = len(seen)
            seen[self.number] = []
            if self.number % 2:
                mine.set(("made", self.number))  # in connection_made

        def data_received(self, data=None):
            seen[self.number].append(mine.get())
            # every connection sets its own value in its reads
            mine.set(("read", self.number))
            if len(seen[self.number]) == 3:
                done.append(self.number)
                self.transport.close()

        if kind is BufferedRecorder:
            def buffer_updated(self, nbytes):
                self.data_received()

    async def main():
        # no variable set: on uvffi, the connections start plain
        srv, first = await _serve(loop, family, Setter, inner=False)
        clients = [first]
        for _ in range(nconn - 1):
            c = socket.socket(first.family)
            c.settimeout(TIMEOUT)
            await loop.run_in_executor(None, c.connect,
                                       srv.sockets[0].getsockname())
            clients.append(c)
        for _ in range(3):
            # all connections' bytes first, so that one poll finds several
            for c in clients:
                c.sendall(b"x")
            await asyncio.sleep(0.05)
        for _ in range(int(TIMEOUT / 0.01)):
            if len(done) == nconn:
                break
            await asyncio.sleep(0.01)
        for c in clients:
            c.close()
        srv.close()
        await srv.wait_closed()

    contextvars.Context().run(_run, loop, main())
    assert sorted(done) == list(range(nconn))
    for number, values in seen.items():
        # asyncio's connection_made runs in a context of its own, a copy
        # taken before the reader's: what it sets, reads do not see there
        first = (("made", number) if number % 2 and loop.kind == "uvffi"
                 else None)
        assert values == [first, ("read", number), ("read", number)], (
            number, values)
    assert mine.get() is None  # nothing leaked out of the loop either


@pytest.mark.parametrize("kind", KINDS)
def test_connection_lost_after_close_from_elsewhere(loop, kind):
    # asyncio runs connection_lost in the context of close()'s caller
    proto = kind()

    async def main():
        srv, client = await _serve(loop, "tcp", lambda: proto)
        with client:
            await proto.wait("connection_made")
            loop.call_soon(_in_other_context, proto.transport.close)
            await proto.wait("connection_lost")
        srv.close()
        await srv.wait_closed()

    contextvars.copy_context().run(_run, loop, main())
    _only(proto.seen["connection_lost"])


def test_flow_control_callbacks_after_writes_from_elsewhere(loop):
    # asyncio calls pause_writing() in the context of write()'s caller
    proto = PlainRecorder()

    async def main():
        srv, client = await _serve(loop, "tcp", lambda: proto)
        with client:
            await proto.wait("connection_made")
            tr = proto.transport
            tr.set_write_buffer_limits(high=1024, low=512)

            def fill():
                while not tr.get_write_buffer_size():
                    tr.write(b"q" * 65536)

            _in_other_context(fill)
            await proto.wait("pause_writing")
            client.settimeout(TIMEOUT)
            while "resume_writing" not in proto.seen:
                await loop.run_in_executor(None, client.recv, 1 << 20)
        srv.close()
        await srv.wait_closed()

    contextvars.copy_context().run(_run, loop, main())
    _only(proto.seen["pause_writing"])
    _only(proto.seen["resume_writing"])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_reads_after_resume_reading_from_elsewhere(loop, kind, tls):
    # asyncio registers the reader again in resume_reading()'s caller's
    # context, and its TLS protocol schedules the read from there too
    proto = kind()

    async def main():
        srv, client = await _serve(loop, "tcp", lambda: proto,
                                   ssl=server_ssl_context() if tls else None)
        with client:
            await proto.wait("connection_made")
            proto.transport.pause_reading()
            await loop.run_in_executor(None, client.sendall, b"data")
            await asyncio.sleep(0.05)
            assert "data_received" not in proto.seen
            _in_other_context(proto.transport.resume_reading)
            await proto.wait("data_received")
        srv.close()
        await srv.wait_closed()

    contextvars.copy_context().run(_run, loop, main())
    _only(proto.seen["data_received"])


def test_start_tls_keeps_the_connection_context(loop):
    # asyncio: the TLS protocol's callbacks run in start_tls()'s context
    proto = PlainRecorder()

    async def main():
        srv, client = await _serve(loop, "tcp", lambda: proto)
        listener_side = proto

        await listener_side.wait("connection_made")
        tls_client = loop.run_in_executor(
            None, lambda: client_ssl_context().wrap_socket(
                client, server_hostname="localhost"))
        cvar.set("start_tls")
        tr = await loop.start_tls(proto.transport, proto, server_ssl_context(),
                                  server_side=True)
        tls_client = await tls_client
        with tls_client:
            await loop.run_in_executor(None, tls_client.sendall, b"data")
            await proto.wait("data_received")
        await proto.wait("connection_lost")
        tr.close()
        srv.close()
        await srv.wait_closed()

    contextvars.copy_context().run(_run, loop, main())
    _only(proto.seen["data_received"])
    _only(proto.seen["connection_lost"])
