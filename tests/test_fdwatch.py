"""add_reader/remove_reader/add_writer/remove_writer: uvffi's poll handles
behave as asyncio's selector keys (conformance against SelectorEventLoop
where the scenario is portable, uvffi-only checks for libuv's specifics)."""
import asyncio
import gc
import os
import socket
import subprocess
import sys
import textwrap

import pytest
from _childenv import child_env

pytestmark = pytest.mark.skipif(sys.platform == "win32",
                                reason="pipes/socketpair fds are POSIX here")


def _run_until(loop, predicate, timeout=10.0):
    """Run the loop until predicate() holds (no timing assert, a bound only)."""
    async def waiter():
        deadline = loop.time() + timeout
        while not predicate():
            if loop.time() > deadline:
                raise AssertionError("condition not reached")
            await asyncio.sleep(0.005)
    loop.run_until_complete(waiter())


def _spin(loop, n=5):
    for _ in range(n):
        loop.run_until_complete(asyncio.sleep(0))


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


def _poll_count(loop):
    """uvffi: fd-watch polls with a reader or writer (0 for asyncio's loop)."""
    watches = getattr(loop, "_fd_watches", None) or {}
    return sum(1 for p in watches.values()
               if p.reader is not None or p.writer is not None)


def _active(p):
    from uvffi._uv import lib
    return bool(lib.uv_is_active(p.ptr))


# -- success paths -------------------------------------------------------------

def test_reader_called_with_args_when_data_arrives(any_loop, pair):
    a, b = pair
    got = []
    any_loop.add_reader(a.fileno(), lambda x, y: got.append((x, y, a.recv(10))), 1, 2)
    b.send(b"ping")
    _run_until(any_loop, lambda: got)
    assert got[0] == (1, 2, b"ping")
    assert any_loop.remove_reader(a.fileno()) is True


def test_reader_accepts_object_with_fileno_and_removal_by_int(any_loop, pair):
    a, b = pair
    got = []
    any_loop.add_reader(a, lambda: got.append(a.recv(10)))
    b.send(b"x")
    _run_until(any_loop, lambda: got)
    assert got == [b"x"]
    assert any_loop.remove_reader(a.fileno()) is True
    assert any_loop.remove_reader(a) is False


def test_writer_called_when_socket_writable(any_loop, pair):
    a, _ = pair
    got = []
    any_loop.add_writer(a, got.append, "w")
    _run_until(any_loop, lambda: got)
    assert got[0] == "w"
    assert any_loop.remove_writer(a) is True
    assert any_loop.remove_writer(a) is False


def test_reader_is_level_triggered_until_data_is_consumed(any_loop, pair):
    a, b = pair
    calls = []
    any_loop.add_reader(a, calls.append, 1)
    b.send(b"unread")
    _run_until(any_loop, lambda: len(calls) >= 3)
    assert any_loop.remove_reader(a) is True


def test_remove_returns_false_for_unknown_fd(any_loop, pair):
    a, _ = pair
    assert any_loop.remove_reader(a) is False
    assert any_loop.remove_writer(a) is False


def test_remove_reader_returns_false_when_only_writer_registered(any_loop, pair):
    a, _ = pair
    any_loop.add_writer(a, lambda: None)
    assert any_loop.remove_reader(a) is False
    assert any_loop.remove_writer(a) is True


def test_reader_and_writer_share_one_fd_independently(any_loop, pair):
    a, b = pair
    reads, writes = [], []
    any_loop.add_reader(a, lambda: reads.append(a.recv(10)))
    any_loop.add_writer(a, writes.append, 1)
    _run_until(any_loop, lambda: writes)
    assert reads == []
    assert any_loop.remove_writer(a) is True
    b.send(b"r")
    _run_until(any_loop, lambda: reads)
    assert reads == [b"r"]
    assert any_loop.remove_reader(a) is True


def test_one_poll_handle_per_fd_for_reader_and_writer(loop, pair):
    a, _ = pair
    loop.add_reader(a, lambda: None)
    loop.add_writer(a, lambda: None)
    assert _poll_count(loop) == 1
    p = loop._fd_watches[a.fileno()]
    assert p.events == 3  # UV_READABLE | UV_WRITABLE
    loop.remove_writer(a)
    assert loop._fd_watches[a.fileno()] is p and p.events == 1
    loop.remove_reader(a)
    assert _poll_count(loop) == 0
    _spin(loop)  # the idle poll is closed by the next iteration's guard
    assert not loop._fd_watches


def test_poll_handle_closed_when_last_callback_removed(loop, pair):
    a, _ = pair
    loop.add_reader(a, lambda: None)
    p = loop._fd_watches[a.fileno()]
    assert _active(p) and p in loop._uv_handles
    loop.remove_reader(a)
    # kept idle (an add_reader in the same batch reuses it) until the
    # guard runs right before libuv's next poll phase
    assert p.idle and _poll_count(loop) == 0
    _spin(loop)
    assert a.fileno() not in loop._fd_watches and p.closing
    _spin(loop)
    assert p not in loop._uv_handles  # libuv's close callback has run


def test_fd_number_reused_by_regular_file_raises_on_add(any_loop, tmp_path):
    # the number was watched before: the new file behind it must still be
    # refused as epoll refuses it
    r, w = os.pipe()
    os.close(w)
    any_loop.add_reader(r, lambda: None)
    any_loop.remove_reader(r)
    os.close(r)
    path = tmp_path / "f"
    path.write_bytes(b"x")
    fd = os.open(path, os.O_RDONLY)
    try:
        if fd != r:
            pytest.skip("fd number not reused")
        with pytest.raises(PermissionError):
            any_loop.add_reader(fd, lambda: None)
        assert any_loop.remove_reader(fd) is False
    finally:
        os.close(fd)


def test_readding_reader_replaces_callback_and_cancels_old_handle(any_loop, pair):
    a, b = pair
    first, second = [], []
    any_loop.add_reader(a, first.append, 1)
    any_loop.add_reader(a, lambda: second.append(a.recv(10)))
    b.send(b"z")
    _run_until(any_loop, lambda: second)
    assert first == [] and second == [b"z"]
    assert any_loop.remove_reader(a) is True


def test_readding_writer_cancels_old_handle(loop, pair):
    a, _ = pair
    loop.add_writer(a, lambda: None)
    old = loop._fd_watches[a.fileno()].writer
    loop.add_writer(a, lambda: None)
    assert old.cancelled()
    assert loop.remove_writer(a) is True


def test_removed_reader_does_not_fire_even_if_ready(any_loop, pair):
    a, b = pair
    got = []
    b.send(b"ready")
    any_loop.add_reader(a, got.append, 1)
    assert any_loop.remove_reader(a) is True
    _spin(any_loop)
    assert got == []


def test_reader_runs_through_ready_queue_after_call_soon(any_loop, pair):
    # I/O callbacks go to the ready queue like the selector loop's: a
    # call_soon scheduled by an earlier callback runs first
    a, b = pair
    order = []

    def on_read():
        order.append("reader")
        a.recv(10)
        any_loop.remove_reader(a)

    b.send(b"x")

    def schedule():
        any_loop.add_reader(a, on_read)
        any_loop.call_soon(order.append, "soon")

    any_loop.call_soon(schedule)
    _run_until(any_loop, lambda: "reader" in order)
    assert order == ["soon", "reader"]


def test_callback_exception_goes_to_exception_handler(any_loop, pair):
    a, b = pair
    seen = []
    any_loop.set_exception_handler(lambda lp, ctx: seen.append(ctx))

    def boom():
        any_loop.remove_reader(a)
        raise ZeroDivisionError

    any_loop.add_reader(a, boom)
    b.send(b"x")
    _run_until(any_loop, lambda: seen)
    assert isinstance(seen[0]["exception"], ZeroDivisionError)


def test_pipe_reader_sees_eof_when_writer_closes(any_loop):
    r, w = os.pipe()
    got = []
    try:
        any_loop.add_reader(r, lambda: got.append(os.read(r, 10)))
        os.close(w)
        w = None
        _run_until(any_loop, lambda: got)
        assert got[0] == b""
        assert any_loop.remove_reader(r) is True
    finally:
        os.close(r)
        if w is not None:
            os.close(w)


def test_add_reader_leaves_blocking_mode_of_fd_alone(any_loop):
    r, w = os.pipe()
    try:
        assert os.get_blocking(r)
        any_loop.add_reader(r, lambda: None)
        assert os.get_blocking(r)
        any_loop.remove_reader(r)
    finally:
        os.close(r)
        os.close(w)


def test_writer_on_peer_closed_pipe_is_woken_by_poll_error(any_loop):
    # EPOLLERR: the selector reports the fd ready; uvffi turns libuv's
    # error status into a wake-up of the callback too
    r, w = os.pipe()
    os.set_blocking(w, False)
    errors = []

    def on_write():
        try:
            os.write(w, b"x" * 65536)
        except BrokenPipeError as exc:
            errors.append(exc)
            any_loop.remove_writer(w)
        except BlockingIOError:
            pass

    try:
        any_loop.add_writer(w, on_write)
        os.close(r)
        r = None
        _run_until(any_loop, lambda: errors)
        assert isinstance(errors[0], BrokenPipeError)
    finally:
        if r is not None:
            os.close(r)
        os.close(w)


# -- error paths --------------------------------------------------------------

def test_invalid_file_object_raises_value_error(any_loop):
    for method in (any_loop.add_reader, any_loop.add_writer):
        with pytest.raises(ValueError, match="Invalid file object"):
            method(object(), lambda: None)
    for method in (any_loop.remove_reader, any_loop.remove_writer):
        with pytest.raises(ValueError, match="Invalid file object"):
            method("not a file")


def test_negative_fd_raises_value_error(any_loop):
    with pytest.raises(ValueError) as ei:
        any_loop.add_reader(-1, lambda: None)
    assert str(ei.value) == "Invalid file descriptor: -1"


def test_closed_fd_number_raises_ebadf(any_loop):
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    with pytest.raises(OSError) as ei:
        any_loop.add_reader(r, lambda: None)
    assert ei.value.errno == 9  # EBADF
    assert any_loop.remove_reader(r) is False


def test_regular_file_raises_permission_error_as_epoll_does(any_loop, tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"data")
    with open(path, "rb") as f:
        with pytest.raises(PermissionError):
            any_loop.add_reader(f, lambda: None)
        assert any_loop.remove_reader(f) is False


def test_closed_loop_add_raises_and_remove_returns_false(any_loop, pair):
    a, _ = pair
    any_loop.close()
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        any_loop.add_reader(a, lambda: None)
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        any_loop.add_writer(a, lambda: None)
    assert any_loop.remove_reader(a) is False
    assert any_loop.remove_writer(a) is False


class _FakeTransport:
    def __init__(self, closing=False):
        self._closing = closing

    def is_closing(self):
        return self._closing

    def __repr__(self):
        return "<FakeTransport>"


@pytest.mark.parametrize("method", ["add_reader", "add_writer",
                                    "remove_reader", "remove_writer"])
def test_fd_of_a_transport_is_refused(any_loop, pair, method):
    # asyncio's _ensure_fd_no_transport raises RuntimeError (not ValueError)
    a, _ = pair
    tr = _FakeTransport()
    any_loop._transports[a.fileno()] = tr
    args = (lambda: None,) if method.startswith("add") else ()
    with pytest.raises(RuntimeError) as ei:
        getattr(any_loop, method)(a.fileno(), *args)
    assert str(ei.value) == (f"File descriptor {a.fileno()!r} is used by "
                             f"transport <FakeTransport>")
    del tr
    gc.collect()


def test_fd_of_a_closing_transport_is_accepted(any_loop, pair):
    a, _ = pair
    tr = _FakeTransport(closing=True)
    any_loop._transports[a.fileno()] = tr
    any_loop.add_reader(a, lambda: None)
    assert any_loop.remove_reader(a) is True


# -- closed fds: no crash ---------------------------------------------------------

def test_closing_watched_fd_then_removing_does_not_crash(any_loop):
    r, w = os.pipe()
    any_loop.add_reader(r, lambda: None)
    any_loop.add_writer(w, lambda: None)
    _spin(any_loop)
    os.close(r)
    os.close(w)
    _spin(any_loop)
    assert any_loop.remove_reader(r) is True
    assert any_loop.remove_writer(w) is True
    _spin(any_loop)


def test_fd_closed_before_loop_iteration_is_dropped_quietly(loop):
    # libuv registers a poll with epoll lazily, and aborts the process if
    # that fails; uvffi stops such a poll instead (the callback stays
    # registered, like a stale selector key)
    loop.run_until_complete(asyncio.sleep(0))
    r, w = os.pipe()
    fired = []
    loop.add_reader(r, fired.append, 1)
    os.close(r)
    os.close(w)
    _spin(loop)
    assert fired == []
    assert loop.remove_reader(r) is True
    assert _poll_count(loop) == 0


def test_fd_closed_and_reused_by_regular_file_does_not_crash(loop, tmp_path):
    loop.run_until_complete(asyncio.sleep(0))
    r, w = os.pipe()
    os.close(w)
    loop.add_reader(r, lambda: None)
    os.close(r)
    path = tmp_path / "f"
    path.write_bytes(b"x")
    with open(path, "rb") as f:
        _spin(loop)
        # the number may or may not have been reused; either way no abort
        assert loop.remove_reader(r) is True
        assert f.read() == b"x"


CRASH_SCRIPT = textwrap.dedent("""
    import asyncio, os, uvffi
    loop = uvffi.new_event_loop()
    loop.run_until_complete(asyncio.sleep(0))
    for _ in range(20):
        r, w = os.pipe()
        loop.add_reader(r, lambda: None)
        loop.add_writer(w, lambda: None)
        os.close(r)
        os.close(w)
        loop.run_until_complete(asyncio.sleep(0))
        loop.remove_reader(r)
        loop.remove_writer(w)
    loop.close()
    print("ok")
""")


def test_close_before_registration_survives_in_child_process():
    # The same scenario in a child: had libuv abort()ed, only the child dies.
    env = child_env()
    proc = subprocess.run([sys.executable, "-c", CRASH_SCRIPT], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_loop_close_closes_poll_handles(pair):
    import uvffi
    lp = uvffi.new_event_loop()
    a, _ = pair
    lp.add_reader(a, lambda: None)
    lp.add_writer(a, lambda: None)
    handles = lp._uv_handles
    lp.close()
    assert not handles
    assert lp.remove_reader(a) is False


def test_examples_watch_fd_prints_received_data():
    path = os.path.join(os.path.dirname(__file__), "..", "examples", "watch_fd.py")
    env = child_env()
    proc = subprocess.run([sys.executable, path], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "Received: abc"


def test_poll_error_wakes_both_reader_and_writer(any_loop):
    # a refused non-blocking connect: epoll reports an error condition, which
    # the selector turns into "readable and writable"
    tmp = socket.socket()
    tmp.bind(("127.0.0.1", 0))
    addr = tmp.getsockname()
    tmp.close()
    c = socket.socket()
    c.setblocking(False)
    woken = set()
    try:
        try:
            c.connect(addr)
        except BlockingIOError:
            pass
        except ConnectionRefusedError:
            pytest.skip("refused synchronously")
        any_loop.add_reader(c, woken.add, "reader")
        any_loop.add_writer(c, woken.add, "writer")
        _run_until(any_loop, lambda: woken == {"reader", "writer"})
        assert c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 111 or \
            sys.platform != "linux"
        assert any_loop.remove_reader(c) and any_loop.remove_writer(c)
    finally:
        c.close()


def test_many_short_waits_leave_no_poll_handles(loop, pair):
    a, b = pair

    async def ping_pong():
        for i in range(200):
            loop.call_soon(b.send, b"x")
            assert await loop.sock_recv(a, 10) == b"x"

    loop.run_until_complete(ping_pong())
    _spin(loop)
    assert _poll_count(loop) == 0
    assert not any(type(h).__name__ == "FdPoll" for h in loop._uv_handles)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_loop_close_leaks_no_fds_after_watching(pair):
    import uvffi
    a, b = pair
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(3):
        lp = uvffi.new_event_loop()
        got = []
        lp.add_reader(a, lambda: got.append(a.recv(10)))
        b.send(b"x")
        lp.run_until_complete(asyncio.sleep(0.01))
        lp.remove_reader(a)
        lp.close()
    assert len(os.listdir("/proc/self/fd")) == before
