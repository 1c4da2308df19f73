"""tools/cpython_asyncio_suite.py, on two small modules of CPython's own
test_asyncio: the tool keeps working, and those modules pass on uvffi
(test_buffered_proto found the I/O-order difference; see test_io_ordering)."""
import importlib.util
import os
import subprocess
import sys

import pytest

from _childenv import child_env

TOOL = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                    "tools", "cpython_asyncio_suite.py")

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("test") is None
    or importlib.util.find_spec("test.test_asyncio") is None,
    reason="this Python has no test package (Debian: libpython3.X-testsuite)")


def test_cpython_buffered_proto_and_futures2_modules_pass_on_uvffi():
    out = subprocess.run([sys.executable, TOOL, "test_buffered_proto", "test_futures2"],
                         env=child_env(), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, timeout=300)
    assert out.returncode == 0, out.stdout
    assert "No unexpected failures" in out.stdout
    lines = {line.split()[0]: line for line in out.stdout.splitlines()
             if line.startswith("test_")}
    assert set(lines) == {"test_buffered_proto", "test_futures2"}, out.stdout
    # the tests ran on uvffi loops, not asyncio's
    assert "(0 uvffi loops)" not in lines["test_buffered_proto"], out.stdout


def test_baseline_mode_runs_the_same_tests_on_asyncios_loop():
    out = subprocess.run([sys.executable, TOOL, "test_buffered_proto", "--baseline"],
                         env=child_env(), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, timeout=300)
    assert out.returncode == 0, out.stdout
    assert "(0 uvffi loops)" in out.stdout, out.stdout
