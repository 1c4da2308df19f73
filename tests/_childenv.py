"""Environment for child interpreters that a test starts: they must import
the same uvffi as the test process — the installed package in CI, the
source tree (with its dev-built extension) when developing — not whatever
``src/`` happens to hold."""
import os

import _cffi_backend
import uvffi

UVFFI_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(uvffi.__file__)))
# where cffi's backend is: an embedded interpreter (test_embedding's C host)
# does not see a virtual environment's site-packages by itself
# (PyPy: built in, nothing to add)
_CFFI_FILE = getattr(_cffi_backend, "__file__", None)
CFFI_PARENT = os.path.dirname(os.path.abspath(_CFFI_FILE)) if _CFFI_FILE else None


def child_env(base=None, *extra_paths):
    env = dict(os.environ if base is None else base)
    paths = [UVFFI_PARENT, *extra_paths]
    if CFFI_PARENT is not None and CFFI_PARENT not in paths:
        paths.append(CFFI_PARENT)
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env
