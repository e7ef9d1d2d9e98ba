"""docs/map.md, the map of the code, lists every module of tinyvae/ once and nothing that is not there."""

import re
from pathlib import Path

import tinyvae

ROOT = Path(tinyvae.__file__).resolve().parents[1]
PACKAGE = ROOT / "tinyvae"
ROW = re.compile(r"^\| `(tinyvae/[^`]+)` \|")


def listed(text: str) -> list[str]:
    return [m.group(1) for line in text.splitlines() if (m := ROW.match(line))]


def existing() -> set[str]:
    """Every .py file of the package, except inside an assignment's folder, which counts as one entry."""
    assignments = PACKAGE / "assignments"
    folders = {f"tinyvae/assignments/{p.name}/" for p in assignments.iterdir() if p.is_dir() and p.name[:1] == "a"}
    modules = {p.relative_to(ROOT).as_posix() for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts
               and not any(p.is_relative_to(ROOT / folder) for folder in folders)}
    return modules | folders


def differences(text: str) -> tuple[set[str], set[str], list[str]]:
    """(missing from the map, listed but absent, listed twice)."""
    rows = listed(text)
    return existing() - set(rows), set(rows) - existing(), sorted({r for r in rows if rows.count(r) > 1})


def test_the_map_lists_every_module_once_and_nothing_else():
    assert differences((ROOT / "docs" / "map.md").read_text(encoding="utf-8")) == (set(), set(), [])


def test_the_map_check_can_fail():
    text = (ROOT / "docs" / "map.md").read_text(encoding="utf-8")
    stale = text.replace("| `tinyvae/nn/layers.py` |", "| `tinyvae/layers.py` |")
    missing, absent, twice = differences(stale)
    assert missing == {"tinyvae/nn/layers.py"} and absent == {"tinyvae/layers.py"} and not twice
    assert differences(text + "| `tinyvae/backend.py` | again |\n")[2] == ["tinyvae/backend.py"]


def test_the_map_is_linked_from_the_readme_and_the_docs_index():
    assert "docs/map.md" in (ROOT / "README.md").read_text(encoding="utf-8")
    assert "(map.md)" in (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
