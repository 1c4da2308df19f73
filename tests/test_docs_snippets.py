"""Every ```python block in docs/*.md runs, each in a fresh interpreter.

Conventions, on the line(s) right before the opening fence:
  <!-- not-run -->             the block is shown, not executed (keep few)
  <!-- requires: pkg, pkg2 --> skipped unless those modules are importable
"""
import importlib.util
import os
import re
import subprocess
import sys

import pytest

from _integration import child_env

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")
PAGES = ("drop-in.md", "embedding.md", "platforms.md")
MAX_NOT_RUN = 3

_MARK = re.compile(r"<!--\s*(not-run|requires:\s*([\w.,\s]+?))\s*-->")


def _blocks(path):
    """(first line number, source, not_run, requires) per python block."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    out = []
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```python":
            start = i + 1
            end = start
            while lines[end].strip() != "```":
                end += 1
            not_run, requires = False, []
            j = i - 1
            while j >= 0 and lines[j].strip().startswith("<!--"):
                m = _MARK.search(lines[j])
                if m and m.group(1) == "not-run":
                    not_run = True
                elif m:
                    requires += [r.strip() for r in m.group(2).split(",")]
                j -= 1
            out.append((start + 1, "\n".join(lines[start:end]) + "\n",
                        not_run, requires))
            i = end
        i += 1
    return out


def _all_blocks():
    if not os.path.isdir(DOCS):
        return []
    found = []
    for name in sorted(os.listdir(DOCS)):
        if name.endswith(".md"):
            for block in _blocks(os.path.join(DOCS, name)):
                found.append(("docs/%s:%d" % (name, block[0]),) + block[1:])
    return found


BLOCKS = _all_blocks()
if not BLOCKS:
    pytestmark = pytest.mark.skip(reason="docs/ not present (installed-package run)")


def test_each_user_has_a_page_with_runnable_python():
    for page in PAGES:
        assert os.path.isfile(os.path.join(DOCS, page)), page
    runnable = {where.split(":")[0] for where, _, not_run, _ in BLOCKS
                if not not_run}
    assert {"docs/drop-in.md", "docs/platforms.md"} <= runnable


def test_few_blocks_are_marked_not_run():
    not_run = [where for where, _, flag, _ in BLOCKS if flag]
    assert len(not_run) <= MAX_NOT_RUN, not_run


@pytest.mark.parametrize(
    "where,source,requires",
    [(w, s, r) for w, s, nr, r in BLOCKS if not nr],
    ids=[w for w, _, nr, _ in BLOCKS if not nr])
def test_docs_python_snippet_runs(where, source, requires, tmp_path):
    missing = [r for r in requires if importlib.util.find_spec(r) is None]
    if missing:
        pytest.skip("%s needs %s (pip install .[integration])"
                    % (where, ", ".join(missing)))
    script = tmp_path / "snippet.py"
    script.write_text(source)
    proc = subprocess.run([sys.executable, str(script)], cwd=str(tmp_path),
                          env=child_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=120)
    assert proc.returncode == 0, "%s failed:\n%s\n---\n%s" % (
        where, source, proc.stdout)
