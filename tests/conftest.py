import asyncio
import sys

import pytest

import uvffi
from uvffi.process import spawn as uvprocess

LOOP_FACTORIES = {
    "asyncio": asyncio.SelectorEventLoop,
    "uvffi": uvffi.new_event_loop,
}


def _make(kind):
    loop = LOOP_FACTORIES[kind]()
    asyncio.set_event_loop(loop)
    return loop


def _dispose(loop):
    asyncio.set_event_loop(None)
    if not loop.is_closed():
        if loop.is_running():  # a test that failed while running
            loop.stop()
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


@pytest.fixture
def loop():
    """A fresh uvffi loop, closed after the test."""
    lp = _make("uvffi")
    yield lp
    _dispose(lp)


@pytest.fixture(params=sorted(LOOP_FACTORIES))
def any_loop(request):
    """The same test on asyncio's SelectorEventLoop and on uvffi's Loop:
    conformance tests assert identical observable behaviour."""
    lp = _make(request.param)
    lp.kind = request.param  # which loop this is, for the few kind-specific checks
    yield lp
    _dispose(lp)


@pytest.fixture(params=["posix_spawn", "uv_spawn"])
def spawn_path(request, monkeypatch):
    """uvffi spawns with posix_spawn + pidfd where it can (Linux/glibc) and
    with uv_spawn elsewhere: a subprocess test that uses this fixture runs
    on both paths."""
    if request.param == "posix_spawn":
        if not uvprocess.FAST_SPAWN:
            pytest.skip("posix_spawn fast path not available here")
    else:
        if "any_loop" in request.fixturenames and \
                request.getfixturevalue("any_loop").kind == "asyncio":
            pytest.skip("asyncio's loop has one spawn path: run once")
        monkeypatch.setattr(uvprocess, "FAST_SPAWN", False)
    return request.param


@pytest.fixture
def loop_factory():
    return uvffi.new_event_loop


def pytest_report_header(config):
    from uvffi._uv import ffi, lib
    return "uvffi on libuv %s, %s %s" % (
        ffi.string(lib.uv_version_string()).decode(),
        sys.implementation.name, sys.version.split()[0])
