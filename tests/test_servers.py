"""create_server and asyncio's Server object over uv_listen."""
import asyncio
import errno
import gc
import socket
import sys

import pytest

from _netutil import Recorder, run
from _childenv import child_env


async def _roundtrip(loop, port, host="127.0.0.1", payload=b"ping"):
    r, w = await asyncio.open_connection(host, port)
    w.write(payload)
    got = await r.readexactly(len(payload))
    w.close()
    await w.wait_closed()
    return got


def _echo_factory(loop, store=None):
    def factory():
        p = Recorder(loop, echo=True)
        if store is not None:
            store.append(p)
        return p
    return factory


def test_server_object_api(any_loop):
    loop = any_loop

    async def main():
        server = await loop.create_server(_echo_factory(loop), "127.0.0.1", 0)
        socks = server.sockets
        info = (type(socks), len(socks), server.is_serving(),
                server.get_loop() is loop)
        port = socks[0].getsockname()[1]
        got = await _roundtrip(loop, port)
        server.close()
        serving_after = server.is_serving()
        await server.wait_closed()
        return info, got, serving_after, server.sockets

    info, got, serving_after, socks_after = run(loop, main())
    assert info == (tuple, 1, True, True)
    assert got == b"ping"
    assert serving_after is False
    assert socks_after == ()


def test_closed_server_refuses_connections(any_loop):
    loop = any_loop

    async def main():
        server = await loop.create_server(_echo_factory(loop), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)

    with pytest.raises(ConnectionRefusedError):
        run(loop, main())


def test_start_serving_false_then_start_serving(any_loop):
    loop = any_loop

    async def main():
        server = await loop.create_server(_echo_factory(loop), "127.0.0.1", 0,
                                          start_serving=False)
        before = server.is_serving()
        port = server.sockets[0].getsockname()[1]
        await server.start_serving()
        after = server.is_serving()
        got = await _roundtrip(loop, port)
        await server.start_serving()  # again: harmless
        server.close()
        await server.wait_closed()
        return before, after, got

    assert run(loop, main()) == (False, True, b"ping")


def test_async_context_manager_closes(any_loop):
    loop = any_loop

    async def main():
        async with await loop.create_server(_echo_factory(loop),
                                            "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            got = await _roundtrip(loop, port)
        return got, server.is_serving()

    assert run(loop, main()) == (b"ping", False)


def test_serve_forever_until_cancelled(any_loop):
    loop = any_loop

    async def main():
        server = await loop.create_server(_echo_factory(loop), "127.0.0.1", 0,
                                          start_serving=False)
        port = server.sockets[0].getsockname()[1]
        task = loop.create_task(server.serve_forever())
        await asyncio.sleep(0)
        got = await _roundtrip(loop, port)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return got, server.is_serving()

    assert run(loop, main()) == (b"ping", False)


def test_host_sequence_and_none_make_one_socket_each(any_loop):
    loop = any_loop

    async def main():
        s1 = await loop.create_server(_echo_factory(loop),
                                      ["127.0.0.1", "127.0.0.1"], 0,
                                      reuse_address=True,
                                      family=socket.AF_INET)
        n_seq = len(s1.sockets)
        s1.close()
        await s1.wait_closed()
        s2 = await loop.create_server(_echo_factory(loop), None, 0,
                                      family=socket.AF_INET,
                                      flags=socket.AI_PASSIVE)
        names = [s.getsockname() for s in s2.sockets]
        got = await _roundtrip(loop, names[0][1])
        s2.close()
        await s2.wait_closed()
        return n_seq, names, got

    n_seq, names, got = run(loop, main())
    assert n_seq == 1  # duplicates are collapsed, as asyncio does
    assert names[0][0] == "0.0.0.0"
    assert got == b"ping"


def test_reuse_port_lets_two_servers_share(any_loop):
    if not hasattr(socket, "SO_REUSEPORT"):
        pytest.skip("no SO_REUSEPORT")
    loop = any_loop

    async def main():
        a = await loop.create_server(_echo_factory(loop), "127.0.0.1", 0,
                                     reuse_port=True, backlog=5)
        port = a.sockets[0].getsockname()[1]
        b = await loop.create_server(_echo_factory(loop), "127.0.0.1", port,
                                     reuse_port=True)
        opt = b.sockets[0].getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
        got = await _roundtrip(loop, port)
        for s in (a, b):
            s.close()
            await s.wait_closed()
        return opt, got

    opt, got = run(loop, main())
    assert opt and got == b"ping"


def test_address_in_use_error(any_loop):
    loop = any_loop
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        with pytest.raises(OSError) as info:
            run(loop, loop.create_server(asyncio.Protocol, "127.0.0.1",
                                         busy.getsockname()[1]))
        assert info.value.errno == errno.EADDRINUSE
        assert "address already in use" in str(info.value)
    finally:
        busy.close()


def test_create_server_with_sock(any_loop):
    loop = any_loop

    async def main():
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        server = await loop.create_server(_echo_factory(loop), sock=sock)
        same = server.sockets[0].fileno() == sock.fileno()
        got = await _roundtrip(loop, sock.getsockname()[1])
        server.close()
        await server.wait_closed()
        return same, got, sock.fileno()

    same, got, fd_after = run(loop, main())
    assert same and got == b"ping" and fd_after == -1


def test_create_server_argument_errors(any_loop):
    loop = any_loop
    with pytest.raises(TypeError, match="ssl argument must be an SSLContext"):
        run(loop, loop.create_server(asyncio.Protocol, "127.0.0.1", 0,
                                     ssl=True))
    with pytest.raises(ValueError, match="ssl_handshake_timeout is only"):
        run(loop, loop.create_server(asyncio.Protocol, "127.0.0.1", 0,
                                     ssl_handshake_timeout=1))


def test_many_concurrent_clients(any_loop):
    loop = any_loop

    async def main():
        protos = []
        server = await loop.create_server(_echo_factory(loop, protos),
                                          "127.0.0.1", 0, backlog=200)
        port = server.sockets[0].getsockname()[1]
        results = await asyncio.gather(*[
            _roundtrip(loop, port, payload=b"c%d" % i) for i in range(50)])
        server.close()
        await server.wait_closed()
        return results, len(protos)

    results, n = run(loop, main())
    assert results == [b"c%d" % i for i in range(50)]
    assert n == 50


def test_wait_closed_waits_for_connections(any_loop):
    loop = any_loop

    async def main():
        protos = []
        server = await loop.create_server(_echo_factory(loop, protos),
                                          "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"x")
        await r.readexactly(1)
        server.close()
        waiter = loop.create_task(server.wait_closed())
        await asyncio.sleep(0.1)
        early = waiter.done()
        w.close()
        await asyncio.wait_for(waiter, 10)
        return early

    early = run(loop, main())
    if sys.version_info >= (3, 12, 1):
        assert early is False  # 3.12.1+: wait_closed waits for clients


@pytest.mark.skipif(sys.version_info < (3, 13), reason="3.13+ API")
@pytest.mark.parametrize("how", ["close_clients", "abort_clients"])
def test_close_and_abort_clients(any_loop, how):
    loop = any_loop

    async def main():
        protos = []
        server = await loop.create_server(_echo_factory(loop, protos),
                                          "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"x")
        await r.readexactly(1)
        server.close()
        getattr(server, how)()
        exc = await protos[0].lost
        tail = await r.read()
        await asyncio.wait_for(server.wait_closed(), 10)
        w.close()
        return exc, tail

    exc, tail = run(loop, main())
    assert exc is None and tail == b""


def test_protocol_factory_error_drops_connection(any_loop):
    loop = any_loop

    def bad_factory():
        raise ZeroDivisionError("no protocol")

    async def main():
        server = await loop.create_server(bad_factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        r, w = await asyncio.open_connection("127.0.0.1", port)
        tail = None
        for _ in range(100):
            # asyncio leaves the accepted socket to the garbage collector,
            # which on PyPy does not run by itself here
            gc.collect()
            try:
                tail = await asyncio.wait_for(r.read(), 0.1)
                break
            except asyncio.TimeoutError:
                continue
            except ConnectionResetError:
                tail = b""
                break
        w.close()
        server.close()
        await server.wait_closed()
        return tail

    assert run(loop, main()) == b""


def test_accept_out_of_resources_logs_and_retries(loop, monkeypatch):
    # EMFILE simulated on any platform (the real one: the test below):
    # asyncio logs it, stops accepting for ACCEPT_RETRY_DELAY, then resumes.
    from asyncio import constants
    monkeypatch.setattr(constants, "ACCEPT_RETRY_DELAY", 0.05)
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    class FailingOnce:
        def __init__(self, sock):
            self.sock = sock
            self.failed = False
            self.family = sock.family

        def fileno(self):
            return self.sock.fileno()

        def accept(self):
            if not self.failed:
                self.failed = True
                raise OSError(errno.EMFILE, "Too many open files")
            return self.sock.accept()

    async def main():
        server = await loop.create_server(_echo_factory(loop), "127.0.0.1", 0)
        sock = server.sockets[0]
        port = sock.getsockname()[1]
        (listener,) = loop._uv_listeners.values()
        listener.sock = FailingOnce(listener.sock)
        got = await _roundtrip(loop, port)
        server.close()
        await server.wait_closed()
        return listener.sock.failed, got

    failed, got = run(loop, main())
    assert failed and got == b"ping"
    assert len(contexts) == 1
    assert contexts[0]["message"] == "socket.accept() out of system resource"
    assert contexts[0]["exception"].errno == errno.EMFILE


def test_server_close_during_loop_close_is_safe(loop_factory):
    loop = loop_factory()
    asyncio.set_event_loop(loop)
    try:
        server = loop.run_until_complete(
            loop.create_server(asyncio.Protocol, "127.0.0.1", 0))
        port = server.sockets[0].getsockname()[1]
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    server.close()  # after the loop: no crash, the socket is closed
    assert server.sockets == ()
    s = socket.socket()
    try:
        with pytest.raises(ConnectionRefusedError):
            s.connect(("127.0.0.1", port))
    finally:
        s.close()


_EMFILE_SERVER = r"""
import asyncio, os, resource, sys
import uvffi
from asyncio import constants
constants.ACCEPT_RETRY_DELAY = 0.2

class Hold(asyncio.Protocol):
    def connection_made(self, tr):
        self.tr = tr
    def data_received(self, data):
        self.tr.write(data)

async def main():
    loop = asyncio.get_running_loop()
    def handler(lp, ctx):
        print("HANDLER", ctx["message"], ctx["exception"].errno, flush=True)
    loop.set_exception_handler(handler)
    server = await loop.create_server(Hold, "127.0.0.1", 0)
    nfds = len(os.listdir("/proc/self/fd"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (nfds + 6, nfds + 6))
    print("PORT", server.sockets[0].getsockname()[1], flush=True)
    await asyncio.sleep(float(sys.argv[1]))
    server.close()

uvffi.run(main())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")
def test_real_emfile_is_logged_and_accepting_resumes(tmp_path):
    import subprocess
    script = tmp_path / "emfile_server.py"
    script.write_text(_EMFILE_SERVER)
    env = child_env()
    proc = subprocess.Popen([sys.executable, str(script), "6"],
                            stdout=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert line.startswith("PORT"), line
        port = int(line.split()[1])
        clients = []
        for _ in range(20):  # more than the server has fds for
            c = socket.create_connection(("127.0.0.1", port), timeout=5)
            clients.append(c)
        line = proc.stdout.readline()
        assert line.startswith("HANDLER socket.accept() out of system "
                               "resource %d" % errno.EMFILE), line
        for c in clients:
            c.close()
        # after ACCEPT_RETRY_DELAY the server listens again and echoes
        ok = False
        for _ in range(40):
            try:
                with socket.create_connection(("127.0.0.1", port),
                                              timeout=2) as c:
                    c.sendall(b"alive")
                    if c.recv(5) == b"alive":
                        ok = True
                        break
            except OSError:
                pass
            import time
            time.sleep(0.1)
        assert ok
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def test_debug_mode_logs_and_still_serves(any_loop, caplog):
    import logging
    loop = any_loop
    loop.set_debug(True)
    caplog.set_level(logging.DEBUG, logger="asyncio")

    def bad_factory():
        raise ZeroDivisionError("factory failed")

    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    async def main():
        good = await loop.create_server(_echo_factory(loop), "127.0.0.1", 0)
        got = await _roundtrip(loop, good.sockets[0].getsockname()[1])
        bad = await loop.create_server(bad_factory, "127.0.0.1", 0)
        r, w = await asyncio.open_connection(
            "127.0.0.1", bad.sockets[0].getsockname()[1])
        for _ in range(100):
            if contexts:
                break
            await asyncio.sleep(0.02)
        w.close()
        for s in (good, bad):
            s.close()
            await s.wait_closed()
        return got

    assert run(loop, main()) == b"ping"
    assert any("got a new connection" in r.getMessage()
               for r in caplog.records)
    messages = [c["message"] for c in contexts]
    assert "Error on transport creation for incoming connection" in messages
    ctx = contexts[messages.index(
        "Error on transport creation for incoming connection")]
    assert isinstance(ctx["exception"], ZeroDivisionError)
