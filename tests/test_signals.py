"""add_signal_handler/remove_signal_handler: asyncio's Unix loop behaviour,
with delivery through the wake-up fd that libuv polls."""
import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from _childenv import child_env

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")



@pytest.fixture(autouse=True)
def restore_signals():
    saved = {s: signal.getsignal(s) for s in
             (signal.SIGUSR1, signal.SIGUSR2, signal.SIGINT, signal.SIGTERM)}
    yield
    for s, h in saved.items():
        signal.signal(s, h)
    signal.set_wakeup_fd(-1)


def run_until(loop, pred, timeout=10.0):
    async def waiter():
        deadline = loop.time() + timeout
        while not pred():
            if loop.time() > deadline:
                raise AssertionError("condition not reached")
            await asyncio.sleep(0.005)
    loop.run_until_complete(waiter())


def test_handler_runs_with_args_on_signal(any_loop):
    got = []
    any_loop.add_signal_handler(signal.SIGUSR1, got.append, "usr1")
    any_loop.call_soon(os.kill, os.getpid(), signal.SIGUSR1)
    run_until(any_loop, lambda: got)
    assert got == ["usr1"]


def test_handler_runs_in_loop_thread_via_ready_queue(any_loop):
    seen = []

    def handler():
        seen.append((threading.current_thread(), asyncio.get_running_loop()))

    any_loop.add_signal_handler(signal.SIGUSR1, handler)
    any_loop.call_soon(os.kill, os.getpid(), signal.SIGUSR1)
    run_until(any_loop, lambda: seen)
    assert seen == [(threading.main_thread(), any_loop)]


def test_handler_fires_while_loop_sleeps(any_loop):
    # the loop is blocked waiting for a far-away timer when the signal comes
    fut = any_loop.create_future()
    any_loop.add_signal_handler(signal.SIGUSR2, fut.set_result, "woken")
    t = threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGUSR2))
    t.start()
    try:
        start = time.monotonic()
        assert any_loop.run_until_complete(asyncio.wait_for(fut, 30)) == "woken"
        assert time.monotonic() - start < 25
    finally:
        t.cancel()


def test_signal_received_while_not_running_is_handled_on_next_run(any_loop):
    got = []
    any_loop.add_signal_handler(signal.SIGUSR1, got.append, 1)
    os.kill(os.getpid(), signal.SIGUSR1)  # the loop is not running
    run_until(any_loop, lambda: got)
    assert got == [1]


def test_readding_handler_replaces_it(any_loop):
    got = []
    any_loop.add_signal_handler(signal.SIGUSR1, got.append, "old")
    any_loop.add_signal_handler(signal.SIGUSR1, got.append, "new")
    any_loop.call_soon(os.kill, os.getpid(), signal.SIGUSR1)
    run_until(any_loop, lambda: got)
    assert got == ["new"]


def test_handlers_for_several_signals(any_loop):
    got = []
    any_loop.add_signal_handler(signal.SIGUSR1, got.append, 1)
    any_loop.add_signal_handler(signal.SIGUSR2, got.append, 2)
    any_loop.call_soon(os.kill, os.getpid(), signal.SIGUSR1)
    run_until(any_loop, lambda: 1 in got)
    any_loop.call_soon(os.kill, os.getpid(), signal.SIGUSR2)
    run_until(any_loop, lambda: 2 in got)
    assert got == [1, 2]


def test_cancelled_handle_removes_the_handler_on_next_signal(any_loop):
    got = []
    any_loop.add_signal_handler(signal.SIGUSR1, got.append, 1)
    any_loop._signal_handlers[signal.SIGUSR1].cancel()
    # SIG_DFL for SIGUSR1 would kill us: keep a Python handler underneath
    # once asyncio/uvffi restore the default
    any_loop.call_soon(os.kill, os.getpid(), signal.SIGUSR1)
    orig_signal = signal.signal
    restored = []

    def spy(sig, handler):
        restored.append((sig, handler))
        return orig_signal(sig, lambda *a: None if handler is signal.SIG_DFL else handler)

    signal.signal = spy
    try:
        run_until(any_loop, lambda: restored)
    finally:
        signal.signal = orig_signal
    assert got == []
    assert restored == [(signal.SIGUSR1, signal.SIG_DFL)]
    assert any_loop.remove_signal_handler(signal.SIGUSR1) is False


def test_remove_returns_true_then_false_and_restores_default(any_loop):
    any_loop.add_signal_handler(signal.SIGUSR1, lambda: None)
    assert signal.getsignal(signal.SIGUSR1) not in (signal.SIG_DFL, None)
    assert any_loop.remove_signal_handler(signal.SIGUSR1) is True
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL
    assert any_loop.remove_signal_handler(signal.SIGUSR1) is False


def test_remove_sigint_restores_keyboard_interrupt(any_loop):
    any_loop.add_signal_handler(signal.SIGINT, lambda: None)
    assert any_loop.remove_signal_handler(signal.SIGINT) is True
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_wakeup_fd_kept_while_handler_exists_and_released_after(any_loop):
    assert signal.set_wakeup_fd(-1) == -1
    any_loop.add_signal_handler(signal.SIGUSR1, lambda: None)
    fd = signal.set_wakeup_fd(-1)
    assert fd != -1  # installed though the loop is not running
    signal.set_wakeup_fd(fd)
    any_loop.run_until_complete(asyncio.sleep(0))
    fd2 = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(fd2)
    assert fd2 == fd  # still there after a run
    any_loop.remove_signal_handler(signal.SIGUSR1)
    assert signal.set_wakeup_fd(-1) == -1


def test_loop_close_removes_handlers(any_loop):
    any_loop.add_signal_handler(signal.SIGUSR1, lambda: None)
    any_loop.add_signal_handler(signal.SIGINT, lambda: None)
    any_loop.close()
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.set_wakeup_fd(-1) == -1


# -- error paths --------------------------------------------------------------

@pytest.mark.parametrize("sig", [0, 1000, -1])
def test_invalid_signal_number_raises_value_error(any_loop, sig):
    with pytest.raises(ValueError) as ei:
        any_loop.add_signal_handler(sig, lambda: None)
    assert str(ei.value) == f"invalid signal number {sig}"
    with pytest.raises(ValueError):
        any_loop.remove_signal_handler(sig)


def test_non_int_signal_raises_type_error(any_loop):
    with pytest.raises(TypeError, match="sig must be an int, not '2'"):
        any_loop.add_signal_handler("2", lambda: None)
    with pytest.raises(TypeError, match="sig must be an int"):
        any_loop.remove_signal_handler(2.0)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSTOP])
def test_uncatchable_signal_raises_runtime_error(any_loop, sig):
    with pytest.raises(RuntimeError) as ei:
        any_loop.add_signal_handler(sig, lambda: None)
    assert str(ei.value) == f"sig {sig} cannot be caught"
    assert signal.set_wakeup_fd(-1) == -1  # nothing left installed
    assert any_loop.remove_signal_handler(sig) is False


def test_coroutine_callbacks_raise_type_error(any_loop):
    async def coro_fn():
        pass

    coro = coro_fn()
    try:
        for cb in (coro_fn, coro):
            with pytest.raises(TypeError) as ei:
                any_loop.add_signal_handler(signal.SIGUSR1, cb)
            assert str(ei.value) == ("coroutines cannot be used "
                                     "with add_signal_handler()")
    finally:
        coro.close()


def test_closed_loop_raises_runtime_error(any_loop):
    any_loop.close()
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        any_loop.add_signal_handler(signal.SIGUSR1, lambda: None)


def test_outside_main_thread_raises_runtime_error(any_loop):
    errors = []

    def other():
        try:
            any_loop.add_signal_handler(signal.SIGUSR1, lambda: None)
        except Exception as exc:
            errors.append(exc)

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert type(errors[0]) is RuntimeError
    assert "main thread" in str(errors[0])
    assert any_loop.remove_signal_handler(signal.SIGUSR1) is False


# -- child processes: SIGINT while the loop sleeps inside libuv ------------------

def _child(code, send, settle=0.3):
    env = child_env()
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)],
                            env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(settle)  # let it fall asleep in uv_run
        for sig in send:
            proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out, err


def test_sigint_handler_runs_while_loop_sleeps_in_child():
    rc, out, err = _child("""
        import asyncio, signal, uvffi
        async def main():
            loop = asyncio.get_running_loop()
            fut = loop.create_future()
            loop.add_signal_handler(signal.SIGINT, fut.set_result, "handled")
            print("ready", flush=True)
            print(await asyncio.wait_for(fut, 60), flush=True)
            assert loop.remove_signal_handler(signal.SIGINT)
        uvffi.run(main())
    """, [signal.SIGINT])
    assert rc == 0, err
    assert out.strip() == "handled"
    assert "KeyboardInterrupt" not in err


def test_sigint_after_handler_removed_raises_keyboard_interrupt_in_child():
    rc, out, err = _child("""
        import asyncio, signal, uvffi
        async def main():
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGINT, lambda: None)
            loop.remove_signal_handler(signal.SIGINT)
            print("ready", flush=True)
            await asyncio.sleep(60)
        loop = uvffi.new_event_loop()
        try:
            loop.run_until_complete(main())
        finally:
            loop.close()
    """, [signal.SIGINT])
    assert rc != 0
    assert "KeyboardInterrupt" in err


def test_sigterm_handler_stops_loop_in_child():
    rc, out, err = _child("""
        import functools, signal, uvffi
        loop = uvffi.new_event_loop()
        loop.add_signal_handler(signal.SIGTERM, loop.stop)
        loop.call_soon(functools.partial(print, "ready", flush=True))
        loop.run_forever()
        loop.close()
        print("stopped", signal.getsignal(signal.SIGTERM) is signal.SIG_DFL)
    """, [signal.SIGTERM])
    assert rc == 0, err
    assert out.strip() == "stopped True"


def test_examples_signals_terminates_by_itself():
    path = os.path.join(os.path.dirname(__file__), "..", "examples", "signals.py")
    env = child_env()
    proc = subprocess.run([sys.executable, path], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "SIGTERM" in proc.stdout
