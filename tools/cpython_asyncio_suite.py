"""Run CPython's own asyncio test suite (``test.test_asyncio``) on uvffi loops.

    python tools/cpython_asyncio_suite.py [MODULE ...] [--verbose] [--baseline]

Needs an interpreter whose standard library has its ``test`` package (pyenv
and python.org builds do; Debian's ``python3`` needs ``libpython3.X-testsuite``)
and uvffi importable (a dev build on PYTHONPATH, or installed).  Each module
runs in a child process with a time limit, in one of three ways:

- tests that take their loop from ``asyncio.new_event_loop()`` or the policy:
  the default policy is uvffi's (``asyncio.DefaultEventLoopPolicy`` too, so a
  test resetting the policy still gets uvffi loops);
- test classes that build their loop in ``create_event_loop()`` or
  ``new_loop()`` (the selector variants of ``test_sock_lowlevel``,
  ``test_sendfile``, ``test_server``...): one copy of each whose hook
  returns a uvffi loop;
- ``test_events``: its loop-independent mixins (``EventLoopTestsMixin`` with
  the Unix additions, ``SubprocessTestsMixin``) on uvffi loops.

Tests that check how asyncio's selector loop is built inside (they mock
``subprocess.Popen``, a child watcher, or call ``_sock_sendfile_native_impl``)
are listed in EXPECTED with the reason; any other failure is reported and
makes the exit status 1.  ``--baseline`` runs the same on asyncio's own
loop: what fails there too is the interpreter's (CPython's suite on PyPy,
say), not uvffi's.  Not part of CI (the CI machine may lack the test
package); the README's test command does not run it.
"""
import json
import subprocess
import sys

MODULES = [
    "test_base_events", "test_buffered_proto", "test_context", "test_events",
    "test_futures", "test_futures2", "test_locks", "test_pep492",
    "test_protocols", "test_queues", "test_runners", "test_sendfile",
    "test_server", "test_sock_lowlevel", "test_ssl", "test_sslproto",
    "test_streams", "test_subprocess", "test_taskgroups", "test_tasks",
    "test_threads", "test_timeouts", "test_transports", "test_unix_events",
    "test_waitfor", "test_eager_task_factory",
]

# test id (class.method; a class name alone covers all its methods) -> why
# it cannot pass on a loop that is not asyncio's selector loop
_POPEN_MOCK = ("mocks subprocess.Popen: uvffi starts children with "
               "posix_spawn/uv_spawn, not Popen")
EXPECTED = {
    "test_subprocess.*.test_popen_error": _POPEN_MOCK,
    "test_subprocess.*.test_popen_error_with_stdin_pipe": _POPEN_MOCK,
    "test_subprocess.GenericWatcherTests.test_create_subprocess_fails_with_inactive_watcher":
        "expects the child watcher to be asked; uvffi's subprocesses use none",
    "test_unix_events.SelectorEventLoopUnixSockSendfileTests":
        "calls the selector loop's _sock_sendfile_native_impl and mocks "
        "asyncio.unix_events.os",
}

_CHILD = r'''
import asyncio, inspect, json, sys, unittest, faulthandler
import uvffi
faulthandler.dump_traceback_later(float(sys.argv[2]), exit=True)
baseline = sys.argv[4] == "baseline"
if not baseline:
    asyncio.DefaultEventLoopPolicy = uvffi.EventLoopPolicy
    asyncio.set_event_loop_policy(uvffi.EventLoopPolicy())
name = sys.argv[1]
try:
    mod = __import__("test.test_asyncio." + name, fromlist=["x"])
except ImportError as exc:  # not in this Python version
    print("UVFFI-SUITE " + json.dumps({"missing": str(exc)}))
    sys.exit(0)

def uvffi_loop(self):
    # --baseline: the same harness on asyncio's loop, to tell what fails on
    # this interpreter whatever the loop (PyPy and CPython's suite)
    return asyncio.SelectorEventLoop() if baseline else uvffi.new_event_loop()

suite = unittest.TestSuite()
loader = unittest.defaultTestLoader
if name == "test_events":
    from test.test_asyncio import utils as test_utils
    mixin = getattr(mod, "UnixEventLoopTestsMixin", mod.EventLoopTestsMixin)
    suite.addTests(loader.loadTestsFromTestCase(type(
        "UvffiEventLoopTests", (mixin, mod.SubprocessTestsMixin, test_utils.TestCase),
        {"create_event_loop": uvffi_loop})))
else:
    suite.addTests(loader.loadTestsFromModule(mod))
    seen = set()
    for attr, cls in sorted(vars(mod).items()):
        if not (inspect.isclass(cls) and issubclass(cls, unittest.TestCase)):
            continue
        # the hook the class builds its loop with (test_runners' new_loop
        # makes a mock of BaseEventLoop: left alone)
        hook = ("create_event_loop" if hasattr(cls, "create_event_loop") else
                "new_loop" if hasattr(cls, "new_loop") and name != "test_runners"
                else None)
        if hook is None:
            continue
        if "Proactor" in attr or "Windows" in attr:
            continue
        # one uvffi copy per set of mixins (Select/EPoll/Poll/Kqueue variants)
        key = tuple(b for b in cls.__mro__ if b.__name__.endswith("Mixin"))
        if key in seen:
            continue
        seen.add(key)
        suite.addTests(loader.loadTestsFromTestCase(type(
            "Uvffi_" + attr, (cls,), {hook: uvffi_loop})))

made = [0]
init = uvffi.Loop.__init__
def counting_init(self, *args, **kwargs):
    made[0] += 1
    init(self, *args, **kwargs)
uvffi.Loop.__init__ = counting_init

result = unittest.TextTestRunner(stream=sys.stderr, verbosity=int(sys.argv[3])).run(suite)
def ids(tests):
    prefix = "test.test_asyncio."
    return [t.id()[len(prefix):] if t.id().startswith(prefix)
            else name + "." + t.id().split(".", 1)[-1] for t in tests]
print("UVFFI-SUITE " + json.dumps({
    "run": result.testsRun, "skipped": len(result.skipped), "loops": made[0],
    "failed": ids([t for t, _ in result.failures + result.errors]
                  + list(result.unexpectedSuccesses))}))
'''


def _expected(test_id):
    module, _, rest = test_id.partition(".")
    cls, _, method = rest.rpartition(".")
    for key in (test_id, module + "." + cls, module + ".*." + method):
        if key in EXPECTED:
            return EXPECTED[key]
    return None


def main(argv):
    verbose = "--verbose" in argv
    mode = "baseline" if "--baseline" in argv else "uvffi"
    modules = [a for a in argv if not a.startswith("--")] or MODULES
    unexpected = []
    for name in modules:
        try:
            out = subprocess.run(
                [sys.executable, "-c", _CHILD, name, "300", "2" if verbose else "0", mode],
                stdout=subprocess.PIPE, stderr=None if verbose else subprocess.PIPE,
                timeout=330, text=True)
        except subprocess.TimeoutExpired:
            unexpected.append(name + ": no result (over 330 s)")
            print("%-26s TIMEOUT" % name)
            continue
        lines = [l for l in out.stdout.splitlines() if l.startswith("UVFFI-SUITE ")]
        if not lines:
            tail = (out.stderr or "")[-2000:]
            unexpected.append(name + ": crashed or hung (exit %s)\n%s" % (out.returncode, tail))
            print("%-26s NO RESULT (exit %s)" % (name, out.returncode))
            continue
        res = json.loads(lines[-1][len("UVFFI-SUITE "):])
        if "missing" in res:
            print("%-26s not in this Python" % name)
            continue
        known = [t for t in res["failed"] if _expected(t)]
        other = [t for t in res["failed"] if not _expected(t)]
        unexpected.extend(other)
        print("%-26s %4d run  %3d skipped  %3d expected failures  %3d unexpected  (%d uvffi loops)"
              % (name, res["run"], res["skipped"], len(known), len(other), res["loops"]))
    if unexpected:
        print("\nUnexpected failures:\n  " + "\n  ".join(unexpected))
        return 1
    print("\nNo unexpected failures (%s)." % sys.version.split()[0])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
