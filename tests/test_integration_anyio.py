"""anyio on its asyncio backend with uvffi as the loop factory:
task groups, cancel scopes, memory object streams, TCP streams,
subprocesses, to_thread."""
import asyncio
import os
import signal
import sys

import pytest

anyio = pytest.importorskip(
    "anyio", reason="anyio not installed (pip install .[integration])")

import uvffi  # noqa: E402


def run(func, *args):
    return anyio.run(func, *args, backend="asyncio",
                     backend_options={"loop_factory": uvffi.new_event_loop})


def _on_uvffi():
    return isinstance(asyncio.get_running_loop(), uvffi.Loop)


def test_anyio_task_group_runs_children_on_uvffi():
    async def child(i, out):
        await anyio.sleep(0.01 * (3 - i))
        out.append((i, _on_uvffi()))

    async def main():
        out = []
        async with anyio.create_task_group() as tg:
            for i in range(3):
                tg.start_soon(child, i, out)
        return out

    assert run(main) == [(2, True), (1, True), (0, True)]


def test_anyio_task_group_error_cancels_siblings():
    cancelled = []

    async def sleeper():
        try:
            await anyio.sleep(10)
        except anyio.get_cancelled_exc_class():
            cancelled.append(True)
            raise

    async def boom():
        await anyio.sleep(0.01)
        raise ValueError("boom")

    async def main():
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(sleeper)
                tg.start_soon(boom)
        except BaseException as exc:  # ExceptionGroup on anyio 4
            return exc

    exc = run(main)
    inner = getattr(exc, "exceptions", [exc])
    assert [type(e) for e in inner] == [ValueError]
    assert cancelled == [True]


def test_anyio_cancel_scopes_timeouts_and_shielding():
    async def main():
        t0 = anyio.current_time()
        with anyio.move_on_after(0.05) as scope:
            await anyio.sleep(10)
        elapsed = anyio.current_time() - t0
        with pytest.raises(TimeoutError):
            with anyio.fail_after(0.02):
                await anyio.sleep(10)
        shielded_done = False
        with anyio.CancelScope() as outer:
            outer.cancel()
            with anyio.CancelScope(shield=True):
                await anyio.sleep(0.01)
                shielded_done = True
            await anyio.sleep(10)  # cancelled here, at the next checkpoint
        return scope.cancelled_caught, elapsed, shielded_done, outer.cancelled_caught

    caught, elapsed, shielded_done, outer_caught = run(main)
    assert caught and 0.04 <= elapsed < 5
    assert shielded_done and outer_caught


def test_anyio_memory_object_stream_with_backpressure():
    async def main():
        send, receive = anyio.create_memory_object_stream(2)
        got = []

        async def producer():
            async with send:
                for i in range(50):
                    await send.send(i)

        async def consumer():
            async with receive:
                async for item in receive:
                    got.append(item)

        async with anyio.create_task_group() as tg:
            tg.start_soon(producer)
            tg.start_soon(consumer)
        return got

    assert run(main) == list(range(50))


def test_anyio_tcp_listener_and_connect_tcp_echo():
    async def main():
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
        port = listener.extra(anyio.abc.SocketAttribute.local_port)

        async def handle(stream):
            async with stream:
                async for data in stream:
                    await stream.send(data.upper())

        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, handle)
            async with await anyio.connect_tcp("127.0.0.1", port) as client:
                got = b""
                payload = b"hello uvffi " * 20000
                await client.send(payload)
                while len(got) < len(payload):
                    got += await client.receive()
                peer = client.extra(anyio.abc.SocketAttribute.remote_port)
            tg.cancel_scope.cancel()
        await listener.aclose()
        return got == payload.upper(), peer == port

    assert run(main) == (True, True)


def test_anyio_run_process_and_open_process():
    async def main():
        done = await anyio.run_process(
            [sys.executable, "-c", "import sys; print(sys.stdin.read()[::-1]);"
             " sys.exit(3)"], input=b"abc", check=False)
        async with await anyio.open_process(
                [sys.executable, "-c", "print(input() * 2)"]) as proc:
            await proc.stdin.send(b"xy\n")
            await proc.stdin.aclose()
            out = b""
            async for chunk in proc.stdout:
                out += chunk
            rc = await proc.wait()
        return done.returncode, done.stdout.strip(), out.strip(), rc

    assert run(main) == (3, b"cba", b"xyxy", 0)


def test_anyio_to_thread_and_from_thread():
    import threading

    def work(x):
        # back into the loop from the worker thread
        on_loop = anyio.from_thread.run(_loop_check)
        return x * 2, threading.current_thread() is not threading.main_thread(), on_loop

    async def _loop_check():
        return _on_uvffi()

    async def main():
        return await anyio.to_thread.run_sync(work, 21)

    assert run(main) == (42, True, True)


def test_anyio_asyncio_backend_through_uvffi_install_policy():
    old = asyncio.get_event_loop_policy()
    uvffi.install()
    try:
        async def main():
            await anyio.sleep(0)
            return _on_uvffi()
        assert anyio.run(main, backend="asyncio") is True
    finally:
        asyncio.set_event_loop_policy(old)


def test_anyio_udp_sockets_send_and_receive():
    async def main():
        async with await anyio.create_udp_socket(local_host="127.0.0.1") as a:
            port = a.extra(anyio.abc.SocketAttribute.local_port)
            async with await anyio.create_connected_udp_socket(
                    "127.0.0.1", port) as b:
                await b.send(b"datagram")
                data, (host, _) = await a.receive()
        return data, host

    assert run(main) == (b"datagram", "127.0.0.1")


@pytest.mark.skipif(sys.platform == "win32", reason="Unix sockets")
def test_anyio_unix_listener_and_connect_unix(tmp_path):
    path = str(tmp_path / "sock")

    async def main():
        listener = await anyio.create_unix_listener(path)

        async def handle(stream):
            async with stream:
                await stream.send((await stream.receive()) * 2)

        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, handle)
            async with await anyio.connect_unix(path) as client:
                await client.send(b"ab")
                got = await client.receive()
            tg.cancel_scope.cancel()
        return got

    assert run(main) == b"abab"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_anyio_signal_receiver_gets_the_signal():
    async def main():
        with anyio.open_signal_receiver(signal.SIGUSR1) as signals:
            os.kill(os.getpid(), signal.SIGUSR1)
            async for signum in signals:
                return signum

    assert run(main) == signal.SIGUSR1
