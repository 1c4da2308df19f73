"""tools/bootstrap.sh (behind the README's two commands) builds uvffi into a
venv once and reuses that venv while the tree is unchanged."""
import os
import shutil
import subprocess
import sys
import time

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOOTSTRAP = os.path.join(TOP, "tools", "bootstrap.sh")


def _bootstrap(venv):
    t = time.monotonic()
    proc = subprocess.run(["bash", BOOTSTRAP, sys.executable, str(venv)],
                          capture_output=True, text=True, timeout=600)
    return proc, time.monotonic() - t


@pytest.mark.skipif(sys.platform == "win32", reason="a bash script")
def test_second_bootstrap_reuses_the_venv_and_the_example_runs(tmp_path):
    if sys.implementation.name != "cpython":
        pytest.skip("one interpreter is enough to check the script (and "
                    "PyPy's build is the slow one)")
    if not os.path.isfile(os.path.join(TOP, "pyproject.toml")) or not shutil.which("cmake"):
        pytest.skip("needs the source checkout and cmake")
    venv = tmp_path / "venv"
    first, _ = _bootstrap(venv)
    assert first.returncode == 0, first.stderr[-2000:]
    vpy = first.stdout.strip().splitlines()[-1]
    assert os.path.isfile(os.path.join(str(venv), ".uvffi-build-stamp"))

    second, took = _bootstrap(venv)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "up to date with the tree (not rebuilt)" in second.stderr
    assert second.stdout.strip().splitlines()[-1] == vpy
    assert took < 30, "the second bootstrap took %.1f s: it rebuilt" % took

    hello = subprocess.run([vpy, os.path.join(TOP, "examples", "hello_world.py")],
                           capture_output=True, text=True, timeout=120,
                           cwd=str(tmp_path))
    assert hello.returncode == 0, hello.stderr
    assert hello.stdout == "Hello World\n"
