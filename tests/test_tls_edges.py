"""TLS edge cases that must neither fail nor hang (issue #22, item 8):
data after close_notify, shutdown while reading is paused, transport EOF
while reading is paused, buffered protocols given to start_tls, the first
data after the handshake.

The peer is a blocking socket in a thread that drives an ``ssl.SSLObject``
by hand, so it can do what a well-behaved TLS stack would not (send data
after our close_notify, half-close TCP without close_notify).  Every
blocking call of the peer has a socket timeout; every wait of the loop has
a timeout.

Where asyncio's own loop (3.11+) gets a case wrong, the test runs on uvffi
only and says what asyncio does (uvffi's fixes are in transports/tls.py).
"""
import asyncio
import socket
import ssl
import sys
import threading

import pytest

from _netutil import Recorder, client_ssl_context, run, server_ssl_context

_NEW_SSLPROTO = sys.version_info >= (3, 11)
new_sslproto_only = pytest.mark.skipif(
    not _NEW_SSLPROTO, reason="Python < 3.11 has the older sslproto")

_PEER_TIMEOUT = 10
# the callbacks of a TLS connection we closed, once the peer's close_notify
# came: the older sslproto (3.9/3.10, PyPy 3.9) calls no eof_received()
_CLOSED_BY_US = (["made", "eof", "lost"] if _NEW_SSLPROTO
                 else ["made", "lost"])


class _Peer:
    """A TLS server in a thread, on a blocking socket, TLS by MemoryBIO."""

    def __init__(self, loop, script, handshake=True):
        self.loop = loop
        self.script = script
        self.handshake = handshake
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.addr = self.listener.getsockname()
        self.done = loop.create_future()
        self.thread = threading.Thread(target=self._main, daemon=True)
        self.thread.start()

    def _main(self):
        try:
            self.listener.settimeout(_PEER_TIMEOUT)
            sock, _ = self.listener.accept()
            with sock:
                sock.settimeout(_PEER_TIMEOUT)
                self.sock = sock
                self.incoming = ssl.MemoryBIO()
                self.outgoing = ssl.MemoryBIO()
                self.sslobj = server_ssl_context().wrap_bio(
                    self.incoming, self.outgoing, server_side=True)
                if self.handshake:
                    self.until(self.sslobj.do_handshake)
                result = self.script(self)
        except BaseException as exc:
            self.loop.call_soon_threadsafe(_set_exception, self.done, exc)
        else:
            self.loop.call_soon_threadsafe(_set_result, self.done, result)
        finally:
            self.listener.close()

    def flush(self):
        data = self.outgoing.read()
        if data:
            self.sock.sendall(data)

    def until(self, op, *args):
        """Run an SSLObject operation, feeding it from the socket."""
        while True:
            try:
                result = op(*args)
            except ssl.SSLWantReadError:
                self.flush()
                data = self.sock.recv(65536)
                if not data:
                    raise ConnectionError("client closed the socket")
                self.incoming.write(data)
            else:
                self.flush()
                return result

    def send(self, data):
        self.sslobj.write(data)
        self.flush()

    def recv_exactly(self, n):
        got = b""
        while len(got) < n:
            got += self.until(self.sslobj.read, n - len(got))
        return got

    def recv_close_notify(self):
        """Read until the client's close_notify; return the data before it."""
        got = b""
        while True:
            try:
                chunk = self.until(self.sslobj.read, 65536)
            except ssl.SSLZeroReturnError:
                return got
            if not chunk:
                return got
            got += chunk

    async def connect(self, factory, **kwargs):
        """The loop's TLS client connection to this peer."""
        return await self.loop.create_connection(
            factory, *self.addr, ssl=client_ssl_context(),
            server_hostname="localhost", **kwargs)

    async def finish(self, protocol):
        """connection_lost()'s exception, once the peer's script is done
        too; and the peer's result."""
        exc = await asyncio.wait_for(protocol.lost, 10)
        return exc, await asyncio.wait_for(self.done, 10)

    def wait_closed(self):
        """Wait for the client to close the TCP connection."""
        while self.sock.recv(65536):
            pass


def _set_result(fut, value):
    if not fut.done():
        fut.set_result(value)


def _set_exception(fut, exc):
    if not fut.done():
        fut.set_exception(exc)


def _catch_exception_handler(loop):
    errors = []
    loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))
    return errors


# -- 1. application data after the peer's close_notify ----------------------

def test_data_after_our_close_notify_is_discarded(loop):
    # asyncio (3.9-3.13) fails the shutdown with SSLError
    # APPLICATION_DATA_AFTER_CLOSE_NOTIFY (bpo-39951): uvffi only.
    errors = _catch_exception_handler(loop)

    def script(peer):
        assert peer.recv_exactly(4) == b"ping"
        peer.send(b"pong")
        peer.recv_close_notify()
        # legal in TLS 1.3: our side of the stream is still open
        peer.send(b"trailing data")
        try:
            peer.sslobj.unwrap()
        except ssl.SSLWantReadError:
            pass
        peer.flush()
        peer.wait_closed()

    async def main():
        peer = _Peer(loop, script)
        tr, pr = await peer.connect(lambda: Recorder(loop))
        tr.write(b"ping")
        await pr.wait_data(4)
        tr.close()
        exc, _ = await peer.finish(pr)
        return exc, bytes(pr.data), pr.events

    exc, data, events = run(loop, main())
    assert exc is None
    assert data == b"pong"  # nothing after close()
    assert events == _CLOSED_BY_US
    assert errors == []


# -- 2. a shutdown started while reading is paused -----------------------------

@pytest.mark.parametrize("size", [13, 1024 * 1024])
def test_shutdown_while_reading_paused_completes(loop, size):
    # asyncio (3.11-3.13): unwrap() meets the unread data and the shutdown
    # fails with SSLError (eof_received never comes); with more unread data
    # than the read buffer's high-water mark, the socket's reading stays
    # paused and nothing happens until ssl_shutdown_timeout; and as
    # connection_made() pauses reading, asyncio does not even send the
    # client's Finished until close(), so the peer waits: uvffi only.
    errors = _catch_exception_handler(loop)
    sent = threading.Event()

    def script(peer):
        peer.send(b"u" * size)
        sent.set()
        got = peer.recv_close_notify()
        peer.until(peer.sslobj.unwrap)
        peer.wait_closed()
        return got

    async def main():
        peer = _Peer(loop, script)

        class Paused(Recorder):
            def connection_made(self, transport):
                transport.pause_reading()
                super().connection_made(transport)

        tr, pr = await peer.connect(lambda: Paused(loop))
        await loop.run_in_executor(None, sent.wait, 10)
        tr.close()
        exc, got = await peer.finish(pr)
        return exc, bytes(pr.data), pr.events, got

    exc, data, events, got = run(loop, main())
    assert exc is None
    assert data == b""
    assert events == _CLOSED_BY_US
    assert got == b""
    assert errors == []


def test_shutdown_times_out_when_the_peer_never_answers(any_loop, monkeypatch):
    # asyncio 3.9/3.10 (and PyPy 3.9) have no ssl_shutdown_timeout and keep
    # the connection open for ever: uvffi only there, where the parameter
    # does not exist either and its default (30 s) is shortened here.
    loop = any_loop
    if _NEW_SSLPROTO:
        timeout = {"ssl_shutdown_timeout": 0.3}
    elif loop.kind == "asyncio":
        pytest.skip("asyncio's older sslproto waits for ever")
    else:
        from uvffi.transports import tls as tlsprotocol
        monkeypatch.setattr(tlsprotocol, "_SSL_SHUTDOWN_TIMEOUT", 0.3)
        timeout = {}

    def script(peer):
        peer.recv_close_notify()  # and no answer
        peer.wait_closed()

    async def main():
        peer = _Peer(loop, script)
        tr, pr = await peer.connect(lambda: Recorder(loop), **timeout)
        tr.close()
        exc, _ = await peer.finish(pr)
        return exc

    exc = run(loop, main())
    assert isinstance(exc, asyncio.TimeoutError), exc


def test_peer_close_notify_reaches_eof_received(any_loop):
    # asyncio's older sslproto (3.9/3.10, PyPy 3.9) calls no eof_received()
    # when the peer closes the TLS stream: uvffi only there.
    loop = any_loop
    if loop.kind == "asyncio" and not _NEW_SSLPROTO:
        pytest.skip("asyncio's older sslproto calls no eof_received()")

    def script(peer):
        peer.send(b"bye")
        try:
            peer.sslobj.unwrap()  # our close_notify (no wait for theirs)
        except ssl.SSLWantReadError:
            pass
        peer.flush()
        peer.wait_closed()

    async def main():
        peer = _Peer(loop, script)
        tr, pr = await peer.connect(lambda: Recorder(loop))
        exc, _ = await peer.finish(pr)
        return exc, bytes(pr.data), pr.events

    exc, data, events = run(loop, main())
    assert (exc, data, events) == (None, b"bye", ["made", "eof", "lost"])


# -- 3. transport EOF while reading is paused -----------------------------------

class _PauseOnHello(Recorder):
    """Answers "hello" with "world" and pauses reading."""

    def data_received(self, data):
        super().data_received(data)
        if data == b"hello":
            self.transport.write(b"world")
            self.transport.pause_reading()


def _extra_and_eof_while_paused(loop, close_notify, settle, then):
    """The peer sends hello, waits for world (the client pauses reading on
    hello), sends "extra" and ends the stream: a TCP EOF, after its
    close_notify if *close_notify*.  The client waits for that (*settle*
    seconds more for the EOF to reach its paused transport), then calls
    then(transport).  Returns connection_lost()'s exception, the data the
    client got, its callbacks and what reached the exception handler."""
    errors = _catch_exception_handler(loop)
    eof_sent = threading.Event()

    def script(peer):
        peer.send(b"hello")
        assert peer.recv_exactly(5) == b"world"
        peer.send(b"extra")
        if close_notify:
            try:
                peer.sslobj.unwrap()
            except ssl.SSLWantReadError:
                pass
            peer.flush()
        peer.sock.shutdown(socket.SHUT_WR)
        eof_sent.set()
        peer.wait_closed()

    async def main():
        peer = _Peer(loop, script)
        tr, pr = await peer.connect(lambda: _PauseOnHello(loop))
        await loop.run_in_executor(None, eof_sent.wait, 10)
        if settle:
            await asyncio.sleep(settle)
            assert not pr.lost.done()
        then(tr)
        exc, _ = await peer.finish(pr)
        return exc, bytes(pr.data), pr.events

    return run(loop, main()) + (errors,)


def _resume(transport):
    transport.resume_reading()


def _close(transport):
    transport.close()


def _skip_on_older_asyncio(loop):
    if loop.kind == "asyncio" and not _NEW_SSLPROTO:
        pytest.skip("asyncio's older sslproto calls no eof_received() here")


def test_tcp_eof_without_close_notify_while_paused_keeps_data(any_loop):
    # asyncio keeps what arrived for resume_reading(), then eof_received()
    # (uvloop drops it and ends the connection at once; we follow asyncio)
    _skip_on_older_asyncio(any_loop)
    assert _extra_and_eof_while_paused(any_loop, False, 0.2, _resume) == (
        None, b"helloextra", ["made", "eof", "lost"], [])


def test_tcp_eof_just_after_resume_reading_delivers_the_data(any_loop):
    # CPython's test_ssl.test_shutdown_timeout_handler_not_set: the
    # application resumes as soon as it learns of the EOF, which reaches
    # the TLS protocol after the resume; what arrived must not be dropped
    _skip_on_older_asyncio(any_loop)
    assert _extra_and_eof_while_paused(any_loop, False, 0, _resume) == (
        None, b"helloextra", ["made", "eof", "lost"], [])


def test_close_after_a_tcp_eof_while_paused_finishes(loop):
    # asyncio (3.11-3.13) waits for a resume_reading() that never comes:
    # close() in the FLUSHING state does nothing.  uvffi drops the kept data
    # (the application closed) and finishes: uvffi only (also with the
    # older sslproto, where uvffi holds what arrives while paused).
    assert _extra_and_eof_while_paused(loop, False, 0.2, _close) == (
        None, b"hello", ["made", "lost"], [])


def test_tcp_eof_after_close_notify_while_paused_keeps_data(any_loop):
    # the stream is complete: everything, then eof_received(), once the
    # application resumes reading (asyncio's behaviour, kept)
    _skip_on_older_asyncio(any_loop)
    assert _extra_and_eof_while_paused(any_loop, True, 0.2, _resume) == (
        None, b"helloextra", ["made", "eof", "lost"], [])


# -- 4. buffered protocols given to start_tls -----------------------------------

class _DuckBuffered(asyncio.BaseProtocol):
    """get_buffer/buffer_updated without subclassing BufferedProtocol."""

    def __init__(self, loop):
        self.buf = bytearray(1)  # one byte at a time: many calls
        self.data = bytearray()
        self.calls = []
        self.got = loop.create_future()
        self.lost = loop.create_future()

    def get_buffer(self, sizehint):
        self.calls.append("get_buffer")
        return self.buf

    def buffer_updated(self, nbytes):
        self.calls.append("buffer_updated")
        self.data += self.buf[:nbytes]
        if len(self.data) >= 4 and not self.got.done():
            self.got.set_result(bytes(self.data))

    def eof_received(self):
        self.calls.append("eof_received")

    def connection_lost(self, exc):
        self.lost.set_result(exc)


class _SubclassBuffered(_DuckBuffered, asyncio.BufferedProtocol):
    pass


def _starttls_peer_script(peer):
    plain = b""
    while len(plain) < 9:
        plain += peer.sock.recv(9 - len(plain))
    assert plain == b"STARTTLS\n"
    peer.until(peer.sslobj.do_handshake)
    peer.send(b"tls!")
    peer.recv_close_notify()
    peer.until(peer.sslobj.unwrap)


def _start_tls_with(loop, proto_class):
    async def main():
        peer = _Peer(loop, _starttls_peer_script, handshake=False)
        tr, pr = await loop.create_connection(lambda: proto_class(loop),
                                              *peer.addr)
        tr.write(b"STARTTLS\n")
        tls = await loop.start_tls(tr, pr, client_ssl_context(),
                                   server_hostname="localhost",
                                   ssl_handshake_timeout=10)
        got = await asyncio.wait_for(pr.got, 10)
        tls.close()
        exc, _ = await peer.finish(pr)
        return got, exc, pr.calls

    return run(loop, main())


def test_start_tls_feeds_buffered_protocol(any_loop):
    got, exc, calls = _start_tls_with(any_loop, _SubclassBuffered)
    assert got == b"tls!" and exc is None
    assert calls.count("buffer_updated") >= 4


def test_start_tls_feeds_duck_typed_buffered_protocol(loop):
    # asyncio only feeds BufferedProtocol subclasses through get_buffer:
    # AttributeError 'data_received' there; uvffi feeds duck-typed ones as
    # its plain transports do (issue #22 item 9).
    got, exc, calls = _start_tls_with(loop, _DuckBuffered)
    assert got == b"tls!" and exc is None
    assert calls.count("buffer_updated") >= 4


def test_create_connection_ssl_duck_typed_buffered_protocol(loop):
    def script(peer):
        peer.send(b"tls!")
        peer.recv_close_notify()
        peer.until(peer.sslobj.unwrap)

    async def main():
        peer = _Peer(loop, script)
        tr, pr = await peer.connect(lambda: _DuckBuffered(loop))
        got = await asyncio.wait_for(pr.got, 10)
        tr.close()
        exc, _ = await peer.finish(pr)
        return got, exc

    assert run(loop, main()) == (b"tls!", None)


# -- 5. the first data right after the handshake --------------------------------

def test_first_data_after_handshake_follows_start_tls_return(loop):
    # The client's first data comes in the same segment as its last
    # handshake message.  asyncio (3.11-3.13) passes it to the protocol
    # before start_tls() has returned the TLS transport to its caller, so
    # a reply can only go out on the plain transport: uvffi only.
    ctx = client_ssl_context()

    def client(addr, result):
        try:
            with socket.create_connection(addr, timeout=_PEER_TIMEOUT) as sock:
                assert sock.recv(3) == b"GO\n"
                incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
                sslobj = ctx.wrap_bio(incoming, outgoing,
                                      server_hostname="localhost")
                while True:
                    try:
                        sslobj.do_handshake()
                        break
                    except ssl.SSLWantReadError:
                        if outgoing.pending:
                            sock.sendall(outgoing.read())
                        incoming.write(sock.recv(65536))
                sslobj.write(b"hello")
                sock.sendall(outgoing.read())  # Finished + data, one send
                while True:
                    try:
                        result.append(sslobj.read(5))
                        return
                    except ssl.SSLWantReadError:
                        data = sock.recv(65536)
                        if not data:
                            raise ConnectionError("server closed")
                        incoming.write(data)
        except BaseException as exc:
            result.append(exc)

    async def main():
        protos = []

        class Upgrader(asyncio.Protocol):
            tls = None
            tls_known_at_data = None

            def connection_made(self, transport):
                protos.append(self)
                self.plain = transport
                transport.pause_reading()  # nothing plain after GO
                transport.write(b"GO\n")
                loop.create_task(self.upgrade())

            async def upgrade(self):
                self.tls = await loop.start_tls(
                    self.plain, self, server_ssl_context(), server_side=True,
                    ssl_handshake_timeout=10)

            def data_received(self, data):
                self.tls_known_at_data = self.tls is not None
                (self.tls or self.plain).write(data)

        server = await loop.create_server(Upgrader, "127.0.0.1", 0)
        result = []
        thread = threading.Thread(
            target=client, args=(server.sockets[0].getsockname(), result),
            daemon=True)
        thread.start()
        await loop.run_in_executor(None, thread.join, 15)
        proto = protos[0]
        if proto.tls is not None:
            proto.tls.close()
        server.close()
        await server.wait_closed()
        return result, proto.tls_known_at_data

    result, known = run(loop, main())
    assert result == [b"hello"]
    assert known is True
