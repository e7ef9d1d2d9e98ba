"""Grade a submission: ``python -m tinyvae.assignments grade SUBMISSION_DIR``.

SUBMISSION_DIR is a student's copy of the release (it holds tinyvae/). For each assignment,
in parallel, each in a fresh subprocess:

1. copy the submission's tinyvae/ into a scratch folder;
2. isolate the assignment: put the reference code (this package's solution regions) back
   into the regions of the OTHER assignments, so that each assignment is graded on its own,
   and put back the instructor's copies of the support files the tests trust (spec.PROTECTED);
3. copy the instructor's own tests, public and hidden, with conftest.py: never the
   submission's copies, so editing a test gains nothing (the report says so when the
   submission's public tests differ from the originals);
4. run ``python -m pytest`` on them with PYTHONPATH pointing at the scratch copy, a time
   limit per test (conftest.py) and one for the whole run (its process group is killed);
5. read the log conftest.py wrote as each test finished, and give every test function its
   points if it passed.

Whatever the submission does (not import, loop forever, crash the interpreter, edit a
test), the grader returns a report: what failed or never ran scores zero, and a note says why.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tinyvae.assignments import markers, spec
from tinyvae.assignments.build import collect_regions
from tinyvae.assignments.markers import MarkerError, Region, replace_regions, scan
from tinyvae.assignments.report import AssignmentResult, GradedTest, Report

TIMEOUT, TEST_TIMEOUT = 120.0, 20.0       # seconds: a whole assignment's run, one test
KINDS = ("public", "hidden")
PYTEST_INI = "[pytest]\n"                  # pins the rootdir and keeps any outer configuration out


def grade(submission: Path | str, assignments: Iterable[str] | None = None, timeout: float = TIMEOUT,
          test_timeout: float = TEST_TIMEOUT, jobs: int | None = None, report_path: Path | str | None = None) -> Report:
    """Grade the submission folder; write the JSON report to ``report_path`` when given."""
    submission = Path(submission).resolve()
    chosen = [spec.get(name) for name in assignments] if assignments else list(spec.ASSIGNMENTS)
    reference = collect_regions(spec.PACKAGE)
    report = Report(str(submission))
    package: Path | None = submission / "tinyvae"
    if not (package / "__init__.py").is_file():
        report.notes.append(f"no tinyvae package in {submission} (expected tinyvae/__init__.py there): "
                            f"nothing could be graded")
        package = None
    else:
        report.notes += integrity_notes(package, chosen)
    jobs = jobs or max(1, min(len(chosen), os.cpu_count() or 1, 4))
    with tempfile.TemporaryDirectory(prefix="tinyvae-grade-") as scratch, ThreadPoolExecutor(jobs) as pool:
        futures = [pool.submit(grade_assignment, a, package, reference, Path(scratch) / a.id, timeout, test_timeout)
                   for a in chosen]
        report.assignments = [future.result() for future in futures]
    if report_path is not None:
        try:
            report.write_json(Path(report_path))
        except OSError as err:
            report.notes.append(f"the JSON report could not be written to {report_path}: {err}")
    return report


def grade_assignment(assignment: spec.Assignment, package: Path | None, reference: dict[str, list[Region]],
                     work: Path, timeout: float, test_timeout: float) -> AssignmentResult:
    """Run one assignment's tests against the submission; never raises."""
    result = AssignmentResult(assignment.id, assignment.title)
    events: list[dict[str, Any]] = []
    if package is None:
        result.status = "not run"
    else:
        start = time.perf_counter()
        try:
            events = run_tests(assignment, package, reference, work, timeout, test_timeout, result)
        except Exception as err:                    # the grader reports; it does not crash
            result.status = "grader error"
            result.notes.append(f"the grader could not run this assignment: {type(err).__name__}: {err}")
        result.seconds = time.perf_counter() - start
    result.tests = score(assignment, events, result)
    return result


def run_tests(assignment: spec.Assignment, package: Path, reference: dict[str, list[Region]], work: Path,
              timeout: float, test_timeout: float, result: AssignmentResult) -> list[dict[str, Any]]:
    """Steps 1–4 for one assignment; returns the events of the results log."""
    root, tests, log = work / "submission", work / "tests", work / "results.jsonl"
    shutil.copytree(package, root / "tinyvae", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    result.notes += isolate(root / "tinyvae", reference, keep=set(assignment.regions))
    for name in spec.PROTECTED:
        shutil.copyfile(spec.PACKAGE / name, root / "tinyvae" / name)
    tests.mkdir()
    for source in [spec.HERE / "conftest.py", *(assignment.test_file(kind) for kind in KINDS)]:
        shutil.copyfile(source, tests / source.name)
    (tests / "pytest.ini").write_text(PYTEST_INI, encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST_", "TINYVAE_"))}
    env.update(PYTHONPATH=str(root), TINYVAE_GRADE_LOG=str(log), TINYVAE_TEST_TIMEOUT=str(test_timeout),
               PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")       # no installed plugin reorders, retries or skips tests
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tests), str(tests)]
    output_path = work / "output.txt"
    with open(output_path, "wb") as output:
        process = subprocess.Popen(command, cwd=tests, env=env, stdin=subprocess.DEVNULL, stdout=output,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            kill(process)
            result.status = "time limit"
            result.notes.append(f"the run was stopped at its time limit of {timeout:g} s; "
                                f"tests that had not finished score 0")
    events = read_log(log)
    finished = [e for e in events if e["event"] == "finished"]
    if result.status != "time limit" and (not finished or finished[0]["exitstatus"] not in (0, 1, 2)):
        tail = output_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
        result.status = "crashed"
        result.notes.append(f"pytest ended with exit code {process.returncode} before finishing: {' | '.join(tail)}")
    for event in finished:
        imported = Path(event["package"] or "").resolve()
        if event["package"] and root.resolve() not in imported.parents:
            result.notes.append(f"the tests imported tinyvae from {imported.parent}, not from the submission")
    return events


def isolate(package: Path, reference: dict[str, list[Region]], keep: set[str]) -> list[str]:
    """Put the reference code into every region not in ``keep``; return notes on what could not be done.

    A submission's regions are found by their markers (the student's or the solution's),
    matched to the reference regions of the same file in order.
    """
    notes = []
    for relative, regions in reference.items():
        others = {i: region.body for i, region in enumerate(regions) if region.key not in keep}
        if not others:
            continue
        path = package / relative
        try:
            text = path.read_text(encoding="utf-8")
            spans = scan(text.splitlines(keepends=True), f"tinyvae/{relative}", (markers.BEGIN, markers.STUDENT_BEGIN),
                         (markers.END, markers.STUDENT_END), strict=False)
        except (OSError, UnicodeDecodeError, MarkerError) as err:
            notes.append(f"the other assignments' code in tinyvae/{relative} could not be restored: {err}")
            continue
        if len(spans) != len(regions):
            notes.append(f"tinyvae/{relative} has {len(spans)} marked regions instead of {len(regions)}: the other "
                         f"assignments' code there was graded as submitted")
            continue
        path.write_text(replace_regions(text, spans, others, keep_markers=True), encoding="utf-8")
    return notes


def integrity_notes(package: Path, chosen: list[spec.Assignment]) -> list[str]:
    """Say which of the files the grader brings its own copies of differ in the submission."""
    files = [(f"assignments/{a.folder}/{a.test_file('public').name}", a.test_file("public")) for a in chosen]
    files += [("assignments/conftest.py", spec.HERE / "conftest.py")]
    files += [(name, spec.PACKAGE / name) for name in spec.PROTECTED]
    notes = []
    for relative, original in files:
        submitted = package / relative
        if not submitted.is_file():
            notes.append(f"tinyvae/{relative} is missing from the submission; grading used the instructor's copy")
        elif submitted.read_bytes() != original.read_bytes():
            notes.append(f"tinyvae/{relative} differs from the original; it was not used: "
                         f"grading used the instructor's copy")
    return notes


def score(assignment: spec.Assignment, events: list[dict[str, Any]], result: AssignmentResult) -> list[GradedTest]:
    """Points per test function: all its collected items passed, or zero with the reason."""
    collected = {item for e in events if e["event"] == "collected" for item in e["items"]}
    reports = [e for e in events if e["event"] == "report"]
    collect_errors = {Path(e["nodeid"]).name: e["message"] for e in events if e["event"] == "collect_error"}
    for file, message in collect_errors.items():
        result.notes.append(f"{file} could not be collected: {message}")
    why_not_run = {"time limit": "stopped by the time limit before it finished", "not run": "nothing to grade",
                   "finished": "not collected"}.get(result.status, f"not run ({result.status})")
    graded = []
    for kind in KINDS:
        file = assignment.test_file(kind).name
        for name, worth in assignment.points(kind).items():
            items = {n for n in collected if split_nodeid(n) == (file, name)}
            mine = [r for r in reports if split_nodeid(r["nodeid"]) == (file, name)]
            failed = [r for r in mine if r["outcome"] == "failed"]
            passed = {r["nodeid"] for r in mine if r["when"] == "call" and r["outcome"] == "passed"}
            if failed:
                outcome, message = "failed", failed[0]["message"]
            elif items and items <= passed:
                outcome, message = "passed", ""
            elif any(r["outcome"] == "skipped" for r in mine):
                outcome, message = "skipped", ""
            else:
                outcome, message = "not run", collect_errors.get(file, why_not_run)
            graded.append(GradedTest(name, kind, worth if outcome == "passed" else 0, worth, outcome, message))
    return graded


def split_nodeid(nodeid: str) -> tuple[str, str]:
    """"dir/test_a1_public.py::test_x[case]" -> ("test_a1_public.py", "test_x")."""
    path, _, rest = nodeid.partition("::")
    return Path(path).name, rest.split("::")[-1].split("[")[0]


def read_log(path: Path) -> list[dict[str, Any]]:
    """The events of a results log; a line cut short by a killed process is skipped."""
    if not path.exists():
        return []
    events = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict) and "event" in event:
            events.append(event)
    return events


def kill(process: subprocess.Popen) -> None:
    """Kill the process and everything it started."""
    try:
        if hasattr(os, "killpg"):
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
    except ProcessLookupError:
        pass
    process.wait()
