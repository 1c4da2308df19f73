"""Entry points: uvffi.run, new_event_loop, EventLoopPolicy, install."""
from __future__ import annotations

import asyncio
import sys
from asyncio import coroutines, events
from typing import Any, Coroutine, Optional, TypeVar

from .loop import Loop

_T = TypeVar("_T")


def new_event_loop() -> Loop:
    """A new, independent uvffi loop (use as ``loop_factory=``)."""
    return Loop()


if sys.platform != "win32":
    # asyncio's own Unix policy: up to 3.13 it also keeps the process-wide
    # child watcher (get_child_watcher/set_child_watcher, deprecated in
    # 3.12), which code written for asyncio calls and CPython's own test
    # suite sets up.  uvffi's subprocesses (uv_spawn) do not use it; a
    # watcher only reaps the processes its user registers with it.
    from asyncio.unix_events import _UnixDefaultEventLoopPolicy as _PolicyBase
else:
    _PolicyBase = events.BaseDefaultEventLoopPolicy


class EventLoopPolicy(_PolicyBase):
    """An asyncio policy whose loops are uvffi loops.

    ``asyncio.set_event_loop_policy(uvffi.EventLoopPolicy())`` (or
    :func:`install`) makes ``asyncio.new_event_loop()`` and the loops of
    ``asyncio.run`` uvffi loops.  Everything else is asyncio's default
    policy for the platform.
    """

    def _loop_factory(self) -> Loop:
        return Loop()


def install() -> None:
    """Make uvffi the loop of ``asyncio.run``/``new_event_loop`` (policy)."""
    asyncio.set_event_loop_policy(EventLoopPolicy())


def run(main: Coroutine[Any, Any, _T], *,
        debug: Optional[bool] = None) -> _T:
    """Run coroutine *main* on a new uvffi loop and close it, like
    ``asyncio.run``."""
    if events._get_running_loop() is not None:
        # fail fast, as asyncio.run does, before a loop is made
        raise RuntimeError(
            "asyncio.run() cannot be called from a running event loop")
    if sys.version_info >= (3, 11):
        with asyncio.Runner(debug=debug, loop_factory=new_event_loop) as runner:
            return runner.run(main)
    return _run_compat(main, debug)


def _run_compat(main: Coroutine[Any, Any, _T],
                debug: Optional[bool]) -> _T:
    # asyncio.run of Python 3.9/3.10, with our loop.
    from asyncio.runners import _cancel_all_tasks

    if not coroutines.iscoroutine(main):
        raise ValueError("a coroutine was expected, got {!r}".format(main))
    loop = new_event_loop()
    try:
        events.set_event_loop(loop)
        if debug is not None:
            loop.set_debug(debug)
        return loop.run_until_complete(main)
    finally:
        try:
            _cancel_all_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            events.set_event_loop(None)
            loop.close()
