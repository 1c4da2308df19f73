"""Helpers for the tests that run real libraries on uvffi."""
import os
import re
import subprocess
import sys
import time

import _childenv

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
DATA_DIR = os.path.join(TESTS_DIR, "data")
CERT = os.path.join(DATA_DIR, "uvffi_test.crt")
KEY = os.path.join(DATA_DIR, "uvffi_test.key")


def child_env(*extra_paths):
    """Environment for a child interpreter that imports the same uvffi (and
    the tests' helper modules) as this process."""
    env = _childenv.child_env(None, *extra_paths, TESTS_DIR)
    env["PYTHONUNBUFFERED"] = "1"
    return env


_RUNNING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


def start_uvicorn(args, timeout=20):
    """Start `python -m uvicorn ARGS --host 127.0.0.1 --port 0`; return
    (process, port, stderr lines read so far)."""
    cmd = [sys.executable, "-m", "uvicorn", *args, "--host", "127.0.0.1",
           "--port", "0"]
    return wait_for_uvicorn(subprocess.Popen(
        cmd, env=child_env(), stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True), timeout)


def wait_for_uvicorn(proc, timeout=20):
    lines = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        m = _RUNNING.search(line)
        if m:
            return proc, int(m.group(1)), lines
    proc.kill()
    rest = proc.communicate()[1]
    raise AssertionError("uvicorn did not start:\n" + "".join(lines) + rest)
