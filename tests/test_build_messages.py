"""CMake's libuv messages say what to do: which libuv was found and which is
needed, where a missing source tree comes from, and the environment
variables a pip user sets.  Each test runs CMake's configure step alone
(no compiler run beyond CMake's own checks) on this checkout."""
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENDOR_TREE = os.path.join(ROOT, "vendor", "libuv", "CMakeLists.txt")

pytestmark = [
    pytest.mark.skipif(not os.path.isfile(os.path.join(ROOT, "CMakeLists.txt")),
                       reason="not run from a source checkout"),
    pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake not on PATH"),
    pytest.mark.skipif(shutil.which("pkg-config") is None,
                       reason="pkg-config not on PATH"),
]

# what every failure names, so that a pip user knows what to set
PIP_HINTS = ("UVFFI_LIBUV=VENDOR", "UVFFI_LIBUV_SOURCE=", "pip install .",
             "git submodule update --init vendor/libuv", "apt-get source libuv1")


def _configure(tmp_path, *defines, pc_dir=None):
    """CMake's configure output, whitespace folded (CMake reflows message
    text), and its exit status."""
    args = ["cmake", "-S", ROOT, "-B", str(tmp_path / "build"),
            "-DPython_EXECUTABLE=" + sys.executable]
    if shutil.which("ninja"):
        args += ["-G", "Ninja"]
    env = dict(os.environ)
    env.pop("CMAKE_ARGS", None)
    if pc_dir is not None:
        # PKG_CONFIG_LIBDIR replaces pkg-config's default search path, so
        # the machine's own libuv.pc is not seen
        env["PKG_CONFIG_LIBDIR"] = str(pc_dir)
        env.pop("PKG_CONFIG_PATH", None)
    proc = subprocess.run(args + ["-D" + d for d in defines], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=120)
    return proc.returncode, " ".join(proc.stdout.split())


def _fake_pc(tmp_path, version):
    pc_dir = tmp_path / "pkgconfig"
    pc_dir.mkdir()
    (pc_dir / "libuv.pc").write_text(
        "prefix=%s\nincludedir=${prefix}/include\nlibdir=${prefix}/lib\n\n"
        "Name: libuv\nDescription: fake, too old\nVersion: %s\n"
        "Libs: -L${libdir} -luv\nCflags: -I${includedir}\n" % (tmp_path, version))
    return pc_dir


def _assert_hints(out):
    for hint in PIP_HINTS:
        assert hint in out, (hint, out)


def test_vendor_with_a_missing_source_tree(tmp_path):
    status, out = _configure(tmp_path, "UVFFI_LIBUV=VENDOR",
                             "UVFFI_LIBUV_SOURCE=/nonexistent/libuv")
    assert status != 0
    assert ("UVFFI_LIBUV=VENDOR, but the libuv source tree is missing: "
            "UVFFI_LIBUV_SOURCE=/nonexistent/libuv has no CMakeLists.txt") in out, out
    _assert_hints(out)


def test_source_alone_means_vendor_and_an_empty_tree_is_missing(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    status, out = _configure(tmp_path, "UVFFI_LIBUV_SOURCE=%s" % empty)
    assert status != 0
    assert ("UVFFI_LIBUV=VENDOR, but the libuv source tree is missing: "
            "UVFFI_LIBUV_SOURCE=%s has no CMakeLists.txt" % empty) in out, out
    _assert_hints(out)


@pytest.mark.skipif(os.path.isfile(VENDOR_TREE),
                    reason="vendor/libuv holds a libuv tree here")
def test_vendor_with_the_submodule_not_fetched(tmp_path):
    status, out = _configure(tmp_path, "UVFFI_LIBUV=VENDOR")
    assert status != 0
    assert ("UVFFI_LIBUV=VENDOR, but the libuv source tree is missing: "
            "vendor/libuv has no CMakeLists.txt") in out, out
    assert "vendor/libuv is a git submodule, which a clone leaves empty" in out
    _assert_hints(out)


def test_a_source_tree_too_old_names_both_versions(tmp_path):
    tree = tmp_path / "libuv"
    (tree / "include" / "uv").mkdir(parents=True)
    (tree / "CMakeLists.txt").write_text("project(libuv C)\n")
    (tree / "include" / "uv" / "version.h").write_text(
        "#define UV_VERSION_MAJOR 1\n#define UV_VERSION_MINOR 30\n"
        "#define UV_VERSION_PATCH 1\n")
    status, out = _configure(tmp_path, "UVFFI_LIBUV_SOURCE=%s" % tree)
    assert status != 0
    assert ("UVFFI_LIBUV_SOURCE=%s holds libuv 1.30.1, too old: uvffi needs "
            "libuv >= 1.44" % tree) in out, out
    _assert_hints(out)


@pytest.mark.parametrize("mode", ["SYSTEM", "AUTO"])
def test_system_libuv_too_old_names_both_versions(tmp_path, mode):
    if mode == "AUTO" and os.path.isfile(VENDOR_TREE):
        pytest.skip("vendor/libuv holds a libuv tree here: AUTO builds it")
    status, out = _configure(tmp_path, "UVFFI_LIBUV=" + mode,
                             pc_dir=_fake_pc(tmp_path, "1.30.0"))
    assert status != 0
    assert ("the system libuv is 1.30.0 (pkg-config), too old: uvffi needs "
            "libuv >= 1.44") in out, out
    assert "sudo apt-get install libuv1-dev pkg-config" in out
    _assert_hints(out)


def test_no_system_libuv(tmp_path):
    empty = tmp_path / "pkgconfig"
    empty.mkdir()
    status, out = _configure(tmp_path, "UVFFI_LIBUV=SYSTEM", pc_dir=empty)
    assert status != 0
    assert "pkg-config finds no libuv (libuv.pc); uvffi needs libuv >= 1.44" in out
    assert "sudo apt-get install libuv1-dev pkg-config" in out
    _assert_hints(out)


def test_system_and_a_source_tree_contradict(tmp_path):
    status, out = _configure(tmp_path, "UVFFI_LIBUV=SYSTEM",
                             "UVFFI_LIBUV_SOURCE=/somewhere/libuv")
    assert status != 0
    assert "unset one of them" in out, out


def test_an_unknown_mode_lists_the_valid_ones(tmp_path):
    status, out = _configure(tmp_path, "UVFFI_LIBUV=STATIC")
    assert status != 0
    assert "UVFFI_LIBUV=STATIC: use AUTO, SYSTEM, VENDOR or" in out, out
