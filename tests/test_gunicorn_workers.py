"""gunicorn with two workers on uvffi (docs/gunicorn.md), for aiohttp
(`-k uvffi.workers.AiohttpWorker`) and for uvicorn
(`-k uvffi.workers.UvicornWorker`).

Each test starts `python -m gunicorn` with 2 workers on 127.0.0.1 (port 0:
gunicorn binds, the test reads the port from its log) and talks to it with
http.client from threads, one connection per request (`Connection: close`),
so that the two workers share the requests through the listening socket
that the master hands both of them:

- 2,000 requests, all 200, served by both worker pids, each on a uvffi loop;
- SIGHUP while requests keep coming: new workers take over, the old ones
  stop gracefully, and no request fails;
- SIGTERM while slow requests are being handled: they complete, and
  gunicorn exits with status 0.
"""
import collections
import concurrent.futures
import http.client
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

pytest.importorskip(
    "gunicorn", reason="gunicorn not installed (pip install gunicorn)")
import gunicorn.config  # noqa: E402

from _integration import child_env  # noqa: E402

GRACEFUL_TIMEOUT = 10  # gunicorn's --graceful-timeout, seconds
REQUEST_TIMEOUT = 15   # one HTTP request, seconds

AIOHTTP_APP = '''
import asyncio
import os

from aiohttp import web


def _loop_name():
    loop = asyncio.get_running_loop()
    return "%s.%s" % (type(loop).__module__, type(loop).__qualname__)


async def index(request):
    return web.Response(text="pid=%d loop=%s" % (os.getpid(), _loop_name()))


async def slow(request):
    # the marker file tells the test that this request is being handled
    open(os.path.join(os.environ["MARKS"], request.query["id"]), "w").close()
    await asyncio.sleep(1.0)
    return web.Response(text="slow done pid=%d" % os.getpid())


app = web.Application()
app.router.add_get("/", index)
app.router.add_get("/slow", slow)
'''

ASGI_APP = '''
import asyncio
import os
from urllib.parse import parse_qs


def _loop_name():
    loop = asyncio.get_running_loop()
    return "%s.%s" % (type(loop).__module__, type(loop).__qualname__)


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["path"] == "/slow":
        query = parse_qs(scope["query_string"].decode())
        open(os.path.join(os.environ["MARKS"], query["id"][0]), "w").close()
        await asyncio.sleep(1.0)
        body = b"slow done pid=%d" % os.getpid()
    else:
        body = ("pid=%d loop=%s" % (os.getpid(), _loop_name())).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})
'''

FRAMEWORKS = {
    # framework: (worker class, the app's source)
    "aiohttp": ("AiohttpWorker", AIOHTTP_APP),
    "uvicorn": ("UvicornWorker", ASGI_APP),
}

_LISTENING = re.compile(r"Listening at: http://127\.0\.0\.1:(\d+)")
_BOOTING = re.compile(r"Booting worker with pid: (\d+)")
_BODY = re.compile(r"pid=(\d+) loop=(\S+)")


def _wait(predicate, timeout, what):
    """Poll *predicate* until it returns something true; fail naming *what*
    after *timeout* seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %ss waiting for %s"
                                 % (timeout, what))
        time.sleep(0.02)


def _alive(pid):
    """Whether process *pid* runs (a zombie does not)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


class Gunicorn:
    """A gunicorn master started by a test, with its log read by a thread."""

    def __init__(self, tmp_path, framework):
        worker, source = FRAMEWORKS[framework]
        module = "gapp_%s" % framework
        (tmp_path / (module + ".py")).write_text(textwrap.dedent(source))
        self.marks = tmp_path / "marks"
        self.marks.mkdir()
        env = child_env()
        env["MARKS"] = str(self.marks)
        cmd = [sys.executable, "-m", "gunicorn", module + ":app",
               "--workers", "2", "--worker-class", "uvffi.workers." + worker,
               "--bind", "127.0.0.1:0", "--chdir", str(tmp_path),
               "--graceful-timeout", str(GRACEFUL_TIMEOUT),
               "--log-level", "info", "--error-logfile", "-"]
        if hasattr(gunicorn.config, "ControlSocketDisable"):
            # gunicorn 27 (not 23) opens a control socket in ~/.gunicorn,
            # one path for every gunicorn: none for the tests
            cmd.append("--no-control-socket")
        self.lines = []
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(
            cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True, start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.port = int(self.wait_log(_LISTENING, 20, "gunicorn's "
                                      "'Listening at' line").group(1))

    def _read(self):
        for line in self.proc.stderr:
            with self._lock:
                self.lines.append(line)

    def log(self):
        with self._lock:
            return "".join(self.lines)

    def matches(self, regex):
        with self._lock:
            return [m for m in map(regex.search, self.lines) if m]

    def wait_log(self, regex, timeout, what):
        def found():
            ms = self.matches(regex)
            if not ms and self.proc.poll() is not None:
                raise AssertionError("gunicorn exited (%s) before %s:\n%s"
                                     % (self.proc.returncode, what, self.log()))
            return ms[0] if ms else None
        return _wait(found, timeout, what)

    def booted_pids(self):
        return [int(m.group(1)) for m in self.matches(_BOOTING)]

    def wait_serving(self, timeout=20):
        """Wait until a worker answers GET /; return the pids booted."""
        def answered():
            status, _ = _try_get(self.port, "/", timeout=2)
            return status == 200
        _wait(answered, timeout, "a gunicorn worker answering GET /")
        _wait(lambda: len(self.booted_pids()) >= 2, timeout,
              "2 'Booting worker' lines")
        return set(self.booted_pids())

    def stop(self):
        """Teardown: a graceful stop, then SIGKILL to the whole session
        (the master and any worker left behind)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=GRACEFUL_TIMEOUT + 5)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            raise AssertionError("gunicorn (pid %d) still there 10 s after "
                                 "SIGKILL" % self.proc.pid)
        self._reader.join(timeout=10)


def _try_get(port, path, timeout=REQUEST_TIMEOUT):
    """GET on a new connection: (status, body), or (the exception, "")."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    except Exception as exc:
        return exc, ""
    finally:
        conn.close()


def _served_by(results):
    """{(pid, loop class): count} over the 200 responses to GET /."""
    seen = collections.Counter()
    for status, body in results:
        m = _BODY.fullmatch(body)
        if status == 200 and m:
            seen[int(m.group(1)), m.group(2)] += 1
    return seen


class Stream:
    """Threads sending GET / one after the other until stopped."""

    def __init__(self, port, threads=4):
        self.port = port
        self.results = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True)
                         for _ in range(threads)]
        for t in self._threads:
            t.start()

    def _run(self):
        while not self._stop.is_set():
            result = _try_get(self.port, "/")
            with self._lock:
                self.results.append(result)

    def snapshot(self):
        with self._lock:
            return list(self.results)

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(timeout=REQUEST_TIMEOUT + 5)
            assert not t.is_alive(), "a request thread did not finish"
        return self.snapshot()


@pytest.fixture(params=sorted(FRAMEWORKS))
def server(request, tmp_path):
    framework = request.param
    pytest.importorskip(
        framework, reason="%s not installed (pip install %s)"
        % (framework, framework))
    import uvffi.workers
    try:
        getattr(uvffi.workers, FRAMEWORKS[framework][0])
    except ImportError as exc:
        pytest.skip(str(exc))
    gunicorn = Gunicorn(tmp_path, framework)
    try:
        yield gunicorn
    finally:
        gunicorn.stop()


def test_two_workers_share_2000_requests_on_uvffi_loops(server):
    booted = server.wait_serving()
    assert len(booted) == 2, server.log()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: _try_get(server.port, "/"),
                                range(2000)))
    failed = [r for r in results if r[0] != 200]
    assert not failed, (len(failed), failed[:5])
    seen = _served_by(results)
    assert sum(seen.values()) == 2000, results[:5]
    assert {loop for _, loop in seen} == {"uvffi.loop.Loop"}, seen
    assert {pid for pid, _ in seen} == booted, (seen, server.log())


def test_sighup_reload_replaces_workers_without_losing_a_request(server):
    workers = server.wait_serving()
    generations = [workers]
    stream = Stream(server.port)
    try:
        _wait(lambda: len(stream.snapshot()) >= 50, 20,
              "50 requests before the first SIGHUP")
        for reload in (1, 2):
            old = workers
            booted_before = set(server.booted_pids())
            server.proc.send_signal(signal.SIGHUP)
            _wait(lambda: len(set(server.booted_pids()) - booted_before) >= 2,
                  20, "2 new 'Booting worker' lines after SIGHUP %d" % reload)
            workers = set(server.booted_pids()) - booted_before
            generations.append(workers)
            _wait(lambda: workers <= {
                      pid for pid, _ in _served_by(stream.snapshot())},
                  20, "both new workers answering after SIGHUP %d" % reload)
            _wait(lambda: not any(map(_alive, old)), GRACEFUL_TIMEOUT + 5,
                  "the old workers to exit after SIGHUP %d" % reload)
            # and the new workers alone for a moment
            count = len(stream.snapshot())
            _wait(lambda: len(stream.snapshot()) >= count + 50, 20,
                  "50 more requests after the old workers exited")
    finally:
        results = stream.stop()
    failed = [r for r in results if r[0] != 200]
    assert not failed, (len(failed), len(results), failed[:5], server.log())
    seen = _served_by(results)
    assert {loop for _, loop in seen} == {"uvffi.loop.Loop"}, seen
    assert {pid for pid, _ in seen} <= set().union(*generations), seen
    assert all(len(g) == 2 for g in generations), generations
    assert server.proc.poll() is None, server.log()


def test_sigterm_lets_in_flight_requests_finish_and_exits_0(server):
    server.wait_serving()
    n = 6
    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        futures = [pool.submit(_try_get, server.port, "/slow?id=%d" % i)
                   for i in range(n)]
        _wait(lambda: len(os.listdir(server.marks)) == n, 20,
              "%d slow requests being handled" % n)
        start = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        _, pending = concurrent.futures.wait(
            futures, timeout=REQUEST_TIMEOUT + 5)
        assert not pending, ("%d slow requests still waiting for an answer "
                             "%ss after SIGTERM:\n%s" % (
                                 len(pending), REQUEST_TIMEOUT + 5,
                                 server.log()))
        results = [f.result() for f in futures]
    try:
        returncode = server.proc.wait(timeout=GRACEFUL_TIMEOUT + 5)
    except subprocess.TimeoutExpired:
        raise AssertionError("gunicorn still running %ss after SIGTERM:\n%s"
                             % (GRACEFUL_TIMEOUT + 5, server.log()))
    took = time.monotonic() - start
    assert [status for status, _ in results] == [200] * n, (
        results, server.log())
    assert all(body.startswith("slow done pid=") for _, body in results)
    assert returncode == 0, server.log()
    # the workers left when their requests were done, not killed at the
    # graceful timeout
    assert took < GRACEFUL_TIMEOUT, (took, server.log())
