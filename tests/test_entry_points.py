"""uvffi.run, new_event_loop, EventLoopPolicy, install and loop_factory=."""
import asyncio
import sys

import pytest

import uvffi


async def _which_loop():
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop())


def test_run_returns_the_result_on_a_uvffi_loop():
    assert uvffi.run(_which_loop()) is uvffi.Loop


def test_run_propagates_the_exception():
    async def main():
        raise LookupError("x")
    with pytest.raises(LookupError):
        uvffi.run(main())


def test_run_debug_flag_sets_debug_mode():
    async def main():
        return asyncio.get_running_loop().get_debug()
    assert uvffi.run(main(), debug=True) is True
    assert uvffi.run(main(), debug=False) is False


def test_run_cancels_leftover_tasks_and_closes_the_loop():
    seen = {}

    async def sleeper():
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            seen["cancelled"] = True
            raise

    async def main():
        seen["loop"] = asyncio.get_running_loop()
        asyncio.ensure_future(sleeper())
        await asyncio.sleep(0)
    uvffi.run(main())
    assert seen["cancelled"] is True
    assert seen["loop"].is_closed()


def test_run_refuses_a_non_coroutine():
    with pytest.raises((ValueError, TypeError)):
        uvffi.run(42)


def test_run_inside_a_running_loop_raises():
    async def main():
        coro = asyncio.sleep(0)
        try:
            with pytest.raises(RuntimeError, match="cannot be called from a running event loop"):
                uvffi.run(coro)
        finally:
            coro.close()
    uvffi.run(main())


def test_new_event_loop_gives_independent_loops():
    a, b = uvffi.new_event_loop(), uvffi.new_event_loop()
    try:
        assert a is not b and isinstance(a, asyncio.AbstractEventLoop)
        assert a.uv_loop_t != b.uv_loop_t
    finally:
        a.close()
        b.close()


def test_event_loop_policy_makes_uvffi_loops():
    old = asyncio.get_event_loop_policy()
    try:
        asyncio.set_event_loop_policy(uvffi.EventLoopPolicy())
        lp = asyncio.new_event_loop()
        try:
            assert isinstance(lp, uvffi.Loop)
        finally:
            lp.close()
        assert asyncio.run(_which_loop()) is uvffi.Loop
    finally:
        asyncio.set_event_loop_policy(old)


def test_install_sets_the_policy():
    old = asyncio.get_event_loop_policy()
    try:
        uvffi.install()
        assert isinstance(asyncio.get_event_loop_policy(), uvffi.EventLoopPolicy)
        assert asyncio.run(_which_loop()) is uvffi.Loop
    finally:
        asyncio.set_event_loop_policy(old)


@pytest.mark.skipif(sys.version_info < (3, 12), reason="loop_factory= is new in 3.12")
def test_asyncio_run_with_loop_factory():
    assert asyncio.run(_which_loop(), loop_factory=uvffi.new_event_loop) is uvffi.Loop


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.Runner is new in 3.11")
def test_asyncio_runner_with_loop_factory():
    with asyncio.Runner(loop_factory=uvffi.new_event_loop) as runner:
        assert runner.run(_which_loop()) is uvffi.Loop
        assert isinstance(runner.get_loop(), uvffi.Loop)


def test_public_names():
    for name in ("Loop", "new_event_loop", "run", "install", "EventLoopPolicy", "__version__"):
        assert hasattr(uvffi, name)
