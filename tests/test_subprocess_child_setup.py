"""Popen options that act in the child between fork and exec: preexec_fn,
umask, extra_groups, process_group, restore_signals=False.  uv_spawn and
posix_spawn cannot do them all, and uvffi then starts the child with Popen
(popenspawn.py); either way they behave as on asyncio's loop (any_loop),
on both of uvffi's spawn paths (spawn_path)."""
import asyncio
import gc
import os
import signal
import subprocess
import sys
import warnings

import pytest

from uvffi.process import pidwatch
from uvffi.process import spawn as uvprocess

pytestmark = [pytest.mark.skipif(sys.platform == "win32", reason="POSIX children"),
              pytest.mark.usefixtures("spawn_path")]  # conftest.py: both spawn paths

PY = sys.executable
PIPE = asyncio.subprocess.PIPE
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _run(loop, coro, timeout=60):
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


def _output_of(loop, code, **kwargs):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", code, stdout=PIPE, **kwargs)
        out, _ = await proc.communicate()
        return proc.returncode, out.decode().strip()
    return _run(loop, main())


def _open_fds():
    found = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            found.add((name, os.readlink("/proc/self/fd/" + name)))
        except OSError:
            pass
    return found


def test_preexec_fn_runs_in_the_child_before_exec(any_loop, tmp_path):
    marker = tmp_path / "pid"

    def preexec():
        marker.write_text(str(os.getpid()))

    rc, out = _output_of(any_loop, "import os; print(os.getpid())",
                         preexec_fn=preexec)
    assert rc == 0
    assert out == marker.read_text()


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="Linux /proc")
def test_failing_preexec_fn_raises_subprocess_error_and_leaks_no_fd(any_loop):
    def preexec():
        raise ValueError("no")

    async def spawn(**kwargs):
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", "pass", stdin=PIPE, stdout=PIPE, stderr=PIPE, **kwargs)
        await proc.communicate()

    _run(any_loop, spawn())  # the loop's own lazily made fds
    before = _open_fds()
    with pytest.raises(subprocess.SubprocessError,
                       match="Exception occurred in preexec_fn"):
        _run(any_loop, spawn(preexec_fn=preexec))
    assert _open_fds() - before == set()


def test_umask_is_the_childs(any_loop):
    rc, out = _output_of(any_loop, "import os; print(oct(os.umask(0)))",
                         umask=0o027)
    assert (rc, out) == (0, "0o27")


def test_umask_minus_one_leaves_the_parents(any_loop):
    mask = os.umask(0o022)
    os.umask(mask)
    rc, out = _output_of(any_loop, "import os; print(oct(os.umask(0)))",
                         umask=-1)
    assert (rc, out) == (0, oct(mask))


@pytest.mark.skipif(IS_ROOT, reason="root may set its groups")
def test_extra_groups_without_privilege_is_permission_error(any_loop):
    with pytest.raises(PermissionError):
        _output_of(any_loop, "pass", extra_groups=[os.getgid() + 4242])


@pytest.mark.skipif(not IS_ROOT, reason="setgroups needs root")
@pytest.mark.parametrize("kwargs, expected", [
    ({"extra_groups": [4242, 4343]}, [4242, 4343]),
    ({"extra_groups": [4242], "group": 0}, [4242]),
    ({"extra_groups": [], "group": 0}, []),   # libuv's own setgroups(0)
    ({"extra_groups": []}, []),
])
def test_extra_groups_are_the_childs_groups(any_loop, kwargs, expected):
    rc, out = _output_of(any_loop, "import os; print(sorted(os.getgroups()))",
                         **kwargs)
    assert (rc, out) == (0, str(expected))


def test_extra_groups_items_are_checked_as_popen_does(any_loop):
    with pytest.raises(TypeError, match="Items in extra_groups"):
        _output_of(any_loop, "pass", extra_groups=[1.5])
    with pytest.raises(ValueError, match="Groups must be a list"):
        _output_of(any_loop, "pass", extra_groups="wheel")


@pytest.mark.skipif(sys.version_info < (3, 11), reason="process_group is 3.11+")
def test_process_group_with_preexec_fn(any_loop):
    rc, out = _output_of(any_loop, "import os; print(os.getpgid(0) == os.getpid())",
                         process_group=0, preexec_fn=lambda: None)
    assert (rc, out) == (0, "True")


def test_stdio_redirections_reach_a_popen_started_child(any_loop):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", "import sys; sys.stderr.write(sys.stdin.read().upper())",
            stdin=PIPE, stdout=PIPE, stderr=subprocess.STDOUT, umask=0o022)
        out, err = await proc.communicate(b"through the pipes")
        return proc.returncode, out, err

    assert _run(any_loop, main()) == (0, b"THROUGH THE PIPES", None)


def test_devnull_stdin_for_a_popen_started_child(any_loop):
    rc, out = _output_of(any_loop, "import sys; print(repr(sys.stdin.read()))",
                         stdin=subprocess.DEVNULL, umask=0o022)
    assert (rc, out) == (0, "''")


def test_killed_popen_started_child_reports_the_signal_and_is_reaped(any_loop):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", "import time; time.sleep(60)", preexec_fn=lambda: None)
        assert proc.returncode is None
        proc.kill()
        return proc.pid, await proc.wait()

    pid, returncode = _run(any_loop, main())
    assert returncode == -signal.SIGKILL
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def test_popen_started_child_leaves_nothing_for_subprocess_to_reap(any_loop):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        rc, _ = _output_of(any_loop, "pass", umask=0o022)
        gc.collect()
    assert rc == 0
    assert subprocess._active == []


def test_pass_fds_overriding_close_fds_warns_once(any_loop):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", "pass", pass_fds=(2,), close_fds=False, umask=0o022)
        return await proc.wait()

    with pytest.warns(RuntimeWarning, match="pass_fds overriding close_fds") as seen:
        assert _run(any_loop, main()) == 0
    assert len([w for w in seen if issubclass(w.category, RuntimeWarning)]) == 1


def test_popen_started_child_is_watched_by_pidfd_or_a_thread(loop, monkeypatch):
    async def main():
        proc = await asyncio.create_subprocess_exec(PY, "-c", "pass", umask=0o022)
        handle = proc._transport._proc._handle
        return handle, await proc.wait()

    handle, rc = _run(loop, main())
    assert rc == 0
    assert isinstance(handle, pidwatch.PidfdChild)  # or ThreadWatchedChild
    monkeypatch.setattr(uvprocess, "_pidfd_open", None)
    handle, rc = _run(loop, main())
    assert (type(handle), rc) == (pidwatch.ThreadWatchedChild, 0)
