"""A user's add_signal_handler(SIGCHLD, ...) runs on each child's exit, and
subprocesses still report their exits, on both spawn paths (libuv reaps the
children of uv_spawn from its own SIGCHLD handler: the user's must not
replace it).  asyncio's loop allows the handler too (uvloop refuses it)."""
import asyncio
import signal
import sys

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

TIMEOUT = 10


async def _child_exit_code(code):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import sys; sys.exit(%d)" % code)
    return await asyncio.wait_for(proc.wait(), TIMEOUT)


async def _wait_for(predicate, what):
    for _ in range(TIMEOUT * 100):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("waited %d s for %s" % (TIMEOUT, what))


def test_user_sigchld_handler_and_exit_reports_both_work(any_loop, spawn_path):
    loop = any_loop
    calls = []

    async def main():
        loop.add_signal_handler(signal.SIGCHLD, calls.append, "chld")
        codes = [await _child_exit_code(n) for n in (0, 3, 7)]
        await _wait_for(lambda: len(calls) >= 3, "the SIGCHLD handler to run 3 times")
        return codes

    assert loop.run_until_complete(main()) == [0, 3, 7]
    assert set(calls) == {"chld"}
    assert loop.remove_signal_handler(signal.SIGCHLD)
    assert not loop.remove_signal_handler(signal.SIGCHLD)


def test_exit_reports_after_sigchld_handler_removed(any_loop, spawn_path):
    loop = any_loop
    calls = []

    async def main():
        # a child first: on uv_spawn, libuv's SIGCHLD handler is in place
        # before the user's handler comes and goes
        first = await _child_exit_code(1)
        loop.add_signal_handler(signal.SIGCHLD, calls.append, 1)
        second = await _child_exit_code(2)
        await _wait_for(lambda: calls, "the SIGCHLD handler to run")
        assert loop.remove_signal_handler(signal.SIGCHLD)
        count = len(calls)
        third = await _child_exit_code(3)
        await asyncio.sleep(0.05)
        assert len(calls) == count, "the removed handler ran"
        return first, second, third

    assert loop.run_until_complete(main()) == (1, 2, 3)


def test_sigchld_handler_replaced_and_cancelled(any_loop, spawn_path):
    loop = any_loop
    calls = []

    async def main():
        loop.add_signal_handler(signal.SIGCHLD, calls.append, "old")
        loop.add_signal_handler(signal.SIGCHLD, calls.append, "new")
        code = await _child_exit_code(5)
        await _wait_for(lambda: calls, "the SIGCHLD handler to run")
        return code

    assert loop.run_until_complete(main()) == 5
    assert set(calls) == {"new"}


def test_sigchld_handler_removed_when_loop_closes(any_loop, spawn_path):
    loop = any_loop
    calls = []
    loop.add_signal_handler(signal.SIGCHLD, calls.append, 1)
    loop.close()
    assert not loop._signal_handlers


def test_sigchld_handler_refused_off_main_thread(any_loop):
    import threading
    errors = []

    def other():
        try:
            any_loop.add_signal_handler(signal.SIGCHLD, print)
        except RuntimeError as exc:
            errors.append(exc)
    t = threading.Thread(target=other)
    t.start()
    t.join(TIMEOUT)
    assert len(errors) == 1
