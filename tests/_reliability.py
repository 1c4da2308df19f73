"""Helpers of the reliability suite (tests/test_reliability_*.py): resource
measurements taken from /proc, never estimated, and the small servers the
fault and load tests talk to."""
import asyncio
import gc
import os
import resource
import subprocess
import sys
import time

import uvffi

PYPY = sys.implementation.name == "pypy"


def rss_kib():
    """Resident set size of this process (VmRSS from /proc/self/status)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def open_fds():
    """Number of open file descriptors (entries of /proc/self/fd, less the
    one listdir itself holds open while it reads)."""
    return len(os.listdir("/proc/self/fd")) - 1


def fd_targets():
    """What each open fd is (for messages when a count does not match)."""
    out = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            out[int(name)] = os.readlink("/proc/self/fd/" + name)
        except OSError:
            pass  # listdir's own fd, closed by now
    return out


def collect():
    """Run the GC until nothing more goes (PyPy needs a few passes to run
    finalizers that free cdata and close sockets)."""
    # measured: on PyPy 3 passes left sockets of the previous round open,
    # 10 closed them all (finalizers queue up behind other finalizers)
    for _ in range(10 if PYPY else 3):
        gc.collect()


def raise_nofile(wanted):
    """Raise the soft RLIMIT_NOFILE to at least *wanted* (within the hard
    limit); returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        soft = new
    return soft


def live_handles(loop):
    """What libuv still holds for *loop*: (handles, requests).  A fresh uvffi
    loop has its wake-up timer and async handle; running it once adds the
    signal wake-up poll."""
    return len(loop._uv_handles), len(loop._uv_requests)


def settle(loop, seconds=0.05):
    """Let close callbacks and call_soon chains of *loop* run out."""
    loop.run_until_complete(asyncio.sleep(seconds))


class Echo(asyncio.Protocol):
    """Echo server protocol that counts what it served."""

    served = None  # a list [connections, bytes], shared by the factory

    def connection_made(self, transport):
        self.transport = transport
        self.served[0] += 1

    def data_received(self, data):
        self.served[1] += len(data)
        self.transport.write(data)


def echo_factory():
    served = [0, 0]

    def factory():
        p = Echo()
        p.served = served
        return p
    return factory, served


def run_child(code, timeout=60, env_extra=None):
    """Run *code* in a fresh interpreter of this kind (a crash there must not
    take pytest down); returns the CompletedProcess."""
    env = dict(os.environ)
    src = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
    here = os.path.dirname(os.path.abspath(__file__))
    pkg_dir = os.path.dirname(os.path.dirname(os.path.abspath(uvffi.__file__)))
    env["PYTHONPATH"] = os.pathsep.join([pkg_dir, src, here, env.get("PYTHONPATH", "")])
    if env_extra:
        env.update(env_extra)
    return subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, timeout=timeout, env=env)


class Deadline:
    """Bound a loop by wall time as well as by count."""

    def __init__(self, seconds):
        self.end = time.monotonic() + seconds

    def __bool__(self):
        return time.monotonic() < self.end
