"""Lifecycle under stress: closing a loop with everything still open, a loop
that is never closed, callbacks that raise, fork with a running loop, and
eight loops in eight threads feeding each other.  Scenarios that could kill
the interpreter run in a child process."""
import asyncio
import os
import socket
import textwrap
import threading

import pytest

import uvffi
from _reliability import run_child


def test_closing_a_loop_with_everything_open_releases_all_fds():
    """Transports, a server, a UDP endpoint, a reader, a pending timer, a
    running subprocess and a pending sock_recv, none closed: loop.close()
    must not crash, must leave no libuv handle, and (after GC) the fds are
    back to where they were."""
    code = textwrap.dedent("""
        import asyncio, gc, os, socket, sys, warnings
        import uvffi
        from _reliability import open_fds, collect, fd_targets
        warnings.simplefilter("ignore")

        def one_round():
            loop = uvffi.new_event_loop()
            held = {}
            async def main():
                srv = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
                port = srv.sockets[0].getsockname()[1]
                held["conns"] = [await loop.create_connection(
                    asyncio.Protocol, "127.0.0.1", port) for _ in range(3)]
                held["udp"] = await loop.create_datagram_endpoint(
                    asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
                a, b = socket.socketpair()
                held["pair"] = (a, b)
                loop.add_reader(a.fileno(), lambda: None)
                c, d = socket.socketpair()
                c.setblocking(False)
                held["recv"] = loop.create_task(loop.sock_recv(c, 10))
                held["pair2"] = (c, d)
                loop.call_later(3600, print, "never")
                held["proc"] = await asyncio.create_subprocess_exec(
                    sys.executable, "-c", "import time; time.sleep(30)",
                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
                await asyncio.sleep(0.05)
            loop.run_until_complete(main())
            pid = held["proc"].pid
            loop.close()
            assert loop.is_closed()
            assert not loop._uv_handles, loop._uv_handles
            assert not loop._uv_requests, loop._uv_requests
            # the child may have been reaped by libuv already; it must not
            # be left behind either way
            try:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            for s in held["pair"] + held["pair2"]:
                s.close()

        # libuv opens a process-wide pipe (its signal lock) on the first
        # spawn and keeps it: measure after one round
        one_round()
        collect()
        before = open_fds()
        for _ in range(3):
            one_round()
        collect()
        after = open_fds()
        print("fds", before, after, fd_targets())
        assert after <= before, (before, after)
        print("OK")
    """)
    proc = run_child(code)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK" in proc.stdout


def test_a_loop_never_closed_is_collected_with_a_resource_warning():
    code = textwrap.dedent("""
        import asyncio, gc, warnings
        import uvffi
        from _reliability import collect
        caught = []
        def hook(msg, *a, **k):
            caught.append(msg)
        for _ in range(20):
            loop = uvffi.new_event_loop()
            async def main():
                srv = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
                loop.call_later(3600, print)
                await asyncio.sleep(0)
            loop.run_until_complete(main())
            del main
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            loop = None
            collect()
            kinds = [str(x.message) for x in w if issubclass(x.category, ResourceWarning)]
        print("unclosed loops warned:", sum("unclosed event loop" in k for k in kinds))
        # the process is still fine: a new loop runs
        loop = uvffi.new_event_loop()
        assert loop.run_until_complete(asyncio.sleep(0, "ok")) == "ok"
        loop.close()
        print("OK")
    """)
    proc = run_child(code, env_extra={"PYTHONWARNINGS": "always"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK" in proc.stdout
    warned = int(proc.stdout.split("unclosed loops warned:")[1].split()[0])
    assert warned >= 1  # asyncio's BaseEventLoop.__del__ warning


def test_raising_callbacks_reach_the_exception_handler_and_the_loop_goes_on(loop):
    reported = []
    loop.set_exception_handler(lambda lp, ctx: reported.append(ctx))

    class Boom(asyncio.Protocol):
        def connection_made(self, tr):
            self.tr = tr

        def data_received(self, data):
            raise ValueError("protocol")

    async def main():
        srv = await loop.create_server(Boom, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        a, b = socket.socketpair()
        loop.add_reader(a.fileno(), lambda: 1 / 0)
        b.send(b"x")
        loop.call_soon(lambda: [][1])
        loop.call_later(0.001, lambda: {}["k"])
        tr, pr = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        tr.write(b"trigger")
        for _ in range(200):
            if len({type(c.get("exception")) for c in reported}) >= 4:
                break
            await asyncio.sleep(0.01)
        loop.remove_reader(a.fileno())
        a.close()
        b.close()
        tr.close()
        srv.close()
        await srv.wait_closed()
        return await asyncio.sleep(0, "alive")

    assert loop.run_until_complete(main()) == "alive"
    kinds = {type(c.get("exception")) for c in reported}
    assert {ZeroDivisionError, IndexError, KeyError, ValueError} <= kinds


def test_keyboard_interrupt_from_a_protocol_leaves_the_loop_usable(loop):
    class Interrupting(asyncio.Protocol):
        def data_received(self, data):
            raise KeyboardInterrupt

    async def serve():
        srv = await loop.create_server(Interrupting, "127.0.0.1", 0)
        tr, _ = await loop.create_connection(
            asyncio.Protocol, "127.0.0.1", srv.sockets[0].getsockname()[1])
        tr.write(b"x")
        await asyncio.sleep(5)
        return srv, tr

    task = loop.create_task(serve())
    with pytest.raises(KeyboardInterrupt):
        loop.run_until_complete(task)
    task.cancel()
    with pytest.raises((asyncio.CancelledError, KeyboardInterrupt)):
        loop.run_until_complete(task)
    assert loop.run_until_complete(asyncio.sleep(0.01, "again")) == "again"


def test_exception_handler_that_raises_does_not_kill_the_loop(loop):
    def bad_handler(lp, ctx):
        raise RuntimeError("handler broke")
    loop.set_exception_handler(bad_handler)
    loop.call_soon(lambda: 1 / 0)
    a, b = socket.socketpair()
    try:
        loop.add_reader(a.fileno(), lambda: 1 / 0)
        b.send(b"x")
        assert loop.run_until_complete(asyncio.sleep(0.02, 7)) == 7
    finally:
        loop.remove_reader(a.fileno())
        a.close()
        b.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_fork_with_a_running_loop_child_serves_tcp_on_a_new_loop(loop):
    """fork() from inside a coroutine of a running uvffi loop; the child
    builds a fresh loop, serves an echo TCP server, and exits; the parent's
    loop keeps working and talks to it."""
    rfd, wfd = os.pipe()

    async def main():
        await asyncio.sleep(0)
        pid = os.fork()
        if pid == 0:  # child: never return into pytest
            status = 1
            try:
                os.close(rfd)
                child = uvffi.new_event_loop()
                asyncio.set_event_loop(child)

                served = child.create_future()

                class Echo(asyncio.Protocol):
                    def connection_made(self, tr):
                        self.tr = tr

                    def data_received(self, data):
                        self.tr.write(data)

                    def connection_lost(self, exc):
                        if not served.done():
                            served.set_result(None)

                async def serve():
                    srv = await child.create_server(Echo, "127.0.0.1", 0)
                    os.write(wfd, b"%d\n" % srv.sockets[0].getsockname()[1])
                    await asyncio.wait_for(served, 15)  # the parent's visit
                    srv.close()
                    await srv.wait_closed()
                child.run_until_complete(serve())
                child.close()
                status = 0
            finally:
                os._exit(status)
        os.close(wfd)
        port = int(await asyncio.wait_for(_read_line(loop, rfd), 10))
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"ping from parent\n")
        line = await asyncio.wait_for(reader.readline(), 10)
        writer.close()
        await writer.wait_closed()
        return pid, line

    pid, line = loop.run_until_complete(asyncio.wait_for(main(), 20))
    os.close(rfd)
    _, status = os.waitpid(pid, 0)
    assert line == b"ping from parent\n"
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


async def _read_line(loop, fd):
    out = b""
    while not out.endswith(b"\n"):
        fut = loop.create_future()
        loop.add_reader(fd, fut.set_result, None)
        try:
            await fut
        finally:
            loop.remove_reader(fd)
        chunk = os.read(fd, 64)
        if not chunk:
            break
        out += chunk
    return out


@pytest.mark.parametrize("per_thread", [300])
def test_eight_threads_eight_loops_feed_each_other(per_thread):
    n = 8
    loops = [None] * n
    received = [0] * n
    ready = threading.Barrier(n + 1)
    done = threading.Event()
    errors = []
    total = n * per_thread

    def deliver(k, hops):
        received[k] += 1
        if hops:  # pass it on: a chain through all the loops
            loops[(k + 1) % n].call_soon_threadsafe(deliver, (k + 1) % n, hops - 1)
        elif sum(received) >= total * 2:
            done.set()

    def worker(k):
        try:
            loop = uvffi.new_event_loop()
            loops[k] = loop
            loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))
            ready.wait(10)

            async def feed():
                for m in range(per_thread):
                    loops[(k + m) % n].call_soon_threadsafe(deliver, (k + m) % n, 1)
                    if m % 50 == 0:
                        await asyncio.sleep(0)
            loop.create_task(feed())
            loop.run_forever()
            loop.close()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(n)]
    for t in threads:
        t.start()
    ready.wait(10)
    finished = done.wait(30)
    # stop them while others may still be posting to them
    for lp in loops:
        try:
            lp.call_soon_threadsafe(lp.stop)
        except RuntimeError:
            pass
    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors
    assert finished and sum(received) == total * 2


def test_call_soon_threadsafe_racing_close_raises_not_crashes():
    """Threads posting to a loop while it is closed: each post either lands
    or raises RuntimeError('Event loop is closed'); never a crash."""
    code = textwrap.dedent("""
        import threading, time, uvffi
        outcomes = {"ok": 0, "closed": 0}
        for round in range(20):
            loop = uvffi.new_event_loop()
            stop = threading.Event()
            def hammer():
                while not stop.is_set():
                    try:
                        loop.call_soon_threadsafe(lambda: None)
                        outcomes["ok"] += 1
                    except RuntimeError:
                        outcomes["closed"] += 1
                        return
            ts = [threading.Thread(target=hammer) for _ in range(3)]
            for t in ts:
                t.start()
            loop.call_later(0.005, loop.stop)
            loop.run_forever()
            loop.close()
            time.sleep(0.002)
            stop.set()
            for t in ts:
                t.join(5)
        print(outcomes)
        print("OK")
    """)
    proc = run_child(code)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK" in proc.stdout


def test_watched_fd_closed_without_remove_reader_does_not_block_its_number(loop):
    """add_reader(fd), then the program closes the fd and forgets
    remove_reader (asyncio tolerates it).  libuv keeps the number in its
    watcher table, so a new handle on the reused number used to fail with
    EEXIST: the loop's own signal wake-up socket (run_until_complete raised
    FileExistsError), a server's socket, a transport's dup."""
    for _ in range(3):
        a, b = socket.socketpair()
        loop.add_reader(a.fileno(), lambda: None)
        a.close()
        b.close()
    assert loop.run_until_complete(asyncio.sleep(0, "ran")) == "ran"

    async def main():
        srv = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        for _ in range(3):
            x, y = socket.socketpair()
            loop.add_reader(y.fileno(), lambda: None)
            await asyncio.sleep(0.01)  # registered with epoll by now
            x.close()
            y.close()  # the next socket and its dup take these numbers
            tr, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
            tr.close()
        srv.close()
        await srv.wait_closed()
        return "served"
    assert loop.run_until_complete(main()) == "served"
