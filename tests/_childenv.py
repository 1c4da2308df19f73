"""Environment for child interpreters that a test starts: they must import
the same uvffi as the test process — the installed package in CI, the
source tree (with its dev-built extension) when developing — not whatever
``src/`` happens to hold."""
import os

import uvffi

UVFFI_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(uvffi.__file__)))


def child_env(base=None, *extra_paths):
    env = dict(os.environ if base is None else base)
    paths = [UVFFI_PARENT, *extra_paths]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env
