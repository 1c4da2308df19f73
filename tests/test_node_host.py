"""examples/node: asyncio in guest mode on Node.js's own event loop.

The addon (examples/node/addon.c) embeds this interpreter in ``node`` and
runs examples/node/app.py on the ``uv_loop_t`` of napi_get_uv_event_loop,
with a uvffi built for it in UVFFI_LIBUV=HOST mode (libuv's symbols are
node's).  The test builds both from the repository's sources with
examples/node/build.sh into build/node-host/test-<tag> -- never the uvffi
under test, which links a libuv of its own -- and skips the rebuild while
the sources are unchanged.  Then demo.js runs three times: to its end, with
a SIGINT in the middle, and with a process.exit() in the middle.
"""
import hashlib
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
EXAMPLE = os.path.join(TOP, "examples", "node")
BUILD_TIMEOUT = 300
RUN_TIMEOUT = 60
IS_PYPY = sys.implementation.name == "pypy"

pytestmark = pytest.mark.skipif(sys.platform == "win32",
                                reason="examples/node builds on Unix only")


def _node_include(node):
    explicit = os.environ.get("NODE_INCLUDE")
    if explicit:
        return explicit
    prefix = os.path.dirname(os.path.dirname(os.path.realpath(node)))
    return os.path.join(prefix, "include", "node")


def _python_library_present():
    """What build.sh looks for: the interpreter's shared library."""
    v = sysconfig.get_config_var
    if IS_PYPY:
        names = ["libpypy%d.%d-c.so" % sys.version_info[:2], "libpypy3-c.so"]
        dirs = [os.path.dirname(os.path.realpath(sys.executable)), v("LIBDIR") or "",
                sys.base_prefix + "/lib", sys.base_prefix + "/bin",
                "/usr/lib/" + (v("MULTIARCH") or "x86_64-linux-gnu"), "/usr/lib"]
    else:
        ld = v("LDVERSION") or "%d.%d" % sys.version_info[:2]
        names = ["libpython%s.so" % ld, "libpython%s.so.1.0" % ld]
        dirs = [v("LIBDIR") or "", v("LIBPL") or "",
                "/usr/lib/" + (v("MULTIARCH") or ""), sys.base_prefix + "/lib"]
    return any(d and os.path.exists(os.path.join(d, n)) for d in dirs for n in names)


def _requirements():
    """(node, include) or a pytest.skip with the reason."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (examples/node needs Node.js and its headers)")
    include = _node_include(node)
    uv_include = os.environ.get("UV_INCLUDE") or include
    for folder, header, var in ((include, "node_api.h", "NODE_INCLUDE"),
                                (uv_include, "uv.h", "UV_INCLUDE")):
        if not os.path.exists(os.path.join(folder, header)):
            pytest.skip("Node's headers are missing: no %s in %s (set %s)"
                        % (header, folder, var))
    if not _python_library_present():
        pytest.skip("no shared library of this Python to embed (libpython3.X.so / "
                    "libpypy3.X-c.so; Debian: python3-dev)")
    for tool in ("cmake", "cc"):
        if shutil.which(tool) is None:
            pytest.skip("%s is not installed (needed to build examples/node)" % tool)
    return node, include


def _sources_key(node, include):
    """Changes whenever something the build uses changes."""
    digest = hashlib.sha256()
    for item in (sys.executable, node, include, os.environ.get("UV_INCLUDE", ""),
                 os.environ.get("CC", "")):
        digest.update(item.encode() + b"\0")
    files = [os.path.join(TOP, "CMakeLists.txt")]
    for folder in ("cmake", os.path.join("src", "uvffi"), os.path.join("examples", "node")):
        for root, dirs, names in os.walk(os.path.join(TOP, folder)):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            files += [os.path.join(root, n) for n in names
                      if not n.endswith((".so", ".pyc", ".pyd"))]
    for path in sorted(files):
        st = os.stat(path)
        digest.update(("%s %d %d\n" % (path, st.st_mtime_ns, st.st_size)).encode())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def build():
    """The build directory of examples/node for this interpreter."""
    node, include = _requirements()
    out = os.path.join(TOP, "build", "node-host", "test-" + sys.implementation.cache_tag)
    stamp = os.path.join(out, "test-stamp")
    key = _sources_key(node, include)
    try:
        with open(stamp) as f:
            fresh = f.read() == key
    except OSError:
        fresh = False
    if not (fresh and os.path.exists(os.path.join(out, "uvffi_node.node"))):
        env = dict(os.environ, PYTHON=sys.executable, NODE=node, NODE_INCLUDE=include)
        try:
            proc = subprocess.run(["bash", os.path.join(EXAMPLE, "build.sh"), out],
                                  env=env, capture_output=True, text=True,
                                  timeout=BUILD_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail("examples/node/build.sh did not finish in %d s" % BUILD_TIMEOUT)
        assert proc.returncode == 0, "examples/node/build.sh failed:\n%s\n%s" % (
            proc.stdout, proc.stderr)
        with open(stamp, "w") as f:
            f.write(key)
    with open(os.path.join(out, "config.json")) as f:
        config = json.load(f)
    assert config["python"] == sys.executable
    return {"dir": out, "node": node, "config": config}


def _env(build):
    env = dict(os.environ, UVFFI_NODE_BUILD=build["dir"])
    env.pop("NODE_OPTIONS", None)
    return env


def _demo(build, *args):
    return [build["node"], os.path.join(EXAMPLE, "demo.js"), *map(str, args)]


def _assert_clean(output, status, expected_status):
    """Python ended as asyncio.run ends and was finalized; Node exited."""
    assert status == expected_status, "exit status %s, expected %s:\n%s" % (
        status, expected_status, output)
    for bad in ("Traceback", "Task was destroyed", "never retrieved",
                "Exception in callback", "Uncaught", "uvffi_node:", "nodebridge:"):
        assert bad not in output, "%r in the output:\n%s" % (bad, output)
    # a JavaScript stack trace (an uncaught error or a failed assertion)
    assert not re.search(r"^\s+at .+:\d+:\d+\)?$", output, re.M), output
    assert "python: interpreter finalizing" in output, output  # Py_FinalizeEx ran
    assert "js: exit with status %d (Python finalized)" % expected_status in output, output


class Lines:
    """The output of a running demo, line by line, with waits that time out."""

    def __init__(self, proc):
        self.proc = proc
        self.lines = []
        self._queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, what, predicate, timeout=RUN_TIMEOUT):
        deadline = time.monotonic() + timeout
        while not predicate(self.lines):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail("timed out after %d s waiting for %s; output so far:\n%s"
                            % (timeout, what, "\n".join(self.lines)))
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                pytest.fail("demo.js ended (status %s) while waiting for %s:\n%s"
                            % (self.proc.wait(), what, "\n".join(self.lines)))
            self.lines.append(line)

    def finish(self, what, timeout=RUN_TIMEOUT):
        try:
            status = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail("demo.js did not exit within %d s after %s; output:\n%s"
                        % (timeout, what, "\n".join(self.lines)))
        while True:  # the reader thread drains the rest
            line = self._queue.get(timeout=RUN_TIMEOUT)
            if line is None:
                break
            self.lines.append(line)
        return status, "\n".join(self.lines)


def _start(build, *args):
    proc = subprocess.Popen(_demo(build, *args), env=_env(build), cwd=EXAMPLE,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    return Lines(proc)


def _kinds(lines):
    """'J' for a JavaScript timer tick, 'P' for a Python echo round trip."""
    out = []
    for line in lines:
        if re.match(r"js: tick \d+$", line):
            out.append("J")
        elif re.match(r"python: echo \d+ ", line):
            out.append("P")
    return "".join(out)


def test_js_timer_and_asyncio_echo_progress_together_and_promises_resolve(build):
    proc = subprocess.run(_demo(build, "--rounds", 10, "--interval", 0.05),
                          env=_env(build), cwd=EXAMPLE, capture_output=True,
                          text=True, timeout=RUN_TIMEOUT)
    output = proc.stdout + proc.stderr
    _assert_clean(output, proc.returncode, 0)
    assert proc.stderr == "", output
    lines = proc.stdout.splitlines()
    assert "python: main started on uvffi.loop" in lines, output
    for i in range(1, 11):
        assert "python: echo %d 'ping %d'" % (i, i) in output, output
    # interleaved: the two runtimes take turns on the one loop, many times
    kinds = _kinds(lines)
    runs = len(re.findall(r"J+|P+", kinds))
    assert runs >= 8, "ticks and echoes did not interleave (%s):\n%s" % (kinds, output)
    # the Promises of JavaScript's calls into Python coroutines
    assert "js: add_slowly(2, 3) resolved to 5" in lines, output
    assert 'js: echo() resolved to "hello from JavaScript"' in lines, output
    # main's return value, delivered to py.finished
    done = [l for l in lines if l.startswith("js: Python's main returned ")]
    assert len(done) == 1, output
    result = json.loads(done[0][len("js: Python's main returned "):])
    assert result["rounds"] == 10, output
    # order of the ending: main's result, then Py_FinalizeEx, then exit
    order = [lines.index("python: main done"), lines.index(done[0]),
             lines.index("python: interpreter finalizing"),
             lines.index("js: exit with status 0 (Python finalized)")]
    assert order == sorted(order), output


@pytest.mark.skipif(not hasattr(signal, "SIGINT"), reason="needs SIGINT")
def test_sigint_ends_python_and_node_cleanly(build):
    run = _start(build, "--rounds", 100000, "--interval", 0.02)
    try:
        run.wait_for("3 Python echoes and 3 JavaScript ticks",
                     lambda ls: _kinds(ls).count("P") >= 3 and _kinds(ls).count("J") >= 3)
        run.wait_for("the Promise of add_slowly",
                     lambda ls: "js: add_slowly(2, 3) resolved to 5" in ls)
        run.proc.send_signal(signal.SIGINT)
        status, output = run.finish("SIGINT")
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait()
    _assert_clean(output, status, 130)
    lines = output.splitlines()
    assert "js: SIGINT: asking Python to shut down" in lines, output
    assert "python: main cancelled; closing the client and the server" in lines, output
    assert ("js: Python's main ended with CancelledError: the main coroutine "
            "was cancelled") in lines, output
    # nothing of Python's ran after it was finalized
    tail = lines[lines.index("python: interpreter finalizing") + 1:]
    assert not [l for l in tail if l.startswith("python:")], output


def test_process_exit_ends_python_without_polling_and_finalizes(build):
    proc = subprocess.run(_demo(build, "--rounds", 100000, "--interval", 0.02,
                                "--exit-after", 8),
                          env=_env(build), cwd=EXAMPLE, capture_output=True,
                          text=True, timeout=RUN_TIMEOUT)
    output = proc.stdout + proc.stderr
    _assert_clean(output, proc.returncode, 0)
    lines = proc.stdout.splitlines()
    assert "js: process.exit() now" in lines, output
    assert _kinds(lines).count("P") >= 2, output  # Python was mid-way
    # the 'exit' handler ended main (cancelled, its finally ran) before
    # finalizing, and the program went no further
    after = lines[lines.index("js: process.exit() now") + 1:]
    assert after[:3] == ["python: main cancelled; closing the client and the server",
                         "python: interpreter finalizing",
                         "js: exit with status 0 (Python finalized)"], output
    assert "python: main done" not in lines, output


def test_host_build_refuses_to_import_without_a_host(build):
    """In a plain interpreter the HOST build says why it cannot load,
    instead of crashing or loading some other libuv."""
    env = dict(os.environ, PYTHONPATH=build["config"]["site"])
    proc = subprocess.run([sys.executable, "-c", "import uvffi"], env=env,
                          capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert proc.returncode == 1, proc.stderr
    assert "ImportError: uvffi cannot be imported here" in proc.stderr, proc.stderr
    assert "UVFFI_LIBUV=HOST" in proc.stderr, proc.stderr
