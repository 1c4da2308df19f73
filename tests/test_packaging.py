"""Packaging: __version__, PEP 561 type information (mypy on a snippet of
the public API), and the sdist -> wheel -> install path."""
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tarfile
import textwrap
import zipfile

import pytest

import uvffi

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYPROJECT = os.path.join(ROOT, "pyproject.toml")


def _pyproject_version():
    with open(PYPROJECT) as f:
        text = f.read()
    project = text.split("[project]", 1)[1].split("\n[", 1)[0]
    return re.search(r'^version\s*=\s*"([^"]+)"', project, re.M).group(1)


def test_version_matches_pyproject_and_installed_metadata():
    assert isinstance(uvffi.__version__, str)
    assert uvffi.__version__ == _pyproject_version()
    try:
        installed = importlib.metadata.version("uvffi")
    except importlib.metadata.PackageNotFoundError:
        return  # running the source tree (PYTHONPATH=src)
    pkg_dir = os.path.dirname(os.path.abspath(uvffi.__file__))
    if not pkg_dir.startswith(os.path.join(ROOT, "src")):
        assert installed == uvffi.__version__


def test_package_ships_py_typed_and_stub_next_to_the_module():
    pkg_dir = os.path.dirname(os.path.abspath(uvffi.__file__))
    assert os.path.isfile(os.path.join(pkg_dir, "py.typed"))
    assert os.path.isfile(os.path.join(pkg_dir, "__init__.pyi"))


MYPY_OK = '''
import asyncio
import sys

import uvffi


async def main() -> int:
    await asyncio.sleep(0)
    return 1


x: int = uvffi.run(main())
y: int = uvffi.run(main(), debug=True)
loop: uvffi.Loop = uvffi.new_event_loop()
base: asyncio.AbstractEventLoop = loop
addr: int = loop.uv_loop_t
guest: uvffi.Loop = uvffi.Loop.from_uv_loop(addr)
guest.start_guest(keep_alive=False)
running: bool = guest.is_guest_running()
policy: asyncio.AbstractEventLoopPolicy = uvffi.EventLoopPolicy()
uvffi.install()
version: str = uvffi.__version__
capsule: object = loop.uv_loop_capsule
address: int = uvffi.embedding.uv_loop_address(capsule)
run_: uvffi.embedding.GuestRun[int] = uvffi.embedding.start(addr, main())
run_.shutdown()
done: bool = run_.done
result: int = run_.finish()
left: int = uvffi.embedding.pending_close_count()
if sys.version_info >= (3, 11):
    with asyncio.Runner(loop_factory=uvffi.new_event_loop) as runner:
        z: int = runner.run(main())
if sys.version_info >= (3, 12):
    w: int = asyncio.run(main(), loop_factory=uvffi.new_event_loop)
'''

MYPY_BAD = '''
import uvffi

uvffi.run(42)
s: str = uvffi.new_event_loop().uv_loop_t
t: str = uvffi.embedding.start(0, uvffi.Loop().shutdown_asyncgens()).finish()
'''


def _mypy(tmp_path, source):
    pytest.importorskip(
        "mypy", reason="mypy not installed (CPython's integration extra)")
    snippet = tmp_path / "snippet.py"
    snippet.write_text(textwrap.dedent(source))
    env = dict(os.environ)
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(uvffi.__file__)))
    if os.path.basename(pkg_parent) not in ("site-packages", "dist-packages"):
        env["MYPYPATH"] = pkg_parent  # the source tree
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary",
         "--python-executable", sys.executable,
         "--cache-dir", str(tmp_path / "cache"), str(snippet)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=240)


def test_mypy_strict_accepts_the_public_api(tmp_path):
    proc = _mypy(tmp_path, MYPY_OK)
    assert proc.returncode == 0, proc.stdout


def test_mypy_rejects_wrong_types_so_the_stub_is_used(tmp_path):
    proc = _mypy(tmp_path, MYPY_BAD)
    assert proc.returncode == 1, proc.stdout
    errors = [ln for ln in proc.stdout.splitlines() if ": error:" in ln]
    assert len(errors) == 3, proc.stdout
    assert 'Argument 1 to "run" has incompatible type "int"' in errors[0]
    assert 'expression has type "int", variable has type "str"' in errors[1]
    assert 'expression has type "None", variable has type "str"' in errors[2]


def _need_build_tools():
    why = "%s not installed (pip install .[integration])"
    pytest.importorskip("build", reason=why % "build")
    pytest.importorskip("scikit_build_core", reason=why % "scikit-build-core")
    if not os.path.isfile(PYPROJECT):
        pytest.skip("not run from a source checkout")
    if shutil.which("cmake") is None:
        pytest.skip("cmake not on PATH: cannot build the extension here")


@pytest.fixture(scope="module")
def sdist(tmp_path_factory):
    _need_build_tools()
    out = tmp_path_factory.mktemp("sdist")
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--no-isolation",
         "--outdir", str(out), ROOT],
        # not the checkout: its build/ directory would shadow the build package
        cwd=str(out),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout
    (path,) = out.glob("uvffi-*.tar.gz")
    return path


def test_sdist_has_what_a_build_needs_and_no_vendored_libuv(sdist):
    with tarfile.open(sdist) as tf:
        names = [n.split("/", 1)[1] for n in tf.getnames() if "/" in n]
    for needed in ("pyproject.toml", "CMakeLists.txt", "README.md",
                   "vendor/README.md", "src/uvffi/__init__.py",
                   "src/uvffi/__init__.pyi", "src/uvffi/py.typed",
                   "src/uvffi/_binding/build_ffi.py",
                   "src/uvffi/_binding/capsule.c"):
        assert needed in names, needed
    assert any(n.startswith("src/uvffi/_binding/cdef/") and n.endswith(".h")
               for n in names)
    assert any(n.startswith("src/uvffi/_binding/shim/") and n.endswith(".c")
               for n in names)
    assert not [n for n in names if n.startswith("vendor/libuv/")]
    assert not [n for n in names if n.endswith((".so", ".pyd", ".pyc"))]


def test_wheel_built_from_sdist_installs_and_runs(sdist, tmp_path):
    wheels = tmp_path / "wheels"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps",
         "--no-build-isolation", "-q", "-w", str(wheels), str(sdist)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout
    (wheel,) = wheels.glob("uvffi-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    # one module from each layer folder (docs/architecture.md)
    for needed in ("uvffi/py.typed", "uvffi/__init__.pyi", "uvffi/runner.py",
                   "uvffi/_binding/build_ffi.py", "uvffi/handles/core.py",
                   "uvffi/transports/stream.py", "uvffi/process/spawn.py",
                   "uvffi/facets/scheduler.py"):
        assert needed in names, needed
    assert any(n.startswith("uvffi/_binding/cdef/") for n in names)
    assert any(n.startswith("uvffi/_binding/shim/") for n in names)
    assert any(re.match(r"uvffi/_uv\..*(so|pyd)$", n) for n in names)

    target = tmp_path / "target"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q",
         "--target", str(target), str(wheel)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout
    check = ("import asyncio, uvffi\n"
             "async def main():\n"
             "    await asyncio.sleep(0.01)\n"
             "    return type(asyncio.get_running_loop()).__name__\n"
             "print(uvffi.__file__, uvffi.run(main()), uvffi.__version__)\n")
    env = dict(os.environ, PYTHONPATH=str(target))
    proc = subprocess.run([sys.executable, "-c", check], env=env, cwd=str(tmp_path),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout
    where, name, version = proc.stdout.split()
    assert where.startswith(str(target))
    assert (name, version) == ("Loop", uvffi.__version__)
