"""Debug mode: the source traceback of a scheduled callback ends in the frame
that scheduled it (asyncio's Handle drops its own frames), whether the
callback came from call_soon, call_soon_threadsafe, call_later or call_at."""
import asyncio
import sys
import threading

import pytest


def _fail():
    raise ValueError("scheduled callback failed")


def _scheduling_line():
    """The line number of the caller: where the callback was scheduled."""
    return sys._getframe(1).f_lineno - 1


def _source_traceback_of(loop, schedule):
    """Run schedule(loop) in debug mode; the failing callback's context's
    source_traceback and the (file, line) that scheduled it."""
    seen = []
    loop.set_debug(True)
    loop.slow_callback_duration = 10.0  # no slow-callback warnings
    loop.set_exception_handler(lambda lp, ctx: seen.append(ctx))

    async def main():
        where = schedule(loop)
        for _ in range(200):  # up to 2 s for the callback to fail
            if seen:
                break
            await asyncio.sleep(0.01)
        return where

    where = loop.run_until_complete(main())
    assert seen, "the failing callback was not reported within 2 s"
    return seen[0].get("source_traceback"), where


def _call_soon(loop):
    loop.call_soon(_fail)
    return __file__, _scheduling_line()


def _call_soon_threadsafe(loop):
    loop.call_soon_threadsafe(_fail)
    return __file__, _scheduling_line()


def _call_soon_threadsafe_other_thread(loop):
    where = []

    def other():
        loop.call_soon_threadsafe(_fail)
        where.append((__file__, _scheduling_line()))
    t = threading.Thread(target=other)
    t.start()
    t.join(5)
    assert where, "the scheduling thread did not finish within 5 s"
    return where[0]


def _call_later(loop):
    loop.call_later(0.001, _fail)
    return __file__, _scheduling_line()


def _call_at(loop):
    loop.call_at(loop.time() + 0.001, _fail)
    return __file__, _scheduling_line()


def _call_later_zero(loop):
    loop.call_later(0, _fail)
    return __file__, _scheduling_line()


@pytest.mark.parametrize("schedule", [
    _call_soon, _call_soon_threadsafe, _call_soon_threadsafe_other_thread,
    _call_later, _call_later_zero, _call_at,
], ids=lambda f: f.__name__.lstrip("_"))
def test_source_traceback_ends_in_the_scheduling_frame(any_loop, schedule):
    tb, (filename, lineno) = _source_traceback_of(any_loop, schedule)
    assert tb, "debug mode recorded no source traceback"
    last = tb[-1]
    assert (last.filename, last.lineno, last.name) == \
        (filename, lineno, schedule.__name__ if "other" not in
         schedule.__name__ else "other")


@pytest.mark.parametrize("method", ["call_soon", "call_later", "call_at"])
def test_handle_repr_names_the_scheduling_line(any_loop, method):
    """The handle's repr says 'created at <file>:<line>' of the caller."""
    any_loop.set_debug(True)
    args = {"call_soon": (), "call_later": (10,),
            "call_at": (any_loop.time() + 10,)}[method]
    handle = getattr(any_loop, method)(*args, _fail)
    lineno = _scheduling_line()
    handle.cancel()
    assert repr(handle).endswith("created at %s:%d>" % (__file__, lineno))
