"""uvffi.embedding.start()/GuestRun: asyncio.run's life cycle for a guest
on a host's loop, driven by the host's own uv_run iterations."""
import asyncio
import gc
import threading

import pytest

from uvffi import embedding
from uvffi._uv import lib
from _uvhost import Host, close_host


@pytest.fixture
def host():
    h = Host()
    yield h
    gc.collect()  # a pending task destroyed now would report to h.errors
    close_host(h)


def start(host, main, **kw):
    run = embedding.start(host.address, main, **kw)
    run.loop.set_exception_handler(lambda lp, ctx: host.errors.append(ctx))
    return run


def test_main_result_after_the_ending_ran_inside_the_hosts_uv_run(host):
    events = []
    kept = []

    async def leftover():
        try:
            await asyncio.sleep(3600)
        finally:
            events.append("leftover cancelled")

    async def agen():
        try:
            yield 1
            yield 2
        finally:
            events.append("asyncgen finalized")

    async def main():
        asyncio.get_running_loop().create_task(leftover())
        gen = agen()
        kept.append(gen)  # alive and suspended: shutdown_asyncgens closes it
        await gen.__anext__()
        got = await asyncio.get_running_loop().run_in_executor(None, sum, [1, 2])
        await asyncio.sleep(0)
        return got

    run = start(host, main())
    assert not run.done
    host.run()  # UV_RUN_DEFAULT: returns when the ending has stopped guest mode
    assert run.done
    assert events == ["leftover cancelled", "asyncgen finalized"]
    assert run.loop._default_executor is None or run.loop._executor_shutdown_called
    assert run.finish() == 3
    assert run.loop.is_closed()
    assert run.finish() == 3  # idempotent
    host.run(lib.UV_RUN_NOWAIT)  # the close callbacks of the guest's handles
    assert host.handle_count() == 0


def test_shutdown_cancels_main_and_the_ending_follows_in_host_iterations(host):
    events = []

    async def main():
        try:
            await asyncio.sleep(3600)
        finally:
            events.append("main cleaned up")
            await asyncio.sleep(0.01)  # cleanup that needs the loop
            events.append("main cleanup awaited")

    run = start(host, main())
    host.run_until(lambda: run.task._fut_waiter is not None)
    run.shutdown()
    run.shutdown()  # idempotent
    host.run()
    assert run.done
    assert events == ["main cleaned up", "main cleanup awaited"]
    with pytest.raises(asyncio.CancelledError):
        run.finish()
    host.run(lib.UV_RUN_NOWAIT)


def test_finish_raises_mains_exception(host):
    async def main():
        await asyncio.sleep(0)
        raise LookupError("from main")

    run = start(host, main())
    host.run()
    with pytest.raises(LookupError, match="from main"):
        run.finish()
    host.run(lib.UV_RUN_NOWAIT)


def test_finish_before_the_ending_cancels_without_polling_and_warns_nothing(host):
    # the host is exiting: it will not run its loop again
    events = []

    async def worker(name):
        try:
            await asyncio.sleep(3600)
        finally:
            events.append(name)

    async def main():
        loop = asyncio.get_running_loop()
        for name in ("a", "b"):
            loop.create_task(worker(name))
        await loop.run_in_executor(None, lambda: None)
        events.append("main sleeps")
        await asyncio.sleep(3600)

    run = start(host, main())
    host.run_until(lambda: "main sleeps" in events)
    with pytest.raises(asyncio.CancelledError):
        run.finish()
    assert sorted(events) == ["a", "b", "main sleeps"]
    assert run.loop.is_closed() and not run.loop.is_guest_running()
    host.run(lib.UV_RUN_NOWAIT)
    assert host.handle_count() == 0


def test_keyboard_interrupt_in_a_callback_is_raised_by_finish_after_cleanup(host):
    events = []

    async def main():
        def interrupt():
            raise KeyboardInterrupt
        asyncio.get_running_loop().call_soon(interrupt)
        try:
            await asyncio.sleep(3600)
        finally:
            events.append("main cleaned up")

    run = start(host, main())
    host.run()  # returns through uv_stop: guest mode is paused by the error
    with pytest.raises(KeyboardInterrupt):
        run.finish()
    assert events == ["main cleaned up"]
    host.run(lib.UV_RUN_NOWAIT)
    assert host.handle_count() == 0


def test_start_refuses_what_asyncio_run_refuses(host):
    with pytest.raises(ValueError, match="coroutine was expected"):
        embedding.start(host.address, lambda: None)
    with pytest.raises(ValueError, match="NULL"):
        coro = asyncio.sleep(0)
        embedding.start(0, coro)
    # the refused coroutine was closed, not left to warn "never awaited"
    assert coro.cr_frame is None


def test_debug_flag_reaches_the_loop(host):
    run = start(host, asyncio.sleep(0), debug=True)
    assert run.loop.get_debug()
    host.run()
    assert run.finish() is None
    host.run(lib.UV_RUN_NOWAIT)


def test_threadsafe_calls_during_the_ending_still_wake_the_host(host):
    # shutdown_default_executor joins the pool in a thread that reports
    # back with call_soon_threadsafe: the host's poll must wake for it
    started = threading.Event()

    def slow_job():
        started.set()
        return "job"

    async def main():
        return await asyncio.get_running_loop().run_in_executor(None, slow_job)

    run = start(host, main())
    host.run()
    assert started.is_set()
    assert run.finish() == "job"
    host.run(lib.UV_RUN_NOWAIT)
