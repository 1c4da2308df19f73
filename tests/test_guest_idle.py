"""An idle guest costs its host no Python call per iteration, and every way
work can reach it while idle wakes it in the host's next iteration
(docs/embedding.md, "How guest mode runs")."""
import asyncio
import socket
import threading

import pytest

import uvffi
from uvffi._uv import lib
from _uvhost import Host, close_host

WAKE_TIMEOUT = 5.0  # seconds a woken guest may take before the test fails


@pytest.fixture
def host():
    h = Host()
    yield h
    close_host(h)


def idle_guest(host):
    loop = uvffi.Loop.from_uv_loop(host.address)
    loop.set_exception_handler(lambda lp, ctx: host.errors.append(ctx))
    loop.start_guest()
    # a far timer, as an idle application has: the guest timer is armed
    # for it, so only a wake-up can make an earlier one run in time
    far = loop.call_later(3600, host.errors.append, "the far timer fired")
    for _ in range(3):  # the first iterations after start_guest run Python
        host.run(lib.UV_RUN_NOWAIT)
    return loop, far


def count_python_calls(loop):
    """Wrap the guest's prepare and check Python callbacks with a counter."""
    g = loop._guest
    calls = []
    for handle in (g.prepare, g.check):
        inner = handle.callback

        def counted(inner=inner):
            calls.append(inner)
            inner()
        handle.callback = counted
    return calls


def end(loop, host, far):
    far.cancel()
    loop.stop_guest()
    loop.close()
    host.run(lib.UV_RUN_NOWAIT)


def test_an_idle_guest_runs_no_python_in_the_hosts_iterations(host):
    loop, far = idle_guest(host)
    calls = count_python_calls(loop)
    for _ in range(1000):
        host.run(lib.UV_RUN_NOWAIT)
    assert calls == []
    # and a busy one does
    loop.call_soon(lambda: None)
    host.run(lib.UV_RUN_NOWAIT)
    assert calls
    end(loop, host, far)


def _from_host_code(loop, ran):
    """Ways host code between uv_run calls hands work to an idle guest."""
    return {
        "call_soon": lambda: loop.call_soon(ran.append, 1),
        "call_later": lambda: loop.call_later(0.001, ran.append, 1),
        "call_at": lambda: loop.call_at(loop.time() + 0.001, ran.append, 1),
        "create_task": lambda: loop.create_task(asyncio.sleep(0.001, 1)).add_done_callback(
            lambda t: ran.append(t.result())),
        "ready_append": lambda: loop._ready.append(
            asyncio.Handle(ran.append, (1,), loop)),
        "debug_call_soon": lambda: (loop.set_debug(True), loop.call_soon(ran.append, 1)),
    }


@pytest.mark.parametrize("way", sorted(_from_host_code(None, None)))
def test_work_queued_by_host_code_wakes_an_idle_guest(host, way):
    loop, far = idle_guest(host)
    ran = []
    _from_host_code(loop, ran)[way]()
    host.run_until(lambda: ran, timeout=WAKE_TIMEOUT)
    assert ran == [1]
    loop.set_debug(False)
    end(loop, host, far)


def test_loop_stop_from_host_code_ends_an_idle_guest(host):
    loop, far = idle_guest(host)
    loop.stop()
    host.run_until(lambda: not loop.is_guest_running(), timeout=WAKE_TIMEOUT)
    far.cancel()
    loop.close()
    host.run(lib.UV_RUN_NOWAIT)


def test_call_soon_threadsafe_wakes_an_idle_guest_in_a_blocked_host(host):
    loop, far = idle_guest(host)
    ran = []
    t = threading.Timer(0.05, loop.call_soon_threadsafe, (ran.append, 1))
    t.start()
    # one uv_run(ONCE) with nothing but the far timer: it returns only
    # because the thread's wake-up reached the guest's step
    while not ran:
        host.run(lib.UV_RUN_ONCE)
    t.join()
    assert ran == [1]
    end(loop, host, far)


def test_an_io_callback_that_only_adds_a_timer_wakes_an_idle_guest(host):
    """data_received runs in the host's poll and schedules nothing but a
    timer: that timer must still run in time."""
    loop, far = idle_guest(host)
    fired = []

    class Proto(asyncio.Protocol):
        def data_received(self, data):
            loop.call_later(0.001, fired.append, data)

    a, b = socket.socketpair()
    try:
        conn = loop.create_task(loop.create_connection(Proto, sock=a))
        host.run_until(conn.done, timeout=WAKE_TIMEOUT)
        transport, _ = conn.result()
        for _ in range(3):  # idle again
            host.run(lib.UV_RUN_NOWAIT)
        b.send(b"ping")
        host.run_until(lambda: fired, timeout=WAKE_TIMEOUT)
        assert fired == [b"ping"]
        transport.close()
        host.run(lib.UV_RUN_NOWAIT)
    finally:
        b.close()
    end(loop, host, far)


def test_the_guest_is_the_running_loop_for_all_of_guest_mode(host):
    loop, far = idle_guest(host)
    assert asyncio.get_running_loop() is loop  # between uv_run calls too
    end(loop, host, far)
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()


def test_guest_mode_cannot_start_inside_another_running_loop(host):
    loop = uvffi.Loop.from_uv_loop(host.address)
    other = asyncio.new_event_loop()

    async def start_inside():
        loop.start_guest()

    try:
        with pytest.raises(RuntimeError, match="another loop is running"):
            other.run_until_complete(start_inside())
        assert not loop.is_guest_running()
    finally:
        other.close()
        loop.close()
        host.run(lib.UV_RUN_NOWAIT)
