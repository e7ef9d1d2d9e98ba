"""Build the student release: ``python -m tinyvae.assignments build OUTDIR``.

What OUTDIR holds afterwards::

    README.md      generated: the assignments, their points, how to install, test and submit
    requirements.txt   what the package and its public tests import: tinyvae's own
                   requirements (setup.cfg's install_requires) and pytest, so that
                   ``python -m pip install -r requirements.txt`` is the one install command
    pytest.ini     so that ``python -m pytest`` in OUTDIR runs every public test
    tinyvae/       the package as it is at build time, with every solution region replaced by
                   a stub that raises NotImplementedError with a hint; the grader's checks
                   (checks.py), the fast twins' files (spec.NOT_SHIPPED) and __pycache__
                   left out; each assignment's README.md followed by a generated list of what
                   to write (file, line, function, hint) and of the points

The source is checked first and refused, with the file and line, when its markers are
unbalanced or nested, when a region lies outside a function, or when spec.py and the
regions found disagree. After stubbing, every solution line of 16 characters or more that
still appears anywhere in the release is reported as a leak.
"""

from __future__ import annotations

import configparser
import importlib.metadata
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from tinyvae.assignments import spec
from tinyvae.assignments.markers import MarkerError, Region, find_regions, replace_regions, stub_lines

LEFT_OUT = ("__pycache__", "*.pyc", ".pytest_cache", "checks.py", "grade_report.json")   # checks.py: the grader's
PYTEST_INI = "[pytest]\ntestpaths = tinyvae/assignments\n"
TEST_REQUIREMENT = "pytest>=7"


@dataclass
class Release:
    """What build() made: the folder, each stub with its line in the release, and any leaks."""

    outdir: Path
    stubs: list[tuple[spec.Assignment, Region, int]] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)


def collect_regions(package: Path) -> dict[str, list[Region]]:
    """Every solution region in the package's .py files, by file ("layers.py"), checked against spec.py."""
    regions: dict[str, list[Region]] = {}
    for path in sorted(package.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        relative = path.relative_to(package).as_posix()
        found = find_regions(path.read_text(encoding="utf-8"), relative)
        if found:
            regions[relative] = found
    keys = {region.key for found in regions.values() for region in found}
    if not keys:
        raise spec.SpecError(f"{package} holds no solution regions: build and grade from the instructor's source, "
                             f"not from a student release")
    for key in sorted(keys - set(spec.WITHHELD)):
        spec.owner(key)                                   # raises for a region no assignment claims
    for assignment in spec.ASSIGNMENTS:
        for key in assignment.regions:
            if key not in keys:
                raise spec.SpecError(f"{assignment.id} asks for the region {key}, but {package} has no solution "
                                     f"region in that function")
        assignment.max_points()                           # raises for a missing test file or points mark
    return regions


def build(outdir: Path | str, source: Path | str | None = None, force: bool = False) -> Release:
    """Write the student release of the package ``source`` (default: this tinyvae) into ``outdir``."""
    source = Path(source or spec.PACKAGE).resolve()
    outdir = Path(outdir).resolve()
    regions = collect_regions(source)
    if outdir == source or source in outdir.parents or outdir in source.parents:
        raise ValueError(f"the release folder {outdir} must not contain or lie inside the source {source}")
    if outdir.exists() and not outdir.is_dir():
        raise FileExistsError(f"{outdir} is a file, not a folder: choose a new folder for the release")
    if outdir.exists() and any(outdir.iterdir()):
        if not force:
            raise FileExistsError(f"{outdir} is not empty: choose a new folder or pass --force to replace it")
        shutil.rmtree(outdir)
    package = outdir / "tinyvae"
    shutil.copytree(source, package, ignore=shutil.ignore_patterns(*LEFT_OUT))
    for relative in spec.NOT_SHIPPED:                     # the fast twins: tinyvae.fast runs the reference
        (package / relative).unlink(missing_ok=True)

    release = Release(outdir)
    for relative, found in regions.items():
        text, stubs = stub_file((source / relative).read_text(encoding="utf-8"), found)
        (package / relative).write_text(text, encoding="utf-8")
        release.stubs += [(spec.owner(region.key), region, line) for region, line in zip(found, stubs, strict=True)
                          if region.key not in spec.WITHHELD]
    order = [key for a in spec.ASSIGNMENTS for key in a.regions]
    release.stubs.sort(key=lambda stub: order.index(stub[1].key))
    release.leaks = find_leaks(package, regions)
    (outdir / "pytest.ini").write_text(PYTEST_INI, encoding="utf-8")
    (outdir / "requirements.txt").write_text("\n".join([*requirements(source), TEST_REQUIREMENT]) + "\n",
                                             encoding="utf-8")
    (outdir / "README.md").write_text(release_readme(release), encoding="utf-8")
    for assignment in spec.ASSIGNMENTS:
        readme = package / "assignments" / assignment.folder / "README.md"
        original = readme.read_text(encoding="utf-8") if readme.exists() else f"# {assignment.id}\n"
        readme.write_text(original.rstrip() + "\n\n" + assignment_section(release, assignment), encoding="utf-8")
    return release


def requirements(source: Path) -> list[str]:
    """tinyvae's install_requires: from setup.cfg next to the source package, else from the installed metadata."""
    setup = source.parent / "setup.cfg"
    if setup.is_file():
        config = configparser.ConfigParser()
        config.read(setup, encoding="utf-8")
        listed = config.get("options", "install_requires", fallback="")
        return [line.strip() for line in listed.splitlines() if line.strip()]
    try:
        found = importlib.metadata.requires("tinyvae") or []
    except importlib.metadata.PackageNotFoundError:
        raise spec.SpecError(f"cannot tell what the release needs installed: no setup.cfg next to {source} "
                             f"and tinyvae is not installed") from None
    return [requirement for requirement in found if "extra ==" not in requirement]


def stub_file(text: str, regions: list[Region]) -> tuple[str, list[int]]:
    """The file with each region stubbed, and the 1-based line of each stub's first marker."""
    replacements, lines, shift = {}, [], 0
    for i, region in enumerate(regions):
        key = region.key
        stub = stub_lines(region, f"{spec.label(key)}: {region.qualname}",
                          spec.WITHHELD.get(key) or region.hint or spec.HINTS.get(key, f"write {region.qualname}"))
        replacements[i] = stub
        lines.append(region.start + 1 + shift)
        shift += len(stub) - (region.stop - region.start + 1)
    stubbed = replace_regions(text, [(r.start, r.stop) for r in regions], replacements)
    try:
        compile(stubbed, regions[0].path, "exec")
    except SyntaxError as err:
        raise MarkerError(f"{regions[0].path}:{err.lineno}: the stubbed file does not compile ({err.msg})") from None
    return stubbed, lines


def find_leaks(package: Path, regions: dict[str, list[Region]]) -> list[str]:
    """Lines of the release that repeat a solution line (16 characters or more, comments aside)."""
    solution = {}
    for found in regions.values():
        for region in found:
            for line in region.body:
                code = line.split("#")[0].strip()
                if len(code) >= 16:
                    solution[code] = region.key
    leaks = []
    for path in sorted(package.rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            code = line.split("#")[0].strip()
            if code in solution:
                leaks.append(f"tinyvae/{path.relative_to(package).as_posix()}:{number} repeats solution code "
                             f"of {solution[code]}: {code}")
    return leaks


def release_readme(release: Release) -> str:
    """The release's top-level README.md."""
    rows = []
    for a in spec.ASSIGNMENTS:
        functions = ", ".join(f"`{region.qualname}`" for owner, region, _ in release.stubs if owner is a)
        rows.append(f"| {a.id} {a.title} | `tinyvae/assignments/{a.folder}/` | {a.max_points()} | {functions} |")
    total = sum(a.max_points() for a in spec.ASSIGNMENTS)
    return f"""# tinyvae — course assignments

This folder is your own copy of tinyvae, a Variational Autoencoder written from scratch in
NumPy, with the code of {len(spec.ASSIGNMENTS)} assignments taken out. Each missing piece is a stub
that raises `NotImplementedError` with a hint, between the lines `### BEGIN YOUR CODE` and
`### END YOUR CODE`. Everything else already works.

| assignment | instructions and public tests | points | what you write |
|---|---|---|---|
{chr(10).join(rows)}
| total | | {total} | |

## Work

1. Read the assignment's README.md, then the module you are completing: the docstrings carry
   the maths and the shapes.
2. Replace the `raise NotImplementedError(...)` line by your code. Keep the two marker lines;
   write nothing outside them.
3. Install what it needs once (Python 3.10+; a virtual environment is a good idea), then run
   the public tests, from this folder:

       python -m pip install -r requirements.txt
       python -m pytest tinyvae/assignments/a1_layers      # one assignment
       python -m pytest                                    # all of them

   Gradient checks compare your backward passes with finite differences in float64.

## Grading

You hand in this whole folder. The grader calls your functions on its own inputs, in a
sandbox with a time limit, and compares what they return with the reference solution:
the same checks as your public tests (same names, same points) and hidden ones. Editing a
test changes nothing. Each assignment is graded on its own: the grader uses the reference
code for the other assignments' regions, so a mistake in A1 costs no points in A3. The
report gives each check's points and a short reason (a shape, the size of an error,
"timed out", "crashed: NotImplementedError"). Your code runs without network and sees only
your own files, Python and NumPy.
"""


def assignment_section(release: Release, assignment: spec.Assignment) -> str:
    """The generated part of one assignment's README in the release: what to write, and the points."""
    lines = ["## What to write (generated)", "", "| where | function | hint |", "|---|---|---|"]
    for owner, region, line in release.stubs:
        if owner is assignment:
            hint = region.hint or spec.HINTS.get(region.key, "")
            lines.append(f"| `tinyvae/{region.path}:{line}` | `{region.qualname}` | {hint} |")
    public, hidden = assignment.points("public"), assignment.points("hidden")
    lines += ["", "## Points (generated)", "", "| test | points |", "|---|---|"]
    lines += [f"| `{name}` (public) | {points} |" for name, points in public.items()]
    lines += [f"| {len(hidden)} hidden checks, run by the grader | {sum(hidden.values())} |",
              f"| **total** | **{assignment.max_points()}** |", "",
              f"Run the public tests with `python -m pytest tinyvae/assignments/{assignment.folder}`.", ""]
    return "\n".join(lines)
