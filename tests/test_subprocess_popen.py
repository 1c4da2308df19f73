"""transport.get_extra_info('subprocess'): the Popen-like object, used as
code written for asyncio uses the Popen it gets there (wait, poll, kill),
and the policy's child watcher calls; on both loops (any_loop)."""
import asyncio
import os
import signal
import subprocess
import sys
import threading
import warnings

import pytest

import uvffi
from uvffi.process import child as childprocess

pytestmark = [pytest.mark.skipif(sys.platform == "win32", reason="POSIX children"),
              pytest.mark.usefixtures("spawn_path")]  # conftest.py: both spawn paths

PY = sys.executable
SLEEP = (PY, "-c", "import time; time.sleep(60)")


class Exited(asyncio.SubprocessProtocol):
    def __init__(self, loop):
        self.exited = loop.create_future()

    def process_exited(self):
        self.exited.set_result(None)


@pytest.fixture(params=["peek", "reap"])
def exit_check(request, monkeypatch):
    """Where os.waitid exists uvffi reads the status without reaping; where
    it does not (macOS) it reaps as Popen does: both ways, on this machine."""
    if request.param == "reap":
        if "any_loop" in request.fixturenames and \
                request.getfixturevalue("any_loop").kind == "asyncio":
            pytest.skip("uvffi's two ways only")
        monkeypatch.setattr(childprocess, "_HAVE_WAITID", False)
    elif not childprocess._HAVE_WAITID:
        pytest.skip("no os.waitid here")
    return request.param


def _run(loop, coro, timeout=60):
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


def _start(loop, *args):
    async def start():
        return await loop.subprocess_exec(lambda: Exited(loop), *args,
                                          stdin=None, stdout=None, stderr=None)
    return _run(loop, start())


def test_popen_wait_after_kill_gives_the_signal_and_close_does_not_kill_again(any_loop, exit_check):
    transport, protocol = _start(any_loop, *SLEEP)
    proc = transport.get_extra_info("subprocess")
    assert proc.pid == transport.get_pid()
    assert proc.poll() is None
    proc.kill()
    code = proc.wait()
    assert proc.poll() == code == proc.returncode
    # the transport has not heard of the exit yet, as with asyncio's watcher
    assert transport.get_returncode() is None
    signals = []
    proc.send_signal = signals.append  # close() must not signal a dead child
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # asyncio's watcher: "already read"
        transport.close()
        _run(any_loop, protocol.exited)
    assert signals == []
    assert transport.get_returncode() is not None
    if any_loop.kind == "uvffi":
        # asyncio's Popen.wait() races its child watcher for the status and
        # may get 0 (the transport then gets 255); uvffi's gets the status
        assert code == -signal.SIGKILL
        assert transport.get_returncode() == -signal.SIGKILL


def test_popen_wait_with_a_timeout_raises_timeout_expired(any_loop, exit_check):
    transport, protocol = _start(any_loop, *SLEEP)
    proc = transport.get_extra_info("subprocess")
    with pytest.raises(subprocess.TimeoutExpired) as info:
        proc.wait(timeout=0.05)
    assert info.value.timeout == 0.05
    assert proc.returncode is None
    transport.kill()
    code = proc.wait(timeout=30)
    assert code is not None
    if any_loop.kind == "uvffi":
        assert code == -signal.SIGKILL
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _run(any_loop, protocol.exited)
    transport.close()


def test_popen_poll_sees_an_exit_before_the_loop_does(any_loop, exit_check):
    transport, protocol = _start(any_loop, PY, "-c", "import sys; sys.exit(7)")
    proc = transport.get_extra_info("subprocess")
    # not running the loop: only poll() can notice the exit
    while proc.poll() is None:
        threading.Event().wait(0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _run(any_loop, protocol.exited)
        transport.close()
    if any_loop.kind == "uvffi":
        assert proc.returncode == 7
        assert transport.get_returncode() == 7
    with pytest.raises(ChildProcessError):
        os.waitpid(proc.pid, os.WNOHANG)  # reaped once, no zombie


def test_popen_wait_from_another_thread_while_the_loop_runs(loop):
    # peeking (waitid) only: reaping from another thread races the loop for
    # the status, as Popen.wait() races asyncio's child watcher
    if not childprocess._HAVE_WAITID:
        pytest.skip("no os.waitid here")
    transport, protocol = _start(loop, PY, "-c", "import time; time.sleep(0.2)")
    proc = transport.get_extra_info("subprocess")
    result = loop.run_in_executor(None, proc.wait)
    assert _run(loop, result) == 0
    _run(loop, protocol.exited)
    assert transport.get_returncode() == 0
    transport.close()


def test_the_uvffi_policy_keeps_asyncios_child_watcher_calls():
    policy = uvffi.EventLoopPolicy()
    if sys.version_info >= (3, 14):
        assert not hasattr(policy, "get_child_watcher")  # gone from asyncio
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+
        watcher = policy.get_child_watcher()
        assert isinstance(watcher, asyncio.AbstractChildWatcher)
        policy.set_child_watcher(None)
        replacement = asyncio.ThreadedChildWatcher()
        policy.set_child_watcher(replacement)
        assert policy.get_child_watcher() is replacement
    # a watcher reaps the children its user registers with it, next to
    # uvffi's own subprocesses
    loop = uvffi.new_event_loop()

    async def main():
        exited = loop.create_future()
        child = subprocess.Popen([PY, "-c", "import sys; sys.exit(3)"])
        replacement.add_child_handler(
            child.pid, lambda pid, code: exited.set_result((pid, code)))
        own = await asyncio.create_subprocess_exec(PY, "-c", "pass")
        assert await own.wait() == 0
        assert await exited == (child.pid, 3)
        child.returncode = 3  # reaped by the watcher; silence Popen.__del__

    try:
        loop.run_until_complete(asyncio.wait_for(main(), 60))
    finally:
        loop.close()
