"""docs/architecture.md stays true: every module, file, symbol and shim
function it names exists."""
import os
import re

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PKG = os.path.join(TOP, "src", "uvffi")
DOC = os.path.join(TOP, "docs", "architecture.md")
LAYERS = ("handles", "transports", "process", "facets")  # the package's folders


def _doc():
    with open(DOC, encoding="utf-8") as f:
        return f.read()


def _shim_source():
    text = []
    for sub in ("shim", "cdef"):
        d = os.path.join(PKG, "_binding", sub)
        for name in sorted(os.listdir(d)):
            with open(os.path.join(d, name), encoding="utf-8") as f:
                text.append(f.read())
    return "\n".join(text)


def _package_source():
    text = []
    for folder in ("",) + LAYERS:
        d = os.path.join(PKG, folder)
        for name in sorted(os.listdir(d)):
            if name.endswith(".py"):
                with open(os.path.join(d, name), encoding="utf-8") as f:
                    text.append(f.read())
    return "\n".join(text)


def _module_files(name):
    """The package's modules that ``name`` (``x`` or ``folder/x``) names."""
    if "/" in name:
        paths = [os.path.join(PKG, name + ".py")]
    else:
        paths = [os.path.join(PKG, folder, name + ".py") for folder in ("",) + LAYERS]
    return [p for p in paths if os.path.exists(p)]


def _files_named(doc):
    # module files of the package (bare names) and paths from the top
    names = set(re.findall(r"\b([A-Za-z_][\w/]*\.(?:py|c|h|md))\b", doc))
    return sorted(n for n in names if not n.startswith(("uv/", "uv.")))


@pytest.mark.parametrize("name", _files_named(_doc()))
def test_every_file_it_names_exists(name):
    candidates = [os.path.join(TOP, name), os.path.join(PKG, name),
                  os.path.join(PKG, "_binding", name),
                  os.path.join(PKG, "_binding", "shim", name),
                  os.path.join(TOP, "docs", name)]
    candidates += [os.path.join(PKG, folder, name) for folder in LAYERS]
    found = [c for c in candidates if os.path.exists(c)]
    assert found, name
    # in prose, a bare module name names one module (the tree drawing shows
    # the folders)
    prose = re.sub(r"```.*?```", "", _doc(), flags=re.S)
    if name.endswith(".py") and "/" not in name and re.search(r"\b%s\b" % re.escape(name), prose):
        assert len(found) == 1, "%s is ambiguous: write its folder" % name


def _spans(doc):
    return set(re.findall(r"`([^`\n]+)`", doc))


def _module_symbols(doc):
    # `module.symbol` and `module.py: symbol` spans, module a uvffi module
    # (`loop.x` is the loop instance's attribute: see the last test)
    out = set()
    for span in _spans(doc):
        m = (re.fullmatch(r"([a-z_/]+)\.py: ?([A-Za-z_][\w.]*)", span)
             or re.fullmatch(r"([a-z_]+)\.([A-Za-z_][\w.]*)", span))
        if not m or m.group(2) == "py" or m.group(1) == "loop":
            continue
        if m.group(1) in LAYERS or _module_files(m.group(1)):
            out.add((m.group(1), m.group(2)))
    return sorted(out)


@pytest.mark.parametrize("module,symbol", _module_symbols(_doc()))
def test_every_module_symbol_it_names_exists(module, symbol):
    files = _module_files(module)
    assert len(files) == 1, "%s: no module, or more than one: write its folder" % module
    with open(files[0], encoding="utf-8") as f:
        source = f.read()
    first = symbol.split(".")[0]
    assert re.search(r"(def|class) %s\b|^%s\s*=|\b%s = " % (first, first, first),
                     source, re.M), "uvffi/%s.py defines no %s" % (module, first)
    if "." in symbol:  # Class.member: the member is defined in that module
        member = symbol.split(".")[-1]
        assert re.search(r"def %s\b|\b%s\s*=|[\"']%s[\"']" % (member, member, member),
                         source), "uvffi/%s.py defines no %s" % (module, symbol)


def _shim_names(doc):
    return sorted(set(re.findall(r"\buvffi_[a-z_0-9]+\b", doc)))


@pytest.mark.parametrize("name", _shim_names(_doc()))
def test_every_shim_function_it_names_exists(name):
    assert re.search(r"\b%s\b" % name, _shim_source()), name


def _attributes(doc):
    # `Class.attribute` / `loop._attribute` spans: defined somewhere in the package
    out = set()
    for span in _spans(doc):
        m = re.fullmatch(r"(?:[A-Z]\w*|loop)\.(_?\w+)(?:\(\))?", span)
        if m:
            out.add(span)
    return sorted(out)


@pytest.mark.parametrize("span", _attributes(_doc()))
def test_every_class_attribute_it_names_is_defined(span):
    attr = re.fullmatch(r"(?:[A-Z]\w*|loop)\.(_?\w+)(?:\(\))?", span).group(1)
    source = _package_source()
    assert re.search(r"(def %s\b|\b%s\s*=|[\"']%s[\"'])" % (attr, attr, attr), source), span
