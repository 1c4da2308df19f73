"""The builder's GIL choice: the CPython wrappers of the calls in
build_ffi.GIL_KEPT call their function with the GIL held; every other call,
and in particular each one that can wait, releases it as cffi's wrappers do.

The C source is generated here with the installed cffi, so a cffi that
writes its wrappers differently fails this test (and the build) instead of
silently changing which calls release the GIL."""
import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILDER = os.path.join(ROOT, "src", "uvffi", "_binding", "build_ffi.py")

# calls that wait, or can take long: they must keep releasing the GIL
MUST_RELEASE = ("uv_run", "uvffi_run_once", "uv_spawn", "uvffi_fast_spawn",
                "uv_loop_close")


@pytest.fixture(scope="module")
def builder():
    pytest.importorskip("pycparser")  # cffi's cdef parser
    spec = importlib.util.spec_from_file_location("uvffi_build_ffi", BUILDER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generated(builder, tmp_path_factory):
    out = tmp_path_factory.mktemp("cffi") / "_uv.c"
    assert builder.main(["build_ffi.py", str(out)]) == 0
    return out.read_text(encoding="utf-8")


def _wrapper(source, name):
    start = source.index("\n_cffi_f_%s(PyObject *self" % name)
    return source[start:source.index("\n}\n", start)]


def test_the_listed_calls_keep_the_gil(builder, generated):
    assert builder.GIL_KEPT
    for name in builder.GIL_KEPT:
        body = _wrapper(generated, name)
        assert "{ result = %s(" % name in body or "{ %s(" % name in body, name
        assert "Py_BEGIN_ALLOW_THREADS" not in body, name
        assert "Py_END_ALLOW_THREADS" not in body, name


def test_calls_that_wait_release_the_gil(builder, generated):
    for name in MUST_RELEASE:
        assert name not in builder.GIL_KEPT
        body = _wrapper(generated, name)
        assert body.count("Py_BEGIN_ALLOW_THREADS") == 1, name
        assert body.count("Py_END_ALLOW_THREADS") == 1, name


def test_a_wrapper_of_another_form_stops_the_build(builder, generated):
    with pytest.raises(ValueError, match="uv_no_such_call"):
        builder.keep_gil(generated, ("uv_no_such_call",))
    # a wrapper already patched (no release left) is refused too
    with pytest.raises(ValueError, match="uvffi_run_nowait"):
        builder.keep_gil(generated, ("uvffi_run_nowait",))
