"""The course chapters in notebooks/: each one runs top to bottom, and none is stored with outputs.

Every notebook is executed with nbclient on the "python3" kernel (ipykernel, installed by the dev
extra, provides it in the same virtual environment), from notebooks/ as the working directory, with
TINYVAE_FAST=1 (chapters may shrink their work under it; the same cells run) and MPLBACKEND=Agg.
A failing assert or exception in any cell fails the test and shows that cell.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CHAPTERS = [p for p in NOTEBOOKS if re.match(r"\d\d_[a-z0-9_]+\.ipynb$", p.name)]   # 01_arrays_and_backends.ipynb
CELL_TIMEOUT_S = 300
KERNEL = "python3"
DEV_HINT = 'install the dev extra: pip install -e ".[dev]"'


def _ids(paths):
    return [p.stem for p in paths]


def _load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _require(module):
    try:
        return __import__(module)
    except ImportError:
        pytest.fail(f"{module} is not installed; {DEV_HINT}")


def test_the_chapters_are_numbered_in_order():
    numbers = [int(p.name[:2]) for p in CHAPTERS]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 6, [p.name for p in CHAPTERS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_is_stored_without_outputs(path):
    nbformat = _require("nbformat")
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [i for i, cell in enumerate(nb.cells)
             if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None)]
    assert not dirty, (f"{path.name}: cells {dirty} have stored outputs or execution counts; clear them "
                       "(jupyter nbconvert --clear-output --inplace notebooks/*.ipynb)")
    assert nb.metadata.get("kernelspec", {}).get("name") == KERNEL, f'{path.name}: kernelspec name must be "{KERNEL}"'


@pytest.mark.parametrize("path", CHAPTERS, ids=_ids(CHAPTERS))
def test_chapter_says_where_it_sits_and_ends_with_exercises(path):
    """A title "# Chapter N — ...", a line saying where it sits (previous / next), and exercises at the end."""
    cells = _load(path)["cells"]
    first = "".join(cells[0]["source"]) if cells and cells[0]["cell_type"] == "markdown" else ""
    number = int(path.name[:2])
    assert re.match(rf"# Chapter {number} — \S", first), f"{path.name}: first cell must start '# Chapter {number} — '"
    assert "previous:" in first and "next:" in first, f"{path.name}: say where the chapter sits (previous / next)"
    markdown = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    assert re.search(r"^#+ Exercises", markdown, re.MULTILINE), f"{path.name}: end with an '## Exercises' section"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_runs_top_to_bottom(path, monkeypatch):
    nbformat = _require("nbformat")
    nbclient = _require("nbclient")
    # The kernel inherits this environment: the fast mode, a non-interactive matplotlib,
    # and the repository on the path (so an un-installed checkout works too).
    monkeypatch.setenv("TINYVAE_FAST", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name=KERNEL, timeout=CELL_TIMEOUT_S, startup_timeout=120,
                                     resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    client.execute()   # raises CellExecutionError, with the failing cell and traceback, on any error


def test_notebook_code_is_ruff_clean():
    if shutil.which("ruff") is None and subprocess.run([sys.executable, "-m", "ruff", "--version"],
                                                        capture_output=True).returncode != 0:
        pytest.fail(f"ruff is not installed; {DEV_HINT}")
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--config", "tests/ruff.toml",
                             *[str(p.relative_to(ROOT)) for p in NOTEBOOKS]],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
