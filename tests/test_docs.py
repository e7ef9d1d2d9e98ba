"""Every relative link in README.md, docs/ and the notebooks' Markdown points at something that exists.

Checked: inline links and images ``[text](target)``, reference definitions ``[name]: target`` and
HTML ``href``/``src`` attributes, outside code blocks and code spans. Links with a scheme
(``https:``, ``mailto:``) are not fetched. A ``#anchor`` into a Markdown file must name one of its
headings, slugged the way GitHub does it (lower case, punctuation dropped, spaces → hyphens,
``-1``, ``-2`` … for repeats).
"""

import importlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
MARKDOWN = [p for p in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))] if p.is_file()]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,}).*?^ {0,3}\1[`~]*[ \t]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)", re.DOTALL)
INLINE = re.compile(r"\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?\s*\)")
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)", re.MULTILINE)
HTML = re.compile(r"""\b(?:href|src)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*:|//)")
ATX = re.compile(r"^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$", re.MULTILINE)
SETEXT = re.compile(r"^ {0,3}(\S.*?)[ \t]*\n {0,3}(?:=+|-+)[ \t]*$", re.MULTILINE)
HTML_ID = re.compile(r"""<[^>]+\b(?:id|name)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
TEST_REF = re.compile(r"`(tests/[\w/]+\.py)::(\w+)")        # `tests/test_losses.py::test_gaussian_kl_gradients`
NAME_REF = re.compile(r"`(tinyvae(?:\.\w+)+)[`(]")          # `tinyvae.nn.losses.gaussian_kl` or `tinyvae.VAE(...)`


def without_code(text: str) -> str:
    return CODE_SPAN.sub("", FENCE.sub("", text))


def links(text: str) -> list[str]:
    text = without_code(text)
    found = [m.group(1) for pattern in (INLINE, REFERENCE, HTML) for m in pattern.finditer(text)]
    return [t[1:-1] if t.startswith("<") and t.endswith(">") else t for t in found]


def github_slug(heading: str) -> str:
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)   # a link in a heading counts as its text
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    headings = sorted([(m.start(), m.group(1)) for m in ATX.finditer(text)] +
                      [(m.start(), m.group(1)) for m in SETEXT.finditer(text) if not m.group(1).startswith("#")])
    seen: dict[str, int] = {}
    result = set(HTML_ID.findall(text))
    for _, heading in headings:
        slug = github_slug(heading)
        result.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return result


def broken_links(source: Path, text: str, root: Path = ROOT) -> list[str]:
    """One line for every link in ``text`` (found in the file ``source``) that does not resolve."""
    problems = []
    for target in links(text):
        if SCHEME.match(target):
            continue
        path_part, _, anchor = target.partition("#")
        path_part = unquote(path_part.split("?")[0])
        if path_part.startswith("/"):
            resolved = (root / path_part.lstrip("/")).resolve()
        elif path_part:
            resolved = (source.parent / path_part).resolve()
        else:
            resolved = source.resolve()
        if not resolved.is_relative_to(root.resolve()):
            problems.append(f"{target}: points outside the repository")
        elif not resolved.exists():
            problems.append(f"{target}: {resolved.relative_to(root.resolve())} does not exist")
        elif anchor and resolved.suffix == ".md" and unquote(anchor).lower() not in anchors(resolved):
            problems.append(f"{target}: no heading in {resolved.relative_to(root.resolve())} has the anchor #{anchor}")
    return problems


@pytest.mark.parametrize("path", MARKDOWN, ids=[str(p.relative_to(ROOT)) for p in MARKDOWN])
def test_markdown_links_resolve(path):
    problems = broken_links(path, path.read_text(encoding="utf-8"))
    assert not problems, f"broken links in {path.relative_to(ROOT)}:\n" + "\n".join(problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_markdown_links_resolve(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    text = "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    problems = broken_links(path, text)
    assert not problems, f"broken links in {path.relative_to(ROOT)}:\n" + "\n".join(problems)


def resolves(dotted: str) -> bool:
    """True when ``dotted`` (e.g. "tinyvae.nn.losses.gaussian_kl") is an importable module or an attribute of one."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for name in parts[i:]:
                obj = getattr(obj, name)
        except AttributeError:
            return False
        return True
    return False


@pytest.mark.parametrize("path", MARKDOWN, ids=[str(p.relative_to(ROOT)) for p in MARKDOWN])
def test_functions_and_tests_named_in_the_docs_exist(path):
    """Docs that say "implemented in `tinyvae.x.f`, checked by `tests/test_x.py::test_f`" must stay true."""
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    problems = [f"`{name}` is not importable" for name in sorted(set(NAME_REF.findall(text))) if not resolves(name)]
    for file, test in sorted(set(TEST_REF.findall(text))):
        source = ROOT / file
        if not source.is_file():
            problems.append(f"{file} does not exist")
        elif not re.search(rf"^\s*def {test}\(", source.read_text(encoding="utf-8"), re.MULTILINE):
            problems.append(f"{file} has no test called {test}")
    assert not problems, f"{path.relative_to(ROOT)} names things that do not exist:\n" + "\n".join(problems)


def test_the_link_checker_can_fail(tmp_path):
    """A negative twin: a missing file, a missing anchor, a link out of the repository and a bad reference
    definition are all reported; code, external links and good anchors are left alone."""
    (tmp_path / "README.md").write_text("# Read me\n")
    page = tmp_path / "docs" / "page.md"
    page.parent.mkdir()
    page.write_text("# A title\n\n## Second — part (2)\n\nSetext\n------\n\n"
                    "[ok](#a-title) [ok](#second--part-2) [ok](#setext) [ok](../README.md#read-me)\n"
                    "[web](https://example.org/x) `[code](nowhere.md)`\n```\n[fenced](nowhere.md)\n```\n"
                    "[bad](missing.md) [bad](#no-such-heading) [bad](../../outside.md)\n[ref]: missing-too.md\n")
    problems = broken_links(page, page.read_text(), root=tmp_path)
    assert len(problems) == 4, problems
    assert any("missing.md" in p for p in problems) and any("#no-such-heading" in p for p in problems)
    assert any("outside the repository" in p for p in problems) and any("missing-too.md" in p for p in problems)


def test_the_name_checker_can_fail():
    assert resolves("tinyvae.nn.losses.gaussian_kl") and resolves("tinyvae.VAE")
    assert resolves("tinyvae.models.vae.LOGVAR_MIN")
    assert not resolves("tinyvae.nn.losses.gaussian_kll") and not resolves("tinyvae.no_such_module.f")


README_COMMAND = re.compile(r"^(python -m tinyvae\.train [^\n]*--out runs/digits)$", re.MULTILINE)


@pytest.mark.slow
def test_readme_order_on_a_fresh_copy_the_first_training_run_then_the_tests(tmp_path):
    """README's first command writes runs/digits in the clone; the tests run next must not notice it
    (they once did: a test ran `train` in the repository and met "runs/digits already holds a run").
    The training command is README's with 2 epochs instead of 200; the tests are test_train.py's."""
    from conftest import DERIVED, repository_files

    clone = tmp_path / "clone"
    shutil.copytree(ROOT, clone, ignore=shutil.ignore_patterns(*DERIVED, "runs"))
    command = README_COMMAND.search((ROOT / "README.md").read_text(encoding="utf-8")).group(1)
    env = dict(os.environ, PYTHONPATH=str(clone))
    args = shlex.split(command.replace("--epochs 200", "--epochs 2"))
    first = subprocess.run([sys.executable, *args[1:], "--no-progress"], cwd=clone, env=env, capture_output=True,
                           text=True, timeout=300)
    assert first.returncode == 0 and (clone / "runs" / "digits" / "checkpoint.npz").exists(), first.stderr
    files = repository_files(clone)
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "tests/test_train.py"], cwd=clone, env=env,
                           capture_output=True, text=True, timeout=600)
    assert tests.returncode == 0, tests.stdout[-3000:]
    assert repository_files(clone) == files                     # and the tests wrote nothing in the clone
