"""The package's folders are layers (docs/architecture.md): a module imports
only from its own layer and the ones below it."""
import ast
import os

import pytest

PKG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                   "src", "uvffi")
# lower number: lower layer; the package's top-level modules come last
RANK = {"_uv": 1, "_capsule": 1, "handles": 2, "transports": 3, "process": 3,
        "facets": 4}
TOP_RANK = 5


def _modules():
    for folder in sorted(RANK):
        d = os.path.join(PKG, folder)
        if os.path.isdir(d):
            for name in sorted(os.listdir(d)):
                if name.endswith(".py"):
                    yield folder, os.path.join(d, name)


def _imported_layers(path):
    """(layer, line) of every package-relative import in the module at
    *path* (in folder one below the package), lazy ones included."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 2:
            if node.module:
                yield node.module.split(".")[0], node.lineno
            else:  # from .. import x
                for alias in node.names:
                    yield alias.name, node.lineno


@pytest.mark.parametrize("folder,path", list(_modules()),
                         ids=lambda v: os.path.relpath(v, PKG) if os.sep in str(v) else v)
def test_a_module_imports_nothing_from_a_layer_above_its_own(folder, path):
    for layer, line in _imported_layers(path):
        rank = RANK.get(layer, TOP_RANK)
        assert rank <= RANK[folder], "%s:%d imports %s, a layer above %s" % (
            os.path.relpath(path, PKG), line, layer, folder)


def test_every_folder_is_ranked():
    folders = {n for n in os.listdir(PKG)
               if os.path.isfile(os.path.join(PKG, n, "__init__.py"))}
    assert folders <= set(RANK), folders - set(RANK)


def _reads_of(path, attr):
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and node.attr == attr
            and isinstance(node.ctx, ast.Load)]


def test_only_the_handle_layer_decides_whether_a_poll_defers_io():
    # loop._uv_defer_io (docs/architecture.md, "How the loop runs"): the
    # scheduler and guest mode set it; libuv's callbacks, in handles/, read
    # it and hold or queue what the poll brought; nothing above reads it
    top = [os.path.join(PKG, n) for n in sorted(os.listdir(PKG)) if n.endswith(".py")]
    above = [p for folder, p in _modules() if folder != "handles"] + top
    readers = {os.path.relpath(p, PKG): _reads_of(p, "_uv_defer_io") for p in above}
    assert {p: lines for p, lines in readers.items() if lines} == {}
    assert any(_reads_of(p, "_uv_defer_io") for folder, p in _modules() if folder == "handles")
