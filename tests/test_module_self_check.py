"""``python -m uvffi`` prints what uvffi runs on and passes its self-check
(a loopback echo, a timer, a subprocess); a failing check makes it say
FAIL and exit 1."""
import os
import subprocess
import sys

import uvffi
from uvffi import __main__ as self_check


def test_python_m_uvffi_reports_and_passes():
    env = dict(os.environ)
    # the uvffi this test imports, tree or installed
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(uvffi.__file__))]
        + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    done = subprocess.run([sys.executable, "-m", "uvffi"], env=env,
                          capture_output=True, text=True, timeout=60)
    lines = done.stdout.splitlines()
    assert done.returncode == 0, done.stdout + done.stderr
    assert lines[0] == "uvffi %s" % uvffi.__version__
    assert lines[1].startswith("libuv 1.")
    assert lines[1].endswith(("(system)", "(vendored)", "(host)"))
    assert lines[2].startswith("Python ")
    for name in ("loopback echo", "timer", "subprocess"):
        assert any(line.split()[:len(name.split()) + 1] == name.split() + ["pass"]
                   for line in lines), (name, lines)
    assert lines[-1] == "PASS"


def test_a_failing_check_says_fail_and_exits_1(monkeypatch):
    async def broken():
        raise OSError("no such luck")

    monkeypatch.setattr(self_check, "CHECKS",
                        self_check.CHECKS + (("broken", broken),))
    out = []
    assert self_check.main(report=out.append) == 1
    assert out[-1] == "FAIL"
    assert any("broken" in line and "FAIL" in line and "no such luck" in line
               for line in out), out
