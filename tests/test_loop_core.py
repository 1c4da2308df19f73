"""The scheduling core of uvffi.Loop: run/stop/close, call_soon & co, timers,
tasks, executors, the exception handler API and debug mode."""
import asyncio
import concurrent.futures
import contextvars
import gc
import logging
import os
import socket
import sys
import threading
import time
import warnings

import pytest

import uvffi
from uvffi.handles import poll as uvpoll


def _open_fds():
    return set(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else set()


# -- run_until_complete / run_forever ------------------------------------------------

def test_run_until_complete_returns_coroutine_result(loop):
    async def main():
        await asyncio.sleep(0)
        return 42
    assert loop.run_until_complete(main()) == 42


def test_run_until_complete_raises_coroutine_exception(loop):
    async def main():
        raise ZeroDivisionError("boom")
    with pytest.raises(ZeroDivisionError, match="boom"):
        loop.run_until_complete(main())


def test_run_until_complete_accepts_future_of_same_loop(loop):
    fut = loop.create_future()
    loop.call_soon(fut.set_result, "done")
    assert loop.run_until_complete(fut) == "done"


def test_run_until_complete_rejects_future_of_other_loop(loop):
    other = asyncio.SelectorEventLoop()
    try:
        fut = other.create_future()
        with pytest.raises(ValueError, match="different loop"):
            loop.run_until_complete(fut)
    finally:
        other.close()


def test_nested_run_until_complete_raises_runtime_error(loop):
    async def inner():
        return 1

    async def outer():
        coro = inner()
        try:
            with pytest.raises(RuntimeError, match="already running"):
                loop.run_until_complete(coro)
        finally:
            coro.close()
        return "ok"
    assert loop.run_until_complete(outer()) == "ok"


def test_is_running_only_inside_run(loop):
    seen = []

    async def main():
        seen.append(loop.is_running())
    assert not loop.is_running()
    loop.run_until_complete(main())
    assert seen == [True]
    assert not loop.is_running()


def test_running_loop_is_visible_to_coroutines(loop):
    async def main():
        return asyncio.get_running_loop()
    assert loop.run_until_complete(main()) is loop


# -- close ---------------------------------------------------------------------------

def test_close_is_idempotent_and_reports_closed():
    lp = uvffi.new_event_loop()
    assert not lp.is_closed()
    lp.close()
    lp.close()
    assert lp.is_closed()


def test_close_while_running_raises(loop):
    async def main():
        with pytest.raises(RuntimeError, match="Cannot close a running event loop"):
            loop.close()
    loop.run_until_complete(main())


@pytest.mark.parametrize("call", [
    lambda lp: lp.call_soon(print),
    lambda lp: lp.call_later(1, print),
    lambda lp: lp.call_at(1, print),
    lambda lp: lp.call_soon_threadsafe(print),
    lambda lp: lp.run_forever(),
    lambda lp: lp.run_until_complete(asyncio.sleep(0)),
    lambda lp: lp.run_in_executor(None, print),
])
def test_closed_loop_refuses_work_with_event_loop_is_closed(call):
    lp = uvffi.new_event_loop()
    lp.close()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # never-awaited coro
        with pytest.raises(RuntimeError, match="Event loop is closed"):
            call(lp)


def _collect():
    for _ in range(4):  # PyPy runs finalizers over several collections
        gc.collect()


def test_close_releases_every_fd_and_warns_nothing():
    # libuv opens one process-wide pipe (its signal lock) with the first
    # loop and keeps it: make sure it exists before counting.
    uvffi.new_event_loop().close()
    _collect()
    before = _open_fds()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lp = uvffi.new_event_loop()
        lp.call_later(10, print)
        lp.call_soon_threadsafe(print)
        lp.run_until_complete(asyncio.sleep(0.01))
        lp.close()
        _collect()
    assert _open_fds() <= before


def test_close_waits_for_close_callbacks_of_open_handles():
    lp = uvffi.new_event_loop()
    a, b = socket.socketpair()
    try:
        p = uvpoll.Poll(lp, a.fileno(), lambda status, events: None)
        p.start(uvpoll.READABLE)
        assert p in lp._uv_handles
        lp.close()
        # a handle leaves the set only from libuv's close callback
        assert lp._uv_handles == set()
        assert p.closing
    finally:
        a.close()
        b.close()


def test_unclosed_loop_warns_resource_warning_when_collected():
    lp = uvffi.new_event_loop()
    lp.run_until_complete(asyncio.sleep(0))
    with pytest.warns(ResourceWarning, match="unclosed event loop"):
        del lp
        _collect()


# -- stop semantics (documented behaviour) --------------------------------------------

def test_stop_before_run_forever_runs_scheduled_callbacks_once(any_loop):
    log = []
    any_loop.stop()
    any_loop.call_soon(log.append, 1)
    any_loop.call_soon(lambda: any_loop.call_soon(log.append, 3))
    any_loop.run_forever()
    assert log == [1]
    any_loop.call_soon(any_loop.stop)
    any_loop.run_forever()
    assert log == [1, 3]


def test_stop_while_running_finishes_the_current_batch(any_loop):
    log = []
    any_loop.call_soon(log.append, "a")
    any_loop.call_soon(any_loop.stop)
    any_loop.call_soon(log.append, "b")
    any_loop.call_soon(lambda: any_loop.call_soon(log.append, "later"))
    any_loop.run_forever()
    assert log == ["a", "b"]


# -- call_soon and friends -----------------------------------------------------------

def test_run_once_outside_run_forever_runs_one_iteration(any_loop):
    # inside run_forever uvffi runs its iterations in one _run_once frame;
    # called on its own (as guest mode and asyncio's own tests do) it is
    # still one iteration
    order = []

    def first():
        order.append(1)
        any_loop.call_soon(order.append, 2)
    any_loop.call_soon(first)
    any_loop._run_once()
    assert order == [1]
    any_loop._run_once()
    assert order == [1, 2]


def test_call_soon_runs_fifo_exactly_once(loop):
    log = []
    for i in range(100):
        loop.call_soon(log.append, i)
    loop.call_soon(loop.stop)
    loop.run_forever()
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert log == list(range(100))


def test_call_soon_runs_callback_in_given_context(loop):
    var = contextvars.ContextVar("var", default="default")
    ctx = contextvars.copy_context()
    ctx.run(var.set, "in-context")
    seen = []
    loop.call_soon(lambda: seen.append(var.get()), context=ctx)
    loop.call_soon(lambda: seen.append(var.get()))
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == ["in-context", "default"]


def test_debug_call_soon_rejects_coroutine_functions_and_non_callables(any_loop):
    async def coro():
        pass
    any_loop.set_debug(True)  # asyncio checks callbacks only in debug mode
    with pytest.raises(TypeError, match="coroutines cannot be used with call_soon"):
        any_loop.call_soon(coro)
    with pytest.raises(TypeError, match="a callable object was expected"):
        any_loop.call_soon(1)


def test_cancelled_handle_does_not_run(loop):
    log = []
    h = loop.call_soon(log.append, 1)
    h.cancel()
    assert h.cancelled()
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert log == []


def test_call_soon_threadsafe_wakes_a_sleeping_loop(loop):
    def from_thread():
        time.sleep(0.2)
        loop.call_soon_threadsafe(loop.stop)
    t = threading.Thread(target=from_thread)
    start = time.monotonic()
    t.start()
    loop.run_forever()  # nothing scheduled: sleeps in uv_run until woken
    t.join()
    assert time.monotonic() - start < 10


def test_call_soon_threadsafe_from_many_threads_runs_every_callback(loop):
    results = []
    n_threads, per_thread = 8, 200
    done = loop.create_future()

    def add(i):
        results.append(i)
        if len(results) == n_threads * per_thread:
            done.set_result(None)

    def worker(base):
        for i in range(per_thread):
            loop.call_soon_threadsafe(add, base + i)
    threads = [threading.Thread(target=worker, args=(k * per_thread,))
               for k in range(n_threads)]
    for t in threads:
        t.start()
    loop.run_until_complete(asyncio.wait_for(done, 30))
    for t in threads:
        t.join()
    assert sorted(results) == list(range(n_threads * per_thread))


# -- timers ------------------------------------------------------------------------------

def test_time_is_the_monotonic_clock(loop):
    t0 = time.monotonic()
    now = loop.time()
    t1 = time.monotonic()
    assert t0 <= now <= t1


def test_call_later_runs_in_deadline_order_not_too_early(loop):
    log = []
    start = loop.time()
    for delay in (0.05, 0.01, 0.03):
        loop.call_later(delay, lambda d=delay: log.append((d, loop.time() - start)))
    loop.call_later(0.08, loop.stop)
    loop.run_forever()
    assert [d for d, _ in log] == [0.01, 0.03, 0.05]
    for delay, elapsed in log:
        assert elapsed >= delay - 0.002  # libuv's clock has 1 ms granularity


def test_call_at_uses_loop_time(loop):
    fired = []
    when = loop.time() + 0.02
    h = loop.call_at(when, lambda: fired.append(loop.time()))
    assert h.when() == when
    loop.call_at(when + 0.01, loop.stop)
    loop.run_forever()
    assert fired and fired[0] >= when - 0.002


def test_cancelled_timer_never_runs_and_is_dropped(loop):
    log = []
    handles = [loop.call_later(0.01, log.append, i) for i in range(200)]
    for h in handles[::2]:
        h.cancel()
    assert all(h.cancelled() for h in handles[::2])
    loop.call_later(0.05, loop.stop)
    loop.run_forever()
    assert log == list(range(1, 200, 2))
    assert len(loop._scheduled) == 0


def test_timer_handle_is_asyncio_timer_handle(loop):
    h = loop.call_later(10, print)
    assert isinstance(h, asyncio.TimerHandle)
    assert not h.cancelled()
    h.cancel()
    assert h.cancelled()


def test_long_sleep_does_not_spin(loop):
    # One wake-up for a 0.3 s sleep, not thousands of 0 ms polls.
    iterations = []
    orig = loop._selector.select

    class Counting:
        def select(self, timeout):
            iterations.append(timeout)
            return orig(timeout)
    loop._selector = Counting()
    loop.run_until_complete(asyncio.sleep(0.3))
    assert len(iterations) < 20


# -- futures, tasks, factories ----------------------------------------------------------

def test_create_future_belongs_to_the_loop(loop):
    fut = loop.create_future()
    assert isinstance(fut, asyncio.Future)
    assert fut.get_loop() is loop


def test_create_task_takes_a_name(loop):
    async def main():
        return 1
    task = loop.create_task(main(), name="worker")
    assert task.get_name() == "worker"
    assert loop.run_until_complete(task) == 1


@pytest.mark.skipif(sys.version_info < (3, 11), reason="context= is new in 3.11")
def test_create_task_takes_a_context(loop):
    var = contextvars.ContextVar("var", default="default")
    ctx = contextvars.copy_context()
    ctx.run(var.set, "task-context")

    async def main():
        return var.get()
    assert loop.run_until_complete(loop.create_task(main(), context=ctx)) == "task-context"


def test_task_factory_is_used_and_reported(loop):
    made = []

    def factory(lp, coro, **kwargs):
        task = asyncio.Task(coro, loop=lp, **kwargs)
        made.append(task)
        return task
    assert loop.get_task_factory() is None
    loop.set_task_factory(factory)
    assert loop.get_task_factory() is factory

    async def main():
        return 5
    assert loop.run_until_complete(main()) == 5
    assert len(made) == 1
    with pytest.raises(TypeError, match="task factory must be a callable or None"):
        loop.set_task_factory(1)


def test_run_in_executor_runs_in_a_thread(loop):
    async def main():
        return await loop.run_in_executor(None, threading.get_ident)
    assert loop.run_until_complete(main()) != threading.get_ident()


def test_set_default_executor_is_used(loop):
    executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="mine")
    loop.set_default_executor(executor)

    async def main():
        return await loop.run_in_executor(None, lambda: threading.current_thread().name)
    try:
        assert loop.run_until_complete(main()).startswith("mine")
    finally:
        executor.shutdown()


def test_shutdown_default_executor_and_asyncgens(loop):
    closed = []

    async def agen():
        try:
            yield 1
            yield 2
        finally:
            closed.append(True)

    async def main():
        g = agen()
        await g.__anext__()
        await loop.run_in_executor(None, time.sleep, 0)
        return g
    g = loop.run_until_complete(main())
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.run_until_complete(loop.shutdown_default_executor())
    assert closed == [True]
    del g


# -- exception handler API -------------------------------------------------------------

def test_exception_in_callback_goes_to_the_handler_with_context(loop):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    def bad():
        raise ValueError("oops")
    loop.call_soon(bad)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert len(contexts) == 1
    ctx = contexts[0]
    assert isinstance(ctx["exception"], ValueError)
    assert "handle" in ctx and ctx["message"].startswith("Exception in callback")


def test_exception_handler_get_set_and_validation(loop):
    def handler(lp, ctx):
        pass
    assert loop.get_exception_handler() is None
    loop.set_exception_handler(handler)
    assert loop.get_exception_handler() is handler
    loop.set_exception_handler(None)
    assert loop.get_exception_handler() is None
    with pytest.raises(TypeError, match="A callable object or None is expected"):
        loop.set_exception_handler("nope")


def test_default_exception_handler_logs_message_and_keys(loop, caplog):
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        loop.call_exception_handler({"message": "custom problem",
                                     "exception": KeyError("k"), "extra": 7})
    assert "custom problem" in caplog.text
    assert "extra: 7" in caplog.text


def test_exception_in_handler_falls_back_to_default(loop, caplog):
    def broken(lp, ctx):
        raise RuntimeError("handler failed")
    loop.set_exception_handler(broken)
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        loop.call_exception_handler({"message": "first"})
    assert "Unhandled error in exception handler" in caplog.text


def test_exception_in_libuv_callback_reaches_the_handler(loop):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))
    a, b = socket.socketpair()
    try:
        def cb(status, events):
            p.stop()
            raise ValueError("from a libuv callback")
        p = uvpoll.Poll(loop, a.fileno(), cb)
        p.start(uvpoll.READABLE)
        b.send(b"x")
        loop.run_until_complete(asyncio.sleep(0.05))
        p.close()
    finally:
        a.close()
        b.close()
    assert [type(c["exception"]) for c in contexts] == [ValueError]


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
def test_base_exception_in_libuv_callback_stops_the_loop_and_propagates(loop, exc_type):
    a, b = socket.socketpair()
    try:
        def cb(status, events):
            p.stop()
            raise exc_type()
        p = uvpoll.Poll(loop, a.fileno(), cb)
        p.start(uvpoll.READABLE)
        b.send(b"x")
        with pytest.raises(exc_type):
            loop.run_until_complete(asyncio.sleep(5))
        # the loop stays usable afterwards
        assert loop.run_until_complete(asyncio.sleep(0, "again")) == "again"
        p.close()
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
def test_base_exception_in_ready_callback_propagates(any_loop, exc_type):
    def cb():
        raise exc_type()
    any_loop.call_soon(cb)
    with pytest.raises(exc_type):
        any_loop.run_forever()


# -- debug mode ----------------------------------------------------------------------------

def test_set_debug_round_trips(loop):
    loop.set_debug(True)
    assert loop.get_debug() is True
    loop.set_debug(False)
    assert loop.get_debug() is False


def test_debug_mode_warns_about_slow_callbacks(loop, caplog):
    loop.set_debug(True)
    loop.slow_callback_duration = 0.05
    loop.call_soon(time.sleep, 0.15)
    loop.call_soon(loop.stop)
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        loop.run_forever()
    assert "took" in caplog.text and "seconds" in caplog.text


def test_debug_mode_records_source_tracebacks(loop):
    loop.set_debug(True)
    h = loop.call_soon(print)
    assert h._source_traceback
    h.cancel()


def test_pythonasynciodebug_enables_debug_mode(tmp_path):
    import subprocess
    code = "import uvffi; lp = uvffi.new_event_loop(); print(lp.get_debug()); lp.close()"
    env = dict(os.environ, PYTHONASYNCIODEBUG="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.stdout.strip() == "True", out.stderr


# -- threads and fork ------------------------------------------------------------------------

def test_loops_in_threads_run_independently():
    results = []

    def worker(n):
        lp = uvffi.new_event_loop()
        try:
            async def main():
                await asyncio.sleep(0.01)
                return n * 2
            results.append(lp.run_until_complete(main()))
        finally:
            lp.close()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [0, 2, 4, 6]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_child_after_fork_builds_and_runs_a_new_loop(loop):
    loop.run_until_complete(asyncio.sleep(0))
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.close(r)
            lp = uvffi.new_event_loop()
            value = lp.run_until_complete(asyncio.sleep(0.01, b"child-ok"))
            lp.close()
            os.write(w, value)
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    assert data == b"child-ok"
    # and the parent's loop still works
    assert loop.run_until_complete(asyncio.sleep(0.01, "parent-ok")) == "parent-ok"


def test_nested_run_forever_is_refused_and_the_loop_keeps_running(loop):
    # CPython 3.13.0's own refusal cleared the loop's running state; a
    # close() let through then tore libuv down under the running uv_run
    seen = []

    async def main():
        with pytest.raises(RuntimeError, match="This event loop is already running"):
            loop.run_forever()
        seen.append(loop.is_running())
        seen.append(asyncio.get_running_loop() is loop)
        with pytest.raises(RuntimeError, match="Cannot close a running event loop"):
            loop.close()
        await asyncio.sleep(0.01)  # and it still runs
        seen.append("slept")

    loop.run_until_complete(main())
    assert seen == [True, True, "slept"]
    assert not loop.is_running()
