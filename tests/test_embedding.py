"""Embedding: guest mode on a host's uv_loop_t, and our uv_loop_t handed to
other C code (docs/embedding.md).

Most tests play the host from Python: a raw ``uv_loop_t`` made with uvffi's
own cffi ``ffi``/``lib``, driven by calling ``lib.uv_run`` directly while the
guest loop's coroutines, timers, threadsafe calls and I/O run inside it.
"""
import asyncio
import gc
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import threading
import time
import weakref

import pytest

import uvffi
from uvffi import embedding
from uvffi._uv import ffi, lib
from _childenv import child_env
from _uvhost import Host, close_host

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
IS_PYPY = sys.implementation.name == "pypy"
@pytest.fixture
def host():
    h = Host()
    yield h
    close_host(h)


def foreign(host):
    """A loop over the host's uv_loop_t whose reported errors fail the test."""
    loop = uvffi.Loop.from_uv_loop(host.address)
    loop.set_exception_handler(lambda lp, ctx: host.errors.append(ctx))
    return loop


def guest(host, **kw):
    loop = foreign(host)
    loop.start_guest(**kw)
    return loop


def finish(loop, host):
    loop.stop_guest()
    loop.close()
    host.run(lib.UV_RUN_NOWAIT)  # the close callbacks of the guest's handles
    assert host.handle_count() == 0


# -- guest mode on a Python-driven host -------------------------------------------


@pytest.mark.parametrize("debug", [False, True])
def test_tasks_and_timers_run_inside_the_hosts_uv_run(host, debug):
    loop = foreign(host)
    loop.set_debug(debug)
    loop.start_guest()
    order = []

    async def main():
        assert asyncio.get_running_loop() is loop
        loop.call_later(0.03, order.append, "later-2")
        loop.call_later(0.01, order.append, "later-1")
        loop.call_soon(order.append, "soon")
        await asyncio.sleep(0.05)
        order.append("slept")
        return 42

    task = loop.create_task(main())
    host.run_until(task.done)
    assert task.result() == 42
    assert order == ["soon", "later-1", "later-2", "slept"]
    # between the host's uv_run calls too, the guest is the running loop
    assert asyncio.get_running_loop() is loop
    assert loop.is_running() and loop.is_guest_running()
    finish(loop, host)
    assert not loop.is_running()
    with pytest.raises(RuntimeError):  # stop_guest gave the thread back
        asyncio.get_running_loop()


def test_loop_stop_ends_guest_mode_and_lets_uv_run_default_return(host):
    loop = guest(host)

    async def main():
        await asyncio.sleep(0.02)
        return "done"

    task = loop.create_task(main())
    task.add_done_callback(lambda t: loop.stop())
    host.run()  # UV_RUN_DEFAULT: returns once guest mode has ended
    assert task.result() == "done"
    assert not loop.is_guest_running()
    # guest mode can start again
    loop.start_guest()
    task = loop.create_task(asyncio.sleep(0.01, "again"))
    host.run_until(task.done)
    assert task.result() == "again"
    finish(loop, host)


def test_stop_guest_from_a_callback_acts_like_stop(host):
    loop = guest(host)
    order = []

    def first():
        order.append("first")
        loop.stop_guest()  # inside the step: ends guest mode after it
        order.append("after stop_guest")

    loop.call_soon(first)
    loop.call_soon(order.append, "same step")
    host.run()  # keep_alive: returns only because guest mode ended
    assert order == ["first", "after stop_guest", "same step"]
    assert not loop.is_guest_running()
    finish(loop, host)


def test_keep_alive_false_lets_the_host_return_when_python_is_idle(host):
    loop = guest(host, keep_alive=False)
    host.run()  # nothing pending: returns at once
    loop.stop_guest()
    fired = []

    async def main():
        await asyncio.sleep(0.01)
        loop.call_later(0.02, fired.append, 2)  # scheduled inside: seen
        fired.append(1)

    # work scheduled from outside the loop's callbacks is armed by start_guest
    loop.create_task(main())
    loop.start_guest(keep_alive=False)
    host.run()  # the pending timers keep the host's loop alive until they fired
    assert fired == [1, 2]
    finish(loop, host)


def test_call_soon_threadsafe_and_executor_wake_the_host(host):
    loop = guest(host)

    async def main():
        fut = loop.create_future()

        def worker():
            time.sleep(0.05)
            loop.call_soon_threadsafe(fut.set_result, "from thread")

        threading.Thread(target=worker).start()
        got = await fut
        total = await loop.run_in_executor(None, sum, range(5))
        return got, total

    task = loop.create_task(main())
    host.run_until(task.done)
    assert task.result() == ("from thread", 10)
    finish(loop, host)


def test_io_callbacks_run_with_the_guest_as_running_loop(host):
    loop = guest(host)
    rsock, wsock = socket.socketpair()
    rsock.setblocking(False)
    got = []

    def on_readable():
        got.append((rsock.recv(100), asyncio.get_running_loop() is loop))

    try:
        try:
            loop.add_reader(rsock.fileno(), on_readable)
            remove = lambda: loop.remove_reader(rsock.fileno())  # noqa: E731
        except NotImplementedError:  # add_reader not there yet: raw poll
            from uvffi.handles import poll
            p = poll.Poll(loop, rsock.fileno(), lambda status, events: on_readable())
            p.start(poll.READABLE)
            remove = p.close
        host.run(lib.UV_RUN_NOWAIT)
        threading.Timer(0.05, wsock.send, (b"ping",)).start()
        host.run_until(lambda: got)
        assert got == [(b"ping", True)]
        remove()
    finally:
        finish(loop, host)
        rsock.close()
        wsock.close()


def test_io_callbacks_see_the_guest_as_running_loop_while_it_is_busy(host):
    # a busy guest (callbacks always ready) runs no prepare step: reader
    # and protocol callbacks must still see the guest as the running loop
    loop = guest(host)
    rsock, wsock = socket.socketpair()
    rsock.setblocking(False)
    seen = []

    def on_readable():
        seen.append((rsock.recv(100), asyncio.get_running_loop() is loop))

    class Server(asyncio.Protocol):
        def data_received(self, data):
            seen.append((data, asyncio.get_running_loop() is loop))

    async def spin(stop):
        while not stop.is_set():
            await asyncio.sleep(0)

    async def main():
        stop = asyncio.Event()
        spinner = asyncio.ensure_future(spin(stop))
        loop.add_reader(rsock.fileno(), on_readable)
        server = await loop.create_server(Server, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        for i in range(20):
            transport.write(b"x")
            threading.Timer(0.001, wsock.send, (b"y",)).start()
            await asyncio.sleep(0.003)
        while len(b"".join(d for d, _ in seen)) < 40:
            await asyncio.sleep(0.01)
        stop.set()
        await spinner
        loop.remove_reader(rsock.fileno())
        transport.close()
        server.close()
        await server.wait_closed()

    try:
        task = loop.create_task(main())
        host.run_until(task.done)
        task.result()
        assert seen and all(ok for _, ok in seen), seen
    finally:
        finish(loop, host)
        rsock.close()
        wsock.close()


def test_async_generators_are_registered_with_the_guest(host):
    loop = guest(host)

    async def agen():
        yield 1
        yield 2

    async def main():
        g = agen()
        first = await g.__anext__()
        registered = g in loop._asyncgens  # firstiter hook was the guest's
        await g.aclose()
        return first, registered

    task = loop.create_task(main())
    host.run_until(task.done)
    assert task.result() == (1, True)
    finish(loop, host)


def test_exceptions_in_callbacks_go_to_the_handler_and_guest_goes_on(host):
    loop = guest(host)
    seen = []
    loop.set_exception_handler(lambda lp, ctx: seen.append(ctx["exception"]))
    loop.call_soon(lambda: 1 / 0)
    task = loop.create_task(asyncio.sleep(0.01, "still running"))
    host.run_until(task.done)
    assert isinstance(seen[0], ZeroDivisionError)
    assert task.result() == "still running"
    finish(loop, host)


def test_keyboard_interrupt_stops_the_host_and_is_raised_by_stop_guest(host):
    loop = guest(host)

    def interrupt():
        raise KeyboardInterrupt

    loop.call_soon(interrupt)
    host.run()  # UV_RUN_DEFAULT with keep_alive: returns only through uv_stop
    assert isinstance(loop.guest_exception, KeyboardInterrupt)
    assert loop.is_guest_running()  # paused until stop_guest() reports it
    with pytest.raises(KeyboardInterrupt):
        loop.stop_guest()
    assert loop.guest_exception is None and not loop.is_running()
    # the loop is still usable, in both modes
    assert loop.run_until_complete(asyncio.sleep(0, "ok")) == "ok"
    loop.start_guest()
    task = loop.create_task(asyncio.sleep(0.01, "ok again"))
    host.run_until(task.done)
    assert task.result() == "ok again"
    finish(loop, host)


@pytest.mark.skipif(not hasattr(os, "kill") or sys.platform == "win32",
                    reason="needs POSIX signals")
def test_ctrl_c_wakes_the_host_and_is_raised_by_stop_guest(host):
    import signal
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals are delivered to the main thread")
    loop = guest(host)
    ran = []
    loop.call_later(30, ran.append, "too late")
    threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT)).start()
    host.run()  # sleeps in the host's poll until SIGINT arrives
    with pytest.raises(KeyboardInterrupt):
        loop.stop_guest()
    assert ran == []
    finish(loop, host)


def test_run_until_complete_on_a_foreign_loop_when_the_host_is_not_running(host):
    loop = foreign(host)

    async def main():
        fut = loop.create_future()
        threading.Timer(0.02, loop.call_soon_threadsafe, (fut.set_result, 7)).start()
        return await fut + await loop.run_in_executor(None, int, "1")

    assert loop.run_until_complete(main()) == 8
    # the Python loop alone does not keep the host's uv_run(DEFAULT) alive
    host.run()
    loop.close()
    host.run(lib.UV_RUN_NOWAIT)
    assert host.handle_count() == 0


# -- lifetime ---------------------------------------------------------------------


def test_closing_a_guest_loop_never_frees_handles_before_the_host_runs(host):
    loop = guest(host)
    rsock, wsock = socket.socketpair()
    try:
        try:
            loop.add_reader(rsock.fileno(), lambda: None)
        except NotImplementedError:
            pass
        loop.call_later(3600, lambda: None)
        task = loop.create_task(asyncio.sleep(0.01))
        host.run_until(task.done)
        # the host stops running its loop with Python handles still open
        loop.stop_guest()
        loop.close()
        assert host.handle_count() > 0
        assert embedding.pending_close_count() > 0
        ref = weakref.ref(loop)
        del loop, task
        gc.collect()
        assert ref() is not None  # held until libuv's close callbacks ran
        host.run(lib.UV_RUN_NOWAIT)
        assert embedding.pending_close_count() == 0
        assert host.handle_count() == 0
        for _ in range(3):
            gc.collect()
        assert ref() is None
    finally:
        rsock.close()
        wsock.close()


def test_an_unclosed_foreign_loop_is_kept_alive_not_freed(host):
    loop = guest(host)
    loop.call_soon(lambda: None)
    ref = weakref.ref(loop)
    del loop
    gc.collect()
    lp = ref()
    assert lp is not None  # the host's loop still points into it
    host.run(lib.UV_RUN_NOWAIT)
    finish(lp, host)


# -- pointers in and out ------------------------------------------------------------


def test_pointer_forms_accepted(host):
    import cffi
    other_ffi = cffi.FFI()
    capsule = uvffi._capsule.new(host.address, host)
    forms = [host.address, host.ptr, ffi.cast("void *", host.address),
             other_ffi.cast("void *", host.address), capsule]
    for form in forms:
        assert uvffi.uv_loop_address(form) == host.address
        loop = uvffi.Loop.from_uv_loop(form)
        try:
            assert loop.uv_loop_t == host.address
            assert loop.run_until_complete(asyncio.sleep(0, "x")) == "x"
        finally:
            loop.close()
    host.run(lib.UV_RUN_NOWAIT)


def test_every_loop_exports_its_pointer_as_int_and_capsule(loop):
    cap = loop.uv_loop_capsule
    assert type(cap).__name__ == "PyCapsule"
    assert '"uv_loop_t"' in repr(cap)
    assert uvffi.uv_loop_address(cap) == loop.uv_loop_t
    assert loop.uv_loop_t == int(ffi.cast("uintptr_t", loop._uv_loop))


def test_the_capsule_keeps_the_loop_memory_alive():
    lp = uvffi.new_event_loop()
    cap = lp.uv_loop_capsule
    ref = weakref.ref(lp)
    lp.close()
    del lp
    gc.collect()
    assert ref() is not None
    del cap
    for _ in range(5):  # PyPy frees cpyext objects over several passes
        gc.collect()
    assert ref() is None


def test_closed_loop_has_no_pointer():
    lp = uvffi.new_event_loop()
    lp.close()
    with pytest.raises(RuntimeError):
        lp.uv_loop_t
    with pytest.raises(RuntimeError):
        lp.uv_loop_capsule


@pytest.mark.parametrize("bad", [0, ffi.NULL, -1, 1 << 70])
def test_null_or_invalid_pointer_is_a_value_error(bad):
    with pytest.raises(ValueError):
        uvffi.Loop.from_uv_loop(bad)


def test_closed_host_loop_is_a_value_error():
    ptr = ffi.new("uv_loop_t *")
    assert lib.uv_loop_init(ptr) == 0
    assert lib.uv_loop_close(ptr) == 0
    with pytest.raises(ValueError, match="closed"):
        uvffi.Loop.from_uv_loop(ptr)


def test_capsule_with_another_name_is_a_value_error(host):
    import datetime
    cap = getattr(datetime, "datetime_CAPI", None)
    if cap is None:
        pytest.skip("no foreign capsule at hand on this interpreter")
    with pytest.raises(ValueError):
        uvffi.Loop.from_uv_loop(cap)


@pytest.mark.parametrize("bad", ["0x1234", 1.5, None, True, object()])
def test_other_types_are_type_errors(bad):
    with pytest.raises(TypeError):
        uvffi.Loop.from_uv_loop(bad)
    with pytest.raises(TypeError):
        uvffi.Loop.from_uv_loop(ffi.cast("int", 5))


# -- misuse -------------------------------------------------------------------------


def test_guest_mode_from_another_thread_is_a_runtime_error(host):
    loop = guest(host)
    errors = []

    def other():
        for call in (loop.stop_guest, loop.start_guest):
            try:
                call()
            except RuntimeError as exc:
                errors.append(exc)

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert len(errors) == 2
    finish(loop, host)


def test_host_running_the_loop_in_another_thread_is_reported(host):
    loop = guest(host)
    t = threading.Thread(target=host.run)  # stopped by the guest: uv_stop
    t.start()
    t.join(15)
    assert not t.is_alive()
    with pytest.raises(RuntimeError, match="thread"):
        loop.stop_guest()
    finish(loop, host)


def test_guest_mode_misuse_raises(host):
    loop = guest(host)
    with pytest.raises(RuntimeError):
        loop.start_guest()
    coro = asyncio.sleep(0)
    with pytest.raises(RuntimeError):
        loop.run_until_complete(coro)
    coro.close()
    with pytest.raises(RuntimeError):
        loop.close()
    second = uvffi.Loop.from_uv_loop(host.address)
    with pytest.raises(RuntimeError, match="another uvffi loop"):
        second.start_guest()
    second.close()
    finish(loop, host)
    with pytest.raises(RuntimeError, match="closed"):
        loop.start_guest()
    loop.stop_guest()  # no-op once guest mode is off


def test_guest_mode_on_a_uvffi_loop_run_by_someone_else(loop):
    """Guest mode also works on our own loop when another component runs
    uv_run on it (and close() still closes the uv_loop_t we own)."""
    loop.start_guest()
    task = loop.create_task(asyncio.sleep(0.01, "owned"))
    deadline = time.monotonic() + 15
    while not task.done():
        assert time.monotonic() < deadline
        lib.uv_run(loop._uv_loop, lib.UV_RUN_ONCE)
    assert task.result() == "owned"
    loop.stop_guest()


# -- other C code on our loop ------------------------------------------------------------


def _compile(tmp_path, name, source, output, extra=()):
    if shutil.which("gcc") is None or shutil.which("pkg-config") is None:
        pytest.skip("needs gcc and pkg-config")
    try:
        flags = subprocess.run(["pkg-config", "--cflags", "--libs", "libuv"],
                               check=True, capture_output=True, text=True).stdout.split()
    except subprocess.CalledProcessError:
        pytest.skip("pkg-config does not know libuv")
    src = tmp_path / name
    src.write_text(source)
    out = tmp_path / output
    cmd = ["gcc", "-shared", "-fPIC", "-O1", "-o", str(out), str(src)] + list(extra) + flags
    proc = subprocess.run(cmd, capture_output=True, text=True)
    return out, proc


FOREIGN_TIMER_C = r"""
#include <stdlib.h>
#include <uv.h>
/* A C library that knows nothing of Python: it puts a timer of its own on
 * whatever uv_loop_t it is given and reports to a C callback. */
typedef void (*ft_notify)(int count);
static ft_notify notify;
static int fired;
static void on_close(uv_handle_t *h) { free(h); }
static void on_timer(uv_timer_t *t)
{
    fired++;
    if (notify) notify(fired);
    uv_close((uv_handle_t *)t, on_close);
}
int ft_start(void *loop, unsigned long long ms, ft_notify cb)
{
    uv_timer_t *t = malloc(sizeof *t);
    int rc;
    notify = cb;
    rc = uv_timer_init((uv_loop_t *)loop, t);
    if (rc != 0) { free(t); return rc; }
    return uv_timer_start(t, on_timer, ms, 0);
}
int ft_fired(void) { return fired; }
"""


def test_a_foreign_c_library_adds_its_timer_to_a_running_uvffi_loop(loop, tmp_path):
    import cffi
    so, proc = _compile(tmp_path, "foreign_timer.c", FOREIGN_TIMER_C, "libforeign_timer.so")
    assert proc.returncode == 0, proc.stderr
    cffi_ = cffi.FFI()
    cffi_.cdef("int ft_start(void *loop, unsigned long long ms, void (*cb)(int));"
               "int ft_fired(void);")
    clib = cffi_.dlopen(str(so))
    seen = []

    async def main():
        done = loop.create_future()

        @cffi_.callback("void(int)")
        def notify(count):
            # runs inside the uvffi loop's uv_run, from the C library's timer
            seen.append((count, asyncio.get_running_loop() is loop))
            done.set_result(None)

        assert clib.ft_start(cffi_.cast("void *", loop.uv_loop_t), 20, notify) == 0
        await asyncio.wait_for(done, 10)
        return clib.ft_fired()

    assert loop.run_until_complete(main()) == 1
    assert seen == [(1, True)]


CAPSULE_TIMER_C = r"""
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>
#include <uv.h>
/* A C extension module that takes the loop as a PyCapsule "uv_loop_t". */
static int fired;
static void on_close(uv_handle_t *h) { free(h); }
static void on_timer(uv_timer_t *t) { fired++; uv_close((uv_handle_t *)t, on_close); }
static PyObject *start(PyObject *self, PyObject *capsule)
{
    uv_loop_t *loop = PyCapsule_GetPointer(capsule, "uv_loop_t");
    uv_timer_t *t;
    if (loop == NULL) return NULL;
    t = malloc(sizeof *t);
    uv_timer_init(loop, t);
    uv_timer_start(t, on_timer, 10, 0);
    Py_RETURN_NONE;
}
static PyObject *count(PyObject *self, PyObject *unused) { return PyLong_FromLong(fired); }
static PyObject *other(PyObject *self, PyObject *unused)
{
    return PyCapsule_New(&fired, "not_a_loop", NULL);
}
static PyMethodDef methods[] = {
    {"start", start, METH_O, NULL}, {"count", count, METH_NOARGS, NULL},
    {"other", other, METH_NOARGS, NULL}, {NULL}};
static struct PyModuleDef mod = {PyModuleDef_HEAD_INIT, "capsule_timer", NULL, -1, methods};
PyMODINIT_FUNC PyInit_capsule_timer(void) { return PyModule_Create(&mod); }
"""


def test_a_c_extension_uses_the_capsule(loop, tmp_path):
    import importlib.util
    include = sysconfig.get_paths()["include"]
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    so, proc = _compile(tmp_path, "capsule_timer.c", CAPSULE_TIMER_C,
                        "capsule_timer" + suffix, ["-I" + include])
    if proc.returncode != 0:
        if IS_PYPY:
            pytest.skip("could not build a cpyext module here: " + proc.stderr[-300:])
        raise AssertionError(proc.stderr)
    spec = importlib.util.spec_from_file_location("capsule_timer", str(so))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.start(loop.uv_loop_capsule)

    async def main():
        while mod.count() == 0:
            await asyncio.sleep(0.005)
        return mod.count()

    assert loop.run_until_complete(asyncio.wait_for(main(), 10)) == 1
    # a capsule with another name is refused on both sides
    with pytest.raises(ValueError):
        mod.start(mod.other())
    with pytest.raises(ValueError, match="uv_loop_t"):
        uvffi.Loop.from_uv_loop(mod.other())


# -- the C host example --------------------------------------------------------------------


@pytest.fixture(scope="module")
def c_host(tmp_path_factory):
    """examples/embedding's host, built once for this module."""
    if IS_PYPY:
        pytest.skip("the example host embeds CPython (libpython); PyPy has no "
                    "Development.Embed library to link")
    if shutil.which("cmake") is None:
        pytest.skip("cmake not found")
    if not sysconfig.get_config_var("Py_ENABLE_SHARED") and not sysconfig.get_config_var("LIBRARY"):
        pytest.skip("this Python has no library to embed")
    build = tmp_path_factory.mktemp("embed") / "build"
    conf = subprocess.run(
        ["cmake", "-S", os.path.join(TOP, "examples", "embedding"), "-B", str(build),
         "-DPython_EXECUTABLE=" + sys.executable],
        capture_output=True, text=True)
    if conf.returncode != 0:
        if "pkg-config" in conf.stderr or "libuv" in conf.stderr:
            pytest.skip("libuv development files not found: " + conf.stderr[-300:])
        raise AssertionError(conf.stdout + conf.stderr)
    if "not built: no Python library" in conf.stderr:
        pytest.skip("no Python embedding library (Development.Embed)")
    proc = subprocess.run(["cmake", "--build", str(build)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return build / "uvffi_embed_host"


def _check_c_host_output(run):
    out = run.stdout
    assert run.returncode == 0, out + run.stderr
    for i in range(1, 6):
        assert "host: tick %d\n" % i in out
    for i in range(1, 4):
        assert "python: tick %d (running loop is the guest loop: True)" % i in out
    assert "python: executor returned 45" in out
    assert "python: task result ok" in out
    assert "host: uv_loop_close -> 0" in out
    # the Python task ran while the host's uv_run was in charge
    assert out.index("host: running uv_run") < out.index("python: tick 1")
    assert out.index("python: tick 3") < out.index("host: uv_run returned")
    # asyncio.run's ending ran inside the host's iterations, before uv_run
    # returned: the leftover task was cancelled, nothing was destroyed pending
    assert out.index("python: background task cancelled") < out.index("host: uv_run returned")
    assert "Task was destroyed" not in out + run.stderr


def test_c_host_example(c_host):
    run = subprocess.run([str(c_host)], capture_output=True, text=True,
                         env=child_env(), timeout=120)
    _check_c_host_output(run)


def test_c_host_example_finds_uvffi_in_the_active_virtual_environment(c_host, tmp_path):
    # the documented command after `pip install .` in a venv: no PYTHONPATH
    import uvffi as installed
    if sys.prefix == sys.base_prefix:
        pytest.skip("not running in a virtual environment")
    if not os.path.abspath(installed.__file__).startswith(os.path.abspath(sys.prefix)):
        pytest.skip("uvffi is imported from a source tree, not installed in the venv")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["VIRTUAL_ENV"] = sys.prefix
    run = subprocess.run([str(c_host), os.path.join(TOP, "examples", "embedding")],
                         capture_output=True, text=True, env=env, timeout=120,
                         cwd=str(tmp_path))
    _check_c_host_output(run)


def test_buffered_protocol_large_reads_on_a_hosts_loop(host):
    # a host's loop has no batch: reads come one callback each, and large
    # ones go straight into the BufferedProtocol's buffer there too
    from uvffi.handles import streamreads
    loop = guest(host)
    a, b = socket.socketpair()
    data = bytes(range(256)) * (16 * 1024)  # 4 MiB
    got = bytearray()
    modes = set()

    class Buf(asyncio.BufferedProtocol):
        def connection_made(self, tr):
            self.tr = tr
            self.buf = memoryview(bytearray(256 * 1024))

        def get_buffer(self, sizehint):
            return self.buf

        def buffer_updated(self, n):
            got.extend(self.buf[:n])
            modes.add(self.tr._stream.mode)

    try:
        fut = asyncio.run_coroutine_threadsafe(
            loop.connect_accepted_socket(Buf, a), loop)
        host.run_until(fut.done)
        tr, _ = fut.result()
        sender = threading.Thread(target=b.sendall, args=(data,))
        sender.start()
        host.run_until(lambda: len(got) >= len(data))
        sender.join()
        assert bytes(got) == data
        assert streamreads.BUFFERED_LARGE_MODE in modes
        tr.close()
        host.run(lib.UV_RUN_NOWAIT)
    finally:
        finish(loop, host)
        b.close()


def test_plain_protocol_large_reads_on_a_hosts_loop(host):
    # on a host's loop too, a plain protocol's large reads are uvffi's own
    # reads into new bytes (largereads.py), whole and in order
    from uvffi.handles import streamreads
    loop = guest(host)
    a, b = socket.socketpair()
    data = bytes(range(256)) * (16 * 1024)  # 4 MiB
    got = bytearray()
    modes = set()

    class Plain(asyncio.Protocol):
        def connection_made(self, tr):
            self.tr = tr

        def data_received(self, chunk):
            got.extend(chunk)
            modes.add(self.tr._stream.mode)

    try:
        fut = asyncio.run_coroutine_threadsafe(
            loop.connect_accepted_socket(Plain, a), loop)
        host.run_until(fut.done)
        tr, _ = fut.result()
        sender = threading.Thread(target=b.sendall, args=(data,))
        sender.start()
        host.run_until(lambda: len(got) >= len(data))
        sender.join()
        assert bytes(got) == data
        if streamreads.PLAIN_SELF_READS:
            assert streamreads._READ_SELF in modes
        tr.close()
        host.run(lib.UV_RUN_NOWAIT)
    finally:
        finish(loop, host)
        b.close()


@pytest.mark.parametrize("binding", ["ctypes", "cffi"])
def test_pointer_out_example_runs_a_foreign_timer_on_the_uvffi_loop(binding):
    if lib.UVFFI_LIBUV_VENDORED:
        pytest.skip("a vendored build keeps its libuv private: no C code "
                    "outside uvffi can share it")
    example = os.path.join(TOP, "examples", "embedding", "pointer_out_%s.py" % binding)
    proc = subprocess.run([sys.executable, example], env=child_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == "%s timer fired 3 times\n%s timer closed\n" % (binding, binding)
