"""Grade a submission: ``python -m tinyvae.assignments grade SUBMISSION_DIR``.

SUBMISSION_DIR is a student's copy of the release (it holds tinyvae/). The grader never
imports the submission's code. For each assignment, in parallel:

1. copy the submission's tinyvae/ into a scratch folder: regular files only (a symbolic
   link is left out, with a note), within a size limit;
2. isolate the assignment: put the reference code (this package's solution regions) back
   into the regions of the OTHER assignments, so that each assignment is graded on its own;
3. make every check's inputs (seeded) and, in this process, the expected outputs from the
   instructor's tinyvae (oracle.py);
4. run the worker (worker.py) in the sandbox (sandbox.py) on the copy, with the inputs
   only: it calls the submission's functions and answers with arrays;
5. judge each answer as data and give each check its points when all its cases pass.

Whatever the submission does (not import, loop forever, crash, fork, fill memory, print),
the grader returns a report: what failed or never answered scores zero, with a short
reason of the grader's own. A step of the grader that fails (the copy, the isolation)
scores the assignment zero with a note; it never scores it and never crashes.
"""

from __future__ import annotations

import os
import stat
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tinyvae.assignments import markers, oracle, spec
from tinyvae.assignments.build import collect_regions
from tinyvae.assignments.markers import MarkerError, Region, replace_regions, scan
from tinyvae.assignments.report import AssignmentResult, GradedTest, Report
from tinyvae.assignments.sandbox import Limits, check_sandbox, run_worker

TIMEOUT, CHECK_TIMEOUT = 120.0, 20.0      # seconds: one assignment's worker, one case
COPY_LIMIT = 50 << 20                      # bytes of a submission's tinyvae/ the grader copies, at most
UNSANDBOXED = "UNSANDBOXED: student code ran without a sandbox (--unsandboxed); scores may be forged"


def grade(submission: Path | str, assignments: Iterable[str] | None = None, timeout: float = TIMEOUT,
          check_timeout: float = CHECK_TIMEOUT, jobs: int | None = None, report_path: Path | str | None = None,
          sandboxed: bool = True, limits: Limits | None = None) -> Report:
    """Grade the submission folder; write the JSON report to ``report_path`` when given.

    Raises SandboxError (one sentence naming the fix) when ``sandboxed`` and the sandbox
    cannot run here; ``sandboxed=False`` runs student code unconfined, and says so first.
    """
    sandbox = f"sandboxed: {check_sandbox()}" if sandboxed else UNSANDBOXED
    submission = Path(submission).resolve()
    chosen = [spec.get(name) for name in assignments] if assignments else list(spec.ASSIGNMENTS)
    reference = collect_regions(spec.PACKAGE)
    limits = limits or Limits(cpu=int(timeout) + 5)
    report = Report(str(submission), sandbox)
    package: Path | None = submission / "tinyvae"
    if not (package / "__init__.py").is_file():
        report.notes.append(f"no tinyvae package in {submission} (expected tinyvae/__init__.py there): "
                            f"nothing could be graded")
        package = None
    jobs = jobs or max(1, min(len(chosen), os.cpu_count() or 1, 4))
    with tempfile.TemporaryDirectory(prefix="tinyvae-grade-") as scratch, ThreadPoolExecutor(jobs) as pool:
        futures = [pool.submit(grade_assignment, a, package, reference, Path(scratch) / a.id, timeout,
                               check_timeout, sandboxed, limits) for a in chosen]
        report.assignments = [future.result() for future in futures]
    if report_path is not None:
        try:
            report.write_json(Path(report_path))
        except OSError as err:
            report.notes.append(f"the JSON report could not be written to {report_path}: {err}")
    return report


def grade_assignment(assignment: spec.Assignment, package: Path | None, reference: dict[str, list[Region]],
                     work: Path, timeout: float, check_timeout: float, sandboxed: bool,
                     limits: Limits) -> AssignmentResult:
    """Grade one assignment of the submission; never raises."""
    result = AssignmentResult(assignment.id, assignment.title)
    planned = oracle.plan(assignment.id)
    answers: dict[str, tuple[str, bytes]] = {}
    why_missing = "not run: nothing to grade"
    if package is None:
        result.status = "not run"
    else:
        start = time.perf_counter()
        try:
            prepare(assignment, package, reference, work, planned, result)
        except Exception as err:                    # the grader reports; it neither crashes nor scores
            result.status = "grader error"
            result.notes.append(f"the grader could not prepare this assignment ({type(err).__name__}): "
                                f"it scores 0; grade it again, or grade it by hand")
            why_missing = "not run: the grader could not prepare the submission"
        else:
            run = run_worker(work, limits, timeout, check_timeout, sandboxed)
            answers = oracle.read_frames(run.output)
            result.notes += run.notes
            if not answers and not run.timed_out:
                result.notes.append(f"the worker ended without answering (exit status {run.returncode})")
            why_missing = "no answer: the worker ended before this check"
            if run.timed_out:
                result.status = "time limit"
                result.notes.append(f"the worker was stopped at its time limit of {timeout:g} s; "
                                    f"checks that had not answered score 0")
                why_missing = "timed out: the worker was stopped before this check answered"
        result.seconds = time.perf_counter() - start
    result.tests = score(planned, answers, why_missing)
    return result


def prepare(assignment: spec.Assignment, package: Path, reference: dict[str, list[Region]], work: Path,
            planned: tuple[oracle.Planned, ...], result: AssignmentResult) -> None:
    """Steps 1–3: the isolated copy in work/submission, the inputs in work/inputs."""
    result.notes += copy_package(package, work / "submission" / "tinyvae")
    result.notes += isolate(work / "submission" / "tinyvae", reference, keep=set(assignment.regions))
    oracle.write_inputs(planned, work / "inputs")


def copy_package(source: Path, target: Path, limit: int = COPY_LIMIT) -> list[str]:
    """Copy the regular files and folders of ``source`` (never following a link); return notes on what was left out."""
    notes, total = [], 0
    for folder, dirs, files in os.walk(source, followlinks=False):
        here = Path(folder)
        relative = here.relative_to(source)
        (target / relative).mkdir(parents=True, exist_ok=True)
        for name in sorted(dirs + files):
            path = here / name
            info = path.lstat()
            if stat.S_ISDIR(info.st_mode) and name != "__pycache__":
                continue
            if not stat.S_ISREG(info.st_mode) or name == "__pycache__" or name.endswith(".pyc"):
                if stat.S_ISLNK(info.st_mode):
                    notes.append(f"tinyvae/{(relative / name).as_posix()} is a symbolic link: it was not copied")
                continue
            total += info.st_size
            if total > limit:
                raise OSError(f"the submission's tinyvae/ is larger than {limit >> 20} MiB")
            descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(descriptor, "rb") as src, open(target / relative / name, "wb") as dst:
                dst.write(src.read(limit))
        dirs[:] = [d for d in dirs if d != "__pycache__" and not (here / d).is_symlink()]
    return notes


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
            notes.append(f"the other assignments' code in tinyvae/{relative} could not be restored: "
                         f"{type(err).__name__}")
            continue
        if len(spans) != len(regions):
            notes.append(f"tinyvae/{relative} has {len(spans)} marked regions instead of {len(regions)}: the other "
                         f"assignments' code there was graded as submitted")
            continue
        path.write_text(replace_regions(text, spans, others, keep_markers=True), encoding="utf-8")
    return notes


def score(planned: tuple[oracle.Planned, ...], answers: dict[str, tuple[str, bytes]],
          why_missing: str) -> list[GradedTest]:
    """Points per check: every case passed, or zero with the first failing case's reason."""
    graded: dict[str, GradedTest] = {}
    for p in planned:
        answer = answers.get(p.key)
        reason = oracle.judge(p, answer, why_missing)
        test = graded.setdefault(p.check.name, GradedTest(p.check.name, p.check.kind, p.check.points,
                                                          p.check.points, "passed"))
        if reason and test.outcome == "passed":
            test.points, test.outcome, test.message = 0, "failed", reason
            if answer is None:
                test.outcome = "not run"
            elif len(p.check.cases) > 1:
                test.message = f"case {p.key.split('-')[1]}: {reason}"
    return list(graded.values())
