"""Bad input, found by hypothesis: random sequences of loop operations with
odd arguments run on asyncio's SelectorEventLoop (the oracle) and on uvffi,
and each step must end the same way on both -- same result type, or same
exception type (and errno) -- with no crash.  Exceptions that reach the
exception handler are compared too.

Every operation is bounded in time (coroutines run under ``wait_for``), only
loopback addresses and local names are used, and every socket, file and
transport an operation makes is closed when the example ends.
"""
import asyncio
import concurrent.futures
import math
import signal
import socket
import sys
import tempfile
import threading
import warnings

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

import uvffi  # noqa: E402

_SOON = 0.1  # how long an operation that would block may wait (seconds)


def _cb(*args):
    return None


def _raise_value_error(*args):
    raise ValueError("raised by a callback")


class _Ctx:
    """The state one operation sequence runs against, on one loop."""

    def __init__(self, loop, other_loop, tmpfile):
        self.loop = loop
        self.other_loop = other_loop
        self.tmpfile = tmpfile
        self.handles = []
        self.futures = []
        self.closeables = []
        self.reported = []
        loop.set_exception_handler(self._record)

    def _record(self, loop, context):
        if "never retrieved" in context.get("message", ""):
            # reported from a future's __del__: when the GC runs, not when
            # the operation ran, so not comparable between two loops
            return
        exc = context.get("exception")
        self.reported.append(type(exc).__name__ if exc is not None
                             else context.get("message", "")[:20])

    def sock(self, i):
        """A socket of the kind *i* picks (all non-blocking), or a non-socket."""
        kind = i % 8
        if kind == 0:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        elif kind == 1:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            s.listen(1)
        elif kind == 2:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
        elif kind in (3, 4):
            s, peer = socket.socketpair()
            peer.setblocking(False)
            self.closeables.append(peer)
            if kind == 4:
                peer.send(b"x" * 10)
        elif kind == 5:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.close()  # fileno() == -1
            return s
        elif kind == 6:
            return None
        else:
            return self.tmpfile
        s.setblocking(False)
        self.closeables.append(s)
        return s

    def fd(self, i):
        kind = i % 8
        if kind < 2:
            return self.sock(3).fileno()
        return [-1, 10 ** 6, "x", None, 2.5, self.tmpfile.fileno()][kind - 2]

    def run(self, aw, timeout=_SOON):
        return self.loop.run_until_complete(asyncio.wait_for(aw, timeout))

    def close_all(self):
        for obj in self.closeables:
            try:
                obj.close()
            except Exception:
                pass


CALLBACKS = [_cb, None, 1, "text", _raise_value_error, print, (lambda: 1), object()]
# 30 s, not a few ms: whether a short timer has already fired (and left the
# heap) depends on how long the previous step took, and a later push of an
# incomparable deadline ("1") raises only while another timer is in the heap.
DELAYS = [0, -1, 30.0, None, "1", math.nan, 1e300, math.inf]
PORTS = [None, 0, "http", -1, 70000, 1.5, b"80", []]
HOSTS = [None, "localhost", b"127.0.0.1", "127.0.0.1", "::1", 1, "\x00bad", ""]
FAMILIES = [0, socket.AF_INET, socket.AF_INET6, -1, 12345, "x", socket.AF_UNIX, 2 ** 40]


def op_call_soon(c, i, j):
    h = c.loop.call_soon(CALLBACKS[i], j)
    c.handles.append(h)
    return h


def op_call_later(c, i, j):
    h = c.loop.call_later(DELAYS[i], CALLBACKS[j])
    c.handles.append(h)
    return h


def op_call_at(c, i, j):
    when = DELAYS[i]
    if isinstance(when, (int, float)) and math.isfinite(when) and when < 1e9:
        when = c.loop.time() + when
    h = c.loop.call_at(when, CALLBACKS[j])
    c.handles.append(h)
    return h


def op_call_soon_threadsafe(c, i, j):
    return c.loop.call_soon_threadsafe(CALLBACKS[i], j)


def op_cancel(c, i, j):
    if c.handles:
        return c.handles[i % len(c.handles)].cancel()
    if c.futures:
        return c.futures[i % len(c.futures)].cancel()
    return None


def op_stop(c, i, j):
    return c.loop.stop()


def op_run_once(c, i, j):
    # stop() then run_forever(): exactly one iteration, as asyncio documents
    c.loop.call_soon(c.loop.stop)
    return c.loop.run_forever()


def op_run_until_complete(c, i, j):
    loop = c.loop
    k = i % 8
    if k == 0:
        arg = asyncio.sleep(0)
    elif k == 1:
        arg = loop.create_future()
        arg.set_result(j)
    elif k == 2:
        arg = c.other_loop.create_future()
    elif k == 3:
        async def boom():
            raise KeyError(j)
        arg = boom()
    elif k == 4:
        async def reenter():
            return loop.run_until_complete(asyncio.sleep(0))
        arg = reenter()
    else:
        arg = [1, None, "text"][k - 5]
    try:
        return loop.run_until_complete(arg)
    finally:
        if k == 4 and hasattr(arg, "close"):
            arg.close()


def op_close(c, i, j):
    return c.loop.close()


def op_create_future(c, i, j):
    fut = c.loop.create_future()
    c.futures.append(fut)
    if i % 3 == 1:
        fut.set_result(j)
    elif i % 3 == 2:
        fut.set_exception(ValueError(j))
    return fut


def op_create_task(c, i, j):
    k = i % 5
    if k == 0:
        arg = asyncio.sleep(0)
    elif k == 1:
        arg = c.loop.create_future()
    else:
        arg = [None, 1, _cb][k - 2]
    try:
        task = c.loop.create_task(arg)
    except BaseException:
        if hasattr(arg, "close"):
            arg.close()
        raise
    c.futures.append(task)
    return task


def op_add_reader(c, i, j):
    return c.loop.add_reader(c.fd(i), CALLBACKS[j])


def op_remove_reader(c, i, j):
    return c.loop.remove_reader(c.fd(i))


def op_add_writer(c, i, j):
    return c.loop.add_writer(c.fd(i), CALLBACKS[j])


def op_remove_writer(c, i, j):
    return c.loop.remove_writer(c.fd(i))


def op_sock_recv(c, i, j):
    return c.run(c.loop.sock_recv(c.sock(i), [10, 0, -1, "x", None, 1 << 40, 1, 3.5][j]))


def op_sock_recv_into(c, i, j):
    buf = [bytearray(10), b"immutable", None, memoryview(bytearray(4)), bytearray(0),
           "text", bytearray(3), 7][j]
    return c.run(c.loop.sock_recv_into(c.sock(i), buf))


def op_sock_sendall(c, i, j):
    data = [b"abc", "text", None, b"", bytearray(b"x" * 100), memoryview(b"yz"), 5, [b"a"]][j]
    return c.run(c.loop.sock_sendall(c.sock(i), data))


def op_sock_connect(c, i, j):
    addr = [("127.0.0.1", 1), ("127.0.0.1", 70000), None, "text", ("::1", 1),
            ("127.0.0.1",), ("127.0.0.1", "x"), 5][j]
    return c.run(c.loop.sock_connect(c.sock(i), addr))


def op_sock_accept(c, i, j):
    return c.run(c.loop.sock_accept(c.sock(i)))


def op_sock_recvfrom(c, i, j):
    return c.run(c.loop.sock_recvfrom(c.sock(i), [10, -1, "x", 0][j % 4]))


def op_sock_sendto(c, i, j):
    addr = [("127.0.0.1", 9), None, "text", ("127.0.0.1", 70000)][j % 4]
    return c.run(c.loop.sock_sendto(c.sock(i), b"d", addr))


def op_getaddrinfo(c, i, j):
    host = HOSTS[i]
    port = PORTS[j]
    return c.run(c.loop.getaddrinfo(host, port, family=FAMILIES[(i + j) % 8],
                                    type=[0, socket.SOCK_STREAM, "t", -5][j % 4]), 10)


def op_getaddrinfo_flags(c, i, j):
    return c.run(c.loop.getaddrinfo("127.0.0.1", 80,
                                    flags=[0, -1, 2 ** 40, "f", None, socket.AI_NUMERICHOST,
                                           socket.AI_PASSIVE, 1.5][i],
                                    proto=[0, -1, 2 ** 33, "p", None, 6, 17, 1.5][j]), 10)


def op_getnameinfo(c, i, j):
    sa = [("127.0.0.1", 80), ("127.0.0.1",), None, ("::1", 80, 0, 0), ("127.0.0.1", -1),
          ("127.0.0.1", 80, 1, 2, 3), "text", ("not an ip", 80)][i]
    return c.run(c.loop.getnameinfo(sa, [0, socket.NI_NUMERICHOST, -1, "x"][j % 4]), 10)


def op_datagram(c, i, j):
    kwargs = [
        dict(local_addr=("127.0.0.1", 0)),
        dict(local_addr=("127.0.0.1", 70000)),
        dict(remote_addr=("127.0.0.1", 9), family=socket.AF_INET6),
        dict(local_addr=("127.0.0.1", 0), reuse_address=True),
        dict(sock=c.sock(2), local_addr=("127.0.0.1", 0)),
        dict(sock=c.sock(0)),
        dict(local_addr="text"),
        dict(family=socket.AF_INET, local_addr=("::1", 0)),
    ][i]
    if j % 2:
        kwargs["allow_broadcast"] = True

    async def make():
        tr, _ = await c.loop.create_datagram_endpoint(asyncio.DatagramProtocol, **kwargs)
        c.closeables.append(tr)
        return tr
    return c.run(make(), 10)


def op_exception_handler(c, i, j):
    handler = [None, 1, c._record, "x"][i % 4]
    return c.loop.set_exception_handler(handler)


def op_debug(c, i, j):
    return c.loop.set_debug(bool(i % 2))


def op_signal(c, i, j):
    sig = [signal.SIGUSR1, 0, signal.SIGKILL, 1000, "x", signal.SIGUSR2, None, -1][i]
    if j % 2:
        return c.loop.remove_signal_handler(sig)
    return c.loop.add_signal_handler(sig, CALLBACKS[j])


def op_executor(c, i, j):
    if i % 2:
        choice = [None, 1, "x", concurrent.futures.ThreadPoolExecutor][j % 4]
        if sys.version_info < (3, 11):
            # only a DeprecationWarning there, and a crash in close() later
            choice = concurrent.futures.ThreadPoolExecutor
        if choice is concurrent.futures.ThreadPoolExecutor:
            choice = choice(1)
        return c.loop.set_default_executor(choice)
    return c.run(c.loop.run_in_executor(None, [_cb, _raise_value_error, None, 1][j % 4]), 10)


OPS = [op_call_soon, op_call_later, op_call_at, op_call_soon_threadsafe, op_cancel, op_stop,
       op_run_once, op_run_until_complete, op_close, op_create_future, op_create_task,
       op_add_reader, op_remove_reader, op_add_writer, op_remove_writer, op_sock_recv,
       op_sock_recv_into, op_sock_sendall, op_sock_connect, op_sock_accept, op_sock_recvfrom,
       op_sock_sendto, op_getaddrinfo, op_getaddrinfo_flags, op_getnameinfo, op_datagram,
       op_exception_handler, op_debug, op_signal, op_executor]
if not hasattr(asyncio.AbstractEventLoop, "sock_recvfrom"):  # before 3.11
    OPS.remove(op_sock_recvfrom)
    OPS.remove(op_sock_sendto)


def _outcome(value):
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return type(value).__name__
    if isinstance(value, asyncio.Future):
        return "Task" if isinstance(value, asyncio.Task) else "Future"
    if isinstance(value, asyncio.BaseTransport):
        return "transport"
    if isinstance(value, (list, tuple)):
        return type(value).__name__ + str(len(value) > 0)
    return type(value).__name__


def _exc_outcome(exc):
    if type(exc) is AssertionError:
        # call_at(None): before 3.11 asyncio only asserts (AssertionError,
        # or nothing under -O); uvffi raises 3.11's TypeError everywhere.
        return ("raise", "TypeError")
    if isinstance(exc, OSError):
        return ("raise", type(exc).__name__, exc.errno)
    return ("raise", type(exc).__name__)


def _run_sequence(factory, ops, tmpfile):
    other = asyncio.SelectorEventLoop()
    loop = factory()
    ctx = _Ctx(loop, other, tmpfile)
    outcomes = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for op, i, j in ops:
                try:
                    outcomes.append(_outcome(op(ctx, i, j)))
                except (KeyboardInterrupt, SystemExit):
                    raise
                except BaseException as exc:
                    outcomes.append(_exc_outcome(exc))
            if not loop.is_closed():
                for fut in ctx.futures:
                    fut.cancel()
                # unwatch before closing: asyncio's selector keeps a stale
                # key for a closed fd and fails (ENOENT) when a new socket
                # reuses the number, which uvffi handles; not what this
                # test compares
                for obj in ctx.closeables:
                    if isinstance(obj, socket.socket) and obj.fileno() >= 0:
                        try:
                            loop.remove_reader(obj.fileno())
                            loop.remove_writer(obj.fileno())
                        except RuntimeError:
                            pass  # handed to a transport (datagram sock=)
                ctx.close_all()
                try:
                    _drain(loop)
                except BaseException as exc:
                    outcomes.append(("final", type(exc).__name__))
                    # e.g. a pending stop() ended that run after one
                    # iteration: run again so that short timers fire on
                    # both loops whatever the timing
                    try:
                        _drain(loop)
                    except BaseException as again:
                        outcomes.append(("final", type(again).__name__))
                for sig in (signal.SIGUSR1, signal.SIGUSR2):
                    loop.remove_signal_handler(sig)
    finally:
        ctx.close_all()
        if not loop.is_closed():
            loop.close()
        other.close()
    # which exceptions were reported, not how often: a level-triggered
    # writer whose callback fails reports once per iteration, and the
    # number of iterations depends on timing
    return outcomes, sorted(set(ctx.reported))


def _drain(loop):
    """run_until_complete(sleep(0.01)), but never for ever: NaN and huge
    deadlines in one heap break the order of asyncio's own heap, and its
    loop then waited 24 h for a far timer sitting at the top (seen once in
    CI, on PyPy, for a randomly generated sequence)."""
    watchdog = threading.Timer(5.0, loop.call_soon_threadsafe, (loop.stop,))
    watchdog.start()
    try:
        loop.run_until_complete(asyncio.sleep(0.01))
    finally:
        watchdog.cancel()


def _check(ops):
    with tempfile.TemporaryFile() as tmpfile:
        expected = _run_sequence(asyncio.SelectorEventLoop, ops, tmpfile)
        got = _run_sequence(uvffi.new_event_loop, ops, tmpfile)
    names = [op.__name__ for op, _, _ in ops]
    assert got == expected, "ops %r\nasyncio %r\nuvffi   %r" % (ops, expected, got)
    return names


_op_strategy = st.tuples(st.sampled_from(OPS), st.integers(0, 7), st.integers(0, 7))


def _property(max_examples, derandomize=False):
    @settings(max_examples=max_examples, deadline=None, database=None,
              derandomize=derandomize, suppress_health_check=list(HealthCheck))
    @given(st.lists(_op_strategy, min_size=1, max_size=8))
    def prop(ops):
        _check(ops)
    return prop


def test_random_operation_sequences_end_as_on_asyncio():
    # the same 100 sequences on every run (CI must not depend on the draw);
    # the soak test below draws new ones each time
    _property(100, derandomize=True)()


@pytest.mark.soak
def test_random_operation_sequences_end_as_on_asyncio_soak():
    _property(3000)()


@pytest.mark.parametrize("op", OPS, ids=lambda f: f.__name__[3:])
def test_each_operation_with_each_argument_ends_as_on_asyncio(op):
    """Each operation alone, every value of each argument table at least
    once (two diagonals of the 8x8 picks): the base the random sequences
    build on."""
    for i in range(8):
        for j in sorted({i, (i + 3) % 8}):
            _check([(op, i, j)])


@pytest.mark.soak
@pytest.mark.parametrize("op", OPS, ids=lambda f: f.__name__[3:])
def test_each_operation_with_all_argument_pairs_ends_as_on_asyncio(op):
    for i in range(8):
        for j in range(8):
            _check([(op, i, j)])
