"""Subprocesses on uv_spawn: loop.subprocess_exec/subprocess_shell, the
subprocess transport, and asyncio.create_subprocess_*; conformance with
the selector loop where both can run the scenario (any_loop)."""
import asyncio
import errno
import os
import signal
import subprocess
import sys
import threading
import warnings

import pytest

import uvffi
from uvffi.process import spawn as uvprocess

pytestmark = [pytest.mark.skipif(sys.platform == "win32", reason="POSIX children"),
              pytest.mark.usefixtures("spawn_path")]  # conftest.py: both spawn paths

PY = sys.executable
PIPE = asyncio.subprocess.PIPE


def _run(loop, coro, timeout=60):
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


def _assert_reaped(pid):
    """No zombie: the child has been waited for already."""
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _open_fds():
    """{fd: what it points to} (without the fd listdir itself uses)."""
    found = set()
    if os.path.isdir("/proc/self/fd"):
        for name in os.listdir("/proc/self/fd"):
            try:
                found.add((name, os.readlink("/proc/self/fd/" + name)))
            except OSError:
                pass
    return found


def _open_fds_after_warm_up(loop):
    """The fds open once the loop has run a child with a pipe: the loop's
    wake-up socket and libuv's reserve fd (/dev/null, for EMFILE) are
    made lazily, once per loop."""
    async def warm_up():
        proc = await asyncio.create_subprocess_exec(PY, "-c", "pass", stdout=PIPE)
        await proc.communicate()
    _run(loop, warm_up())
    return _open_fds()


class ProcRecorder(asyncio.SubprocessProtocol):
    def __init__(self, loop):
        self.events = []
        self.data = {1: bytearray(), 2: bytearray()}
        self.transport = None
        self.done = loop.create_future()

    def connection_made(self, transport):
        self.transport = transport
        self.events.append("made")

    def pipe_data_received(self, fd, data):
        self.data[fd] += data
        self.events.append(("data", fd))

    def pipe_connection_lost(self, fd, exc):
        self.events.append(("pipe_lost", fd, exc))

    def process_exited(self):
        self.events.append("exited")

    def connection_lost(self, exc):
        self.events.append("lost")
        self.done.set_result(exc)


# -- asyncio.create_subprocess_* ------------------------------------------------

def test_communicate_with_all_three_pipes(any_loop):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", "import sys; d = sys.stdin.read(); "
                      "sys.stdout.write(d.upper()); sys.stderr.write('e:' + d)",
            stdin=PIPE, stdout=PIPE, stderr=PIPE)
        out, err = await proc.communicate(b"hello")
        return out, err, proc.returncode, proc.pid

    out, err, rc, pid = _run(any_loop, main())
    assert (out, err, rc) == (b"HELLO", b"e:hello", 0)
    _assert_reaped(pid)


def test_shell_command_exit_status_and_output(any_loop):
    async def main():
        proc = await asyncio.create_subprocess_shell(
            "echo from-shell; exit 7", stdout=PIPE)
        out, _ = await proc.communicate()
        return out, proc.returncode

    assert _run(any_loop, main()) == (b"from-shell\n", 7)


def test_wait_without_pipes(any_loop):
    async def main():
        proc = await asyncio.create_subprocess_exec(PY, "-c", "raise SystemExit(3)")
        return await proc.wait(), await proc.wait(), proc.pid

    first, again, pid = _run(any_loop, main())
    assert first == again == 3
    _assert_reaped(pid)


def test_large_output_on_both_pipes_at_once(any_loop):
    size = 3 * 1024 * 1024
    code = ("import sys, os\n"
            "out, err = sys.stdout.buffer, sys.stderr.buffer\n"
            "for i in range(%d // 65536):\n"
            "    out.write(b'o' * 65536); err.write(b'e' * 65536)\n" % size)

    async def main():
        proc = await asyncio.create_subprocess_exec(PY, "-c", code,
                                                    stdout=PIPE, stderr=PIPE)
        return await proc.communicate()

    out, err = _run(any_loop, main())
    assert len(out) == size and len(err) == size
    assert set(out) == {ord("o")} and set(err) == {ord("e")}


def test_large_input_and_output_round_trip(any_loop):
    payload = os.urandom(2 * 1024 * 1024)

    async def main():
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", "import sys, shutil; shutil.copyfileobj(sys.stdin.buffer, sys.stdout.buffer)",
            stdin=PIPE, stdout=PIPE)
        out, _ = await proc.communicate(payload)
        return out, proc.returncode

    out, rc = _run(any_loop, main())
    assert rc == 0 and out == payload


def test_killed_child_has_negative_signal_returncode(any_loop):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", "import time; time.sleep(60)")
        proc.kill()
        return await proc.wait(), proc.pid

    rc, pid = _run(any_loop, main())
    assert rc == -signal.SIGKILL
    _assert_reaped(pid)


def test_terminate_and_send_signal(any_loop):
    async def main():
        p1 = await asyncio.create_subprocess_exec(PY, "-c", "import time; time.sleep(60)")
        p2 = await asyncio.create_subprocess_exec(PY, "-c", "import time; time.sleep(60)")
        p1.terminate()
        p2.send_signal(signal.SIGINT)
        return await p1.wait(), await p2.wait()

    rc1, rc2 = _run(any_loop, main())
    assert rc1 == -signal.SIGTERM
    # Python turns SIGINT into KeyboardInterrupt: exit status 1 or -SIGINT
    assert rc2 in (1, -signal.SIGINT)


def test_child_exiting_before_reading_stdin(any_loop):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", "import sys; sys.stdout.write('bye')",
            stdin=PIPE, stdout=PIPE)
        # much more than a pipe buffers: the writer meets a closed reader
        out, _ = await proc.communicate(b"x" * (4 * 1024 * 1024))
        return out, proc.returncode

    assert _run(any_loop, main()) == (b"bye", 0)


def test_wait_returns_although_stdin_left_open(any_loop):
    # the stdin transport notices the child is gone (reader closed)
    async def main():
        proc = await asyncio.create_subprocess_exec(PY, "-c", "pass", stdin=PIPE)
        rc = await proc.wait()
        proc.stdin.close()
        return rc

    assert _run(any_loop, main()) == 0


def test_stdout_stream_readline_and_limit(any_loop):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", "print('line1'); print('line2')", stdout=PIPE, limit=16)
        lines = [await proc.stdout.readline(), await proc.stdout.readline(),
                 await proc.stdout.readline()]
        await proc.wait()
        return lines

    assert _run(any_loop, main()) == [b"line1\n", b"line2\n", b""]


# -- stdio redirections -----------------------------------------------------------

def test_stderr_to_stdout_and_devnull(any_loop):
    async def main():
        p1 = await asyncio.create_subprocess_exec(
            PY, "-c", "import sys; print('out', flush=True); print('err', file=sys.stderr)",
            stdout=PIPE, stderr=subprocess.STDOUT)
        out1, err1 = await p1.communicate()
        p2 = await asyncio.create_subprocess_exec(
            PY, "-c", "import sys; print(repr(sys.stdin.read())); print('hidden', file=sys.stderr)",
            stdin=subprocess.DEVNULL, stdout=PIPE, stderr=subprocess.DEVNULL)
        out2, err2 = await p2.communicate()
        return out1, err1, out2, err2

    out1, err1, out2, err2 = _run(any_loop, main())
    assert out1.split() == [b"out", b"err"] and err1 is None
    assert out2.strip() == b"''" and err2 is None


def test_stdio_to_fd_and_file_object(any_loop, tmp_path):
    path_a = tmp_path / "a.txt"
    path_b = tmp_path / "b.txt"

    async def main():
        with open(path_a, "wb") as fa:
            fd = os.open(str(path_b), os.O_WRONLY | os.O_CREAT)
            try:
                proc = await asyncio.create_subprocess_exec(
                    PY, "-c", "import sys; print('to a'); print('to b', file=sys.stderr)",
                    stdout=fa, stderr=fd)
                return await proc.wait()
            finally:
                os.close(fd)

    assert _run(any_loop, main()) == 0
    assert path_a.read_bytes().strip() == b"to a"
    assert path_b.read_bytes().strip() == b"to b"


def test_stdin_from_file(any_loop, tmp_path):
    src = tmp_path / "in.txt"
    src.write_bytes(b"file input")

    async def main():
        with open(src, "rb") as f:
            proc = await asyncio.create_subprocess_exec(
                PY, "-c", "import sys; sys.stdout.write(sys.stdin.read()[::-1])",
                stdin=f, stdout=PIPE)
            out, _ = await proc.communicate()
        return out

    assert _run(any_loop, main()) == b"tupni elif"


def test_swapped_stdout_and_stderr(any_loop, capfd):
    # fds 0-2 as sources: the child must see the parent's original fds
    async def main():
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", "import sys; print('to-out'); print('to-err', file=sys.stderr)",
            stdout=2, stderr=1)
        return await proc.wait()

    assert _run(any_loop, main()) == 0
    out, err = capfd.readouterr()
    assert "to-err" in out and "to-out" in err
    assert "to-out" not in out and "to-err" not in err


def test_stdout_to_file_and_stderr_to_stdout(any_loop, tmp_path):
    path = tmp_path / "both.txt"

    async def main():
        with open(path, "wb") as f:
            proc = await asyncio.create_subprocess_exec(
                PY, "-c", "import sys; print('o', flush=True); print('e', file=sys.stderr)",
                stdout=f, stderr=subprocess.STDOUT)
            return await proc.wait()

    assert _run(any_loop, main()) == 0
    assert path.read_bytes().split() == [b"o", b"e"]


# -- Popen options ----------------------------------------------------------------

def test_cwd_env_and_executable(any_loop, tmp_path):
    async def main():
        p1 = await asyncio.create_subprocess_exec(
            PY, "-c", "import os; print(os.getcwd()); print(os.environ.get('UVFFI_T'))",
            stdout=PIPE, cwd=str(tmp_path), env={"UVFFI_T": "value", "PATH": os.environ.get("PATH", "")})
        out1, _ = await p1.communicate()
        p2 = await asyncio.create_subprocess_exec(
            "argv0-name", "-c", 'echo "$0"', stdout=PIPE, executable="/bin/sh")
        out2, _ = await p2.communicate()
        return out1, out2

    out1, out2 = _run(any_loop, main())
    lines = out1.decode().split()
    assert os.path.realpath(lines[0]) == os.path.realpath(str(tmp_path))
    assert lines[1] == "value"
    assert out2 == b"argv0-name\n"


def test_start_new_session(any_loop):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", "import os; print(os.getsid(0) == os.getpid())",
            stdout=PIPE, start_new_session=True)
        out, _ = await proc.communicate()
        return out

    assert _run(any_loop, main()) == b"True\n"


def test_pass_fds_and_close_fds(any_loop):
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    os.set_inheritable(w2, True)  # inheritable, but not passed
    code = ("import os, sys\n"
            "for fd in map(int, sys.argv[1:]):\n"
            "    try: os.write(fd, b'reached')\n"
            "    except OSError as e: print(fd, e.errno)\n")

    async def main():
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", code, str(w1), str(w2), stdout=PIPE, pass_fds=(w1,))
        out_closed, _ = await proc.communicate()
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", code, str(w2), stdout=PIPE, close_fds=False)
        out_open, _ = await proc.communicate()
        return out_closed, out_open

    try:
        out_closed, out_open = _run(any_loop, main())
        os.close(w1)
        os.close(w2)
        assert os.read(r1, 100) == b"reached"
        assert out_closed.split() == [str(w2).encode(), str(errno.EBADF).encode()]
        assert out_open == b"" and os.read(r2, 100) == b"reached"
    finally:
        for fd in (r1, r2):
            os.close(fd)


def test_close_fds_leaves_parent_inheritable_flag_unchanged(loop):
    r, w = os.pipe()
    os.set_inheritable(w, True)

    async def main():
        proc = await asyncio.create_subprocess_exec(PY, "-c", "pass")
        return await proc.wait()

    try:
        assert _run(loop, main()) == 0
        assert os.get_inheritable(w)
    finally:
        os.close(r)
        os.close(w)


def test_user_and_group_of_current_ids(any_loop):
    if os.geteuid() != 0:
        pytest.skip("setuid/setgid/setgroups need root")

    async def main():
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", "import os; print(os.getuid(), os.getgid())", stdout=PIPE,
            user=os.getuid(), group=os.getgid(), extra_groups=[])
        out, _ = await proc.communicate()
        return out

    assert _run(any_loop, main()) == ("%d %d\n" % (os.getuid(), os.getgid())).encode()


# -- errors -----------------------------------------------------------------------

def test_missing_executable_is_file_not_found(any_loop):
    async def main():
        await asyncio.create_subprocess_exec("/nonexistent/uvffi-prog", stdout=PIPE)

    with pytest.raises(FileNotFoundError) as info:
        _run(any_loop, main())
    assert info.value.errno == errno.ENOENT
    assert info.value.filename == "/nonexistent/uvffi-prog"


def test_missing_cwd_names_the_directory(any_loop, tmp_path):
    missing = str(tmp_path / "nope")

    async def main():
        await asyncio.create_subprocess_exec(PY, "-c", "pass", cwd=missing)

    with pytest.raises(FileNotFoundError) as info:
        _run(any_loop, main())
    assert info.value.filename == missing


def test_non_executable_file_is_permission_error(any_loop, tmp_path):
    path = tmp_path / "script"
    path.write_text("#!/bin/sh\necho hi\n")
    os.chmod(path, 0o644)
    if os.geteuid() == 0 and os.access(str(path), os.X_OK):
        pytest.skip("root may execute anything")

    async def main():
        await asyncio.create_subprocess_exec(str(path))

    with pytest.raises(PermissionError) as info:
        _run(any_loop, main())
    assert info.value.errno == errno.EACCES


@pytest.mark.parametrize("kwargs", [
    {"universal_newlines": True}, {"shell": True}, {"bufsize": 1},
    {"text": True}, {"encoding": "utf-8"}, {"errors": "strict"},
])
def test_exec_argument_errors_match_asyncio(any_loop, kwargs):
    with pytest.raises(ValueError):
        _run(any_loop, any_loop.subprocess_exec(asyncio.SubprocessProtocol, PY, "-c", "pass", **kwargs))


@pytest.mark.parametrize("kwargs", [
    {"universal_newlines": True}, {"shell": False}, {"bufsize": 1},
    {"text": True}, {"encoding": "utf-8"}, {"errors": "strict"},
])
def test_shell_argument_errors_match_asyncio(any_loop, kwargs):
    with pytest.raises(ValueError):
        _run(any_loop, any_loop.subprocess_shell(asyncio.SubprocessProtocol, "true", **kwargs))


def test_shell_requires_a_string(any_loop):
    with pytest.raises(ValueError, match="cmd must be a string"):
        _run(any_loop, any_loop.subprocess_shell(asyncio.SubprocessProtocol, ["true"]))


@pytest.mark.parametrize("kwargs, exc_type", [
    ({"no_such_option": 1}, TypeError),
    ({"startupinfo": object()}, ValueError),
    ({"creationflags": 1}, ValueError),
    ({"env": {"A=B": "c"}}, ValueError),
    ({"user": 1.5}, TypeError),
    ({"user": -1}, ValueError),
    ({"group": -2}, ValueError),
])
def test_popen_option_errors_match_asyncio(any_loop, kwargs, exc_type):
    async def main():
        await asyncio.create_subprocess_exec(PY, "-c", "pass", **kwargs)

    with pytest.raises(exc_type):
        _run(any_loop, main())


def test_embedded_null_byte_is_value_error(any_loop):
    async def main():
        await asyncio.create_subprocess_exec(PY, "-c", "pass\0")

    with pytest.raises(ValueError, match="embedded null byte"):
        _run(any_loop, main())


@pytest.mark.skipif(sys.version_info < (3, 11), reason="process_group is 3.11+")
def test_process_group(any_loop, spawn_path):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", "import os; print(os.getpgid(0) == os.getpid())",
            stdout=PIPE, process_group=0)
        out, _ = await proc.communicate()
        return out

    # on the uv_spawn path (no setpgid in libuv's child) Popen starts it
    assert _run(any_loop, main()) == b"True\n"


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="Linux /proc")
@pytest.mark.parametrize("restore", [True, False])
def test_restore_signals(any_loop, spawn_path, restore):
    async def main():
        # cat reports its own ignored-signal mask (a Python child would
        # ignore SIGPIPE by itself)
        proc = await asyncio.create_subprocess_exec(
            "cat", "/proc/self/status", stdout=PIPE, restore_signals=restore)
        out, _ = await proc.communicate()
        line = [ln for ln in out.decode().splitlines() if ln.startswith("SigIgn:")][0]
        ignored = int(line.split()[1], 16)
        return ("True\n" if ignored & (1 << (signal.SIGPIPE - 1)) else "False\n").encode()

    # Python ignores SIGPIPE; restore_signals gives the child the default.
    # (uv_spawn resets every disposition: Popen starts the child then.)
    assert _run(any_loop, main()) == (b"False\n" if restore else b"True\n")


def test_pass_fds_overriding_close_fds_warns(any_loop):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", "pass", pass_fds=(2,), close_fds=False)
        return await proc.wait()

    with pytest.warns(RuntimeWarning, match="pass_fds overriding close_fds"):
        assert _run(any_loop, main()) == 0


def test_failed_spawn_leaves_no_fd_or_handle_behind(loop):
    fds_before = _open_fds_after_warm_up(loop)
    handles_before = len(loop._uv_handles)

    async def main():
        for _ in range(5):
            with pytest.raises(FileNotFoundError):
                await asyncio.create_subprocess_exec(
                    "/nonexistent/x", stdin=PIPE, stdout=PIPE, stderr=PIPE)
        await asyncio.sleep(0.01)  # close callbacks

    _run(loop, main())
    assert _open_fds() - fds_before == set()
    assert len(loop._uv_handles) == handles_before


# -- the transport (loop.subprocess_exec) -------------------------------------------

def test_protocol_callbacks_in_asyncio_order(any_loop):
    loop = any_loop

    async def main():
        tr, proto = await loop.subprocess_exec(
            lambda: ProcRecorder(loop), PY, "-c",
            "import sys; sys.stdout.write('o'); sys.stdout.flush(); "
            "sys.stderr.write('e'); sys.exit(5)", stdin=None)
        exc = await proto.done
        rc = tr.get_returncode()
        tr.close()
        return proto, exc, rc

    proto, exc, rc = _run(loop, main())
    ev = proto.events
    assert exc is None and rc == 5
    assert ev[0] == "made" and ev[-1] == "lost"
    assert ev.count("exited") == 1
    assert ("pipe_lost", 1, None) in ev and ("pipe_lost", 2, None) in ev
    assert ev.index(("data", 1)) < ev.index(("pipe_lost", 1, None))
    assert ev.index(("data", 2)) < ev.index(("pipe_lost", 2, None))
    assert bytes(proto.data[1]) == b"o" and bytes(proto.data[2]) == b"e"


def test_transport_accessors_and_pipe_transports(any_loop):
    loop = any_loop

    async def main():
        tr, proto = await loop.subprocess_exec(
            lambda: ProcRecorder(loop), PY, "-c", "import sys; sys.stdin.read()",
            stdin=PIPE, stdout=PIPE, stderr=subprocess.DEVNULL)
        pid = tr.get_pid()
        assert isinstance(pid, int) and pid > 0
        assert tr.get_returncode() is None
        stdin = tr.get_pipe_transport(0)
        stdout = tr.get_pipe_transport(1)
        assert isinstance(stdin, asyncio.WriteTransport)
        assert isinstance(stdout, asyncio.ReadTransport)
        assert tr.get_pipe_transport(2) is None
        assert tr.get_extra_info("subprocess").pid == pid
        stdin.write(b"data")
        stdin.close()
        await proto.done
        rc = tr.get_returncode()
        tr.close()
        assert tr.is_closing()
        return rc

    assert _run(any_loop, main()) == 0


def test_transport_close_kills_running_child(any_loop):
    loop = any_loop

    async def main():
        tr, proto = await loop.subprocess_exec(
            lambda: ProcRecorder(loop), PY, "-c", "import time; time.sleep(60)",
            stdin=None, stdout=None, stderr=None)
        tr.close()
        await proto.done
        return tr.get_returncode(), tr.get_pid()

    rc, pid = _run(any_loop, main())
    assert rc == -signal.SIGKILL
    _assert_reaped(pid)


def test_signals_after_connection_lost_raise_process_lookup_error(any_loop):
    loop = any_loop

    async def main():
        tr, proto = await loop.subprocess_exec(
            lambda: ProcRecorder(loop), PY, "-c", "pass",
            stdin=None, stdout=None, stderr=None)
        await proto.done
        tr.close()
        for method in (tr.kill, tr.terminate, lambda: tr.send_signal(signal.SIGTERM)):
            with pytest.raises(ProcessLookupError):
                method()

    _run(any_loop, main())


# -- threads, loop close, warnings ------------------------------------------------

def test_subprocess_on_a_loop_in_another_thread():
    result = {}

    def worker():
        async def main():
            proc = await asyncio.create_subprocess_exec(
                PY, "-c", "print('from thread')", stdout=PIPE)
            out, _ = await proc.communicate()
            return out, proc.returncode, proc.pid
        try:
            result["value"] = uvffi.run(main())
        except BaseException as exc:  # reported by the main thread
            result["error"] = exc

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert "error" not in result
    out, rc, pid = result["value"]
    assert (out, rc) == (b"from thread\n", 0)
    _assert_reaped(pid)


def test_loop_closed_with_running_child_leaves_no_zombie(loop_factory):
    lp = loop_factory()
    holder = {}

    async def main():
        proc = await asyncio.create_subprocess_exec(PY, "-c", "import time; time.sleep(0.2)")
        holder["pid"] = proc.pid
        holder["transport"] = proc._transport

    lp.run_until_complete(main())
    lp.close()
    pid = holder["pid"]
    # the reaper thread collects it once it exits
    for _ in range(200):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        threading.Event().wait(0.05)
    else:
        pytest.fail("child %d never reaped" % pid)
    holder["transport"]._closed = True  # silence its unclosed-transport warning


def test_no_child_watcher_deprecation_warning(loop):
    async def main():
        proc = await asyncio.create_subprocess_exec(PY, "-c", "pass")
        return await proc.wait()

    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        assert _run(loop, main()) == 0


def test_spawn_path_in_use(loop, spawn_path):
    async def main():
        proc = await asyncio.create_subprocess_exec(PY, "-c", "pass")
        handle = proc._transport._proc._handle
        await proc.wait()
        return handle

    handle = _run(loop, main())
    expected = (uvprocess.PidfdChild if spawn_path == "posix_spawn"
                else uvprocess.ProcessHandle)
    assert type(handle) is expected


def test_bare_program_name_searched_on_child_path(any_loop, tmp_path):
    script = tmp_path / "uvffi-test-prog"
    script.write_text("#!/bin/sh\necho found-on-path\n")
    os.chmod(script, 0o755)
    env = dict(os.environ, PATH=str(tmp_path) + os.pathsep + os.environ.get("PATH", ""))

    async def main():
        proc = await asyncio.create_subprocess_exec(
            "uvffi-test-prog", stdout=PIPE, env=env)
        out, _ = await proc.communicate()
        return out

    assert _run(any_loop, main()) == b"found-on-path\n"


def test_child_watched_by_a_thread_when_pidfd_is_refused(loop, monkeypatch, spawn_path):
    if spawn_path != "posix_spawn":
        pytest.skip("fallback of the posix_spawn path")
    monkeypatch.setattr(uvprocess, "_pidfd_open", lambda pid: -errno.ENOSYS)

    async def main():
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", "print('watched')", stdout=PIPE)
        out, _ = await proc.communicate()
        return out, proc.returncode, proc.pid

    out, rc, pid = _run(loop, main())
    assert (out, rc) == (b"watched\n", 0)
    assert uvprocess.FAST_SPAWN is False  # uv_spawn from now on
    _assert_reaped(pid)


def test_many_short_children_in_a_row(loop):
    async def main():
        codes = []
        for _ in range(30):
            proc = await asyncio.create_subprocess_exec("true" if os.path.exists("/bin/true") else PY)
            codes.append(await proc.wait())
        return codes

    assert _run(loop, main()) == [0] * 30
    # every process / pidfd handle has been closed
    assert not [h for h in loop._uv_handles
                if type(h).__name__ in ("ProcessHandle", "_PidfdPoll")]


def test_pipe_fds_are_all_closed_after_communicate(loop):
    fds_before = _open_fds_after_warm_up(loop)

    async def main():
        for _ in range(5):
            proc = await asyncio.create_subprocess_exec(
                PY, "-c", "import sys; sys.stdout.write(sys.stdin.read())",
                stdin=PIPE, stdout=PIPE, stderr=PIPE)
            await proc.communicate(b"abc")
        await asyncio.sleep(0.01)

    _run(loop, main())
    assert _open_fds() - fds_before == set()


def test_transport_collected_after_loop_close_releases_quietly():
    # A subprocess transport left open when the loop closes is finalised
    # later; its pipes must let go without scheduling on the closed loop
    # (which printed "Exception ignored ... Event loop is closed").
    import subprocess as sp
    from _childenv import child_env
    code = (
        "import asyncio, gc, sys, uvffi\n"
        "loop = uvffi.new_event_loop()\n"
        "async def main():\n"
        "    return await loop.subprocess_exec(asyncio.SubprocessProtocol, sys.executable,\n"
        "        '-c', 'import time; time.sleep(0.3)', stdin=asyncio.subprocess.PIPE)\n"
        "tr, pr = loop.run_until_complete(main())\n"
        "loop.close()\n"
        "del tr, pr\n"
        "for _ in range(4): gc.collect()\n"
        "print('done')\n")
    proc = sp.run([sys.executable, "-W", "ignore::ResourceWarning", "-c", code],
                  env=child_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "done"
    assert "Exception ignored" not in proc.stderr, proc.stderr
