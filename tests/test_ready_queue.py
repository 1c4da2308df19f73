"""loop._ready, as code outside the loop uses it.

uvffi runs the ready handles with asyncio's Handle._run inlined (see
scheduler.ReadyQueue); handles that other code queues itself must still run
as on asyncio's loop: their own _run if their class has one."""
import asyncio
import contextvars

from uvffi.facets import scheduler


class CountingHandle(asyncio.Handle):
    """A handle class of a library's own, with a _run of its own."""
    runs = 0

    def _run(self):
        type(self).runs += 1
        super()._run()


def _run_one_iteration(loop):
    loop.call_soon(loop.stop)
    loop.run_forever()


def test_a_plain_asyncio_handle_appended_to_ready_runs(any_loop):
    seen = []
    handle = asyncio.Handle(seen.append, ("plain",), any_loop, None)
    any_loop._ready.append(handle)
    _run_one_iteration(any_loop)
    assert seen == ["plain"]


def test_a_handle_subclass_appended_to_ready_runs_its_own_run(any_loop):
    CountingHandle.runs = 0
    seen = []
    any_loop._ready.append(CountingHandle(seen.append, (1,), any_loop, None))
    any_loop._ready.appendleft(CountingHandle(seen.append, (0,), any_loop, None))
    any_loop._ready.extend([CountingHandle(seen.append, (2,), any_loop, None)])
    _run_one_iteration(any_loop)
    assert seen == [0, 1, 2]
    assert CountingHandle.runs == 3


def test_callbacks_queued_next_to_a_foreign_handle_keep_their_order(any_loop):
    seen = []
    any_loop.call_soon(seen.append, "a")
    any_loop._ready.append(CountingHandle(seen.append, ("b",), any_loop, None))
    any_loop.call_soon(seen.append, "c")
    _run_one_iteration(any_loop)
    assert seen == ["a", "b", "c"]


def test_an_exception_in_a_foreign_handle_goes_to_the_handler(any_loop):
    reported = []
    any_loop.set_exception_handler(lambda lp, ctx: reported.append(ctx))

    def boom():
        raise ZeroDivisionError

    any_loop._ready.append(CountingHandle(boom, (), any_loop, None))
    _run_one_iteration(any_loop)
    assert len(reported) == 1
    assert isinstance(reported[0]["exception"], ZeroDivisionError)
    assert reported[0]["message"].startswith("Exception in callback")


def test_the_inline_path_comes_back_once_foreign_handles_have_run(loop):
    CountingHandle.runs = 0
    loop._ready.append(CountingHandle(lambda: None, (), loop, None))
    assert loop._ready.foreign
    _run_one_iteration(loop)
    assert CountingHandle.runs == 1
    assert not loop._ready.foreign
    # the loop's own handles never set it
    loop.call_soon(lambda: None)
    loop.call_later(0, lambda: None)
    _run_one_iteration(loop)
    assert not loop._ready.foreign


def test_the_loops_own_appends_bypass_the_check(loop):
    assert isinstance(loop._ready, scheduler.ReadyQueue)
    handle = loop.call_soon(lambda: None)
    assert type(handle) is scheduler.Handle
    assert isinstance(handle, asyncio.Handle)
    assert not loop._ready.foreign


def test_lean_handles_read_like_asyncios(any_loop):
    def cb(*args):
        pass
    ctx = contextvars.copy_context()
    handle = any_loop.call_soon(cb, 1, context=ctx)
    timer = any_loop.call_at(any_loop.time() + 60, cb, 2)
    assert handle._context is ctx  # get_context() from 3.12 on
    assert repr(handle) == repr(asyncio.Handle(cb, (1,), any_loop, ctx))
    assert repr(timer) == repr(asyncio.TimerHandle(timer.when(), cb, (2,), any_loop))
    assert not handle.cancelled() and not timer.cancelled()
    timer.cancel()
    handle.cancel()
    assert handle.cancelled() and timer.cancelled()
    assert repr(handle) == "<Handle cancelled>"
    _run_one_iteration(any_loop)
