"""The grade report: per check, per assignment and in total; as a table and as JSON.

Both start with the line that says whether student code ran in the sandbox. JSON layout
(``Report.to_dict``; the first line of the file is ``{"sandbox": "...",``)::

    {"sandbox": "sandboxed: bubblewrap 0.11.0 at /usr/bin/bwrap",
     "submission": "/path", "points": 41, "max_points": 67, "notes": ["..."],
     "assignments": [{"id": "A1", "title": "...", "points": 13, "max_points": 15,
                      "public": [7, 7], "hidden": [6, 8], "status": "finished", "seconds": 0.8,
                      "notes": ["..."],
                      "tests": [{"name": "test_...", "kind": "public", "points": 2, "max_points": 2,
                                 "outcome": "passed", "message": ""}, ...]}, ...]}

``outcome`` is passed, failed or "not run" (the worker never answered: stopped first, or the
grader could not prepare the submission); ``status`` is finished, "time limit", "not run"
or "grader error". A ``message`` is the grader's own short reason, never the submission's.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class GradedTest:
    name: str
    kind: str            # "public" or "hidden"
    points: int
    max_points: int
    outcome: str         # passed, failed, not run
    message: str = ""


def totals(parts: list[Any]) -> tuple[int, int]:
    """(points, max_points) summed over tests or assignments."""
    return sum(p.points for p in parts), sum(p.max_points for p in parts)


class Scored:
    """``points`` and ``max_points``, summed over ``parts()``: the tests, or the assignments."""

    def parts(self) -> list[Any]:
        raise NotImplementedError

    @property
    def points(self) -> int:
        return totals(self.parts())[0]

    @property
    def max_points(self) -> int:
        return totals(self.parts())[1]


@dataclass
class AssignmentResult(Scored):
    id: str
    title: str
    status: str = "finished"
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    tests: list[GradedTest] = field(default_factory=list)

    def parts(self) -> list[GradedTest]:
        return self.tests

    def subtotal(self, kind: str) -> tuple[int, int]:
        return totals([t for t in self.tests if t.kind == kind])


@dataclass
class Report(Scored):
    submission: str
    sandbox: str = ""    # "sandboxed: ..." or grade.UNSANDBOXED
    assignments: list[AssignmentResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def parts(self) -> list[AssignmentResult]:
        return self.assignments

    def get(self, assignment_id: str) -> AssignmentResult:
        return next(a for a in self.assignments if a.id == assignment_id)

    def to_dict(self) -> dict[str, Any]:
        assignments = []
        for a in self.assignments:
            entry = {"id": a.id, "title": a.title, "points": a.points, "max_points": a.max_points,
                     "public": list(a.subtotal("public")), "hidden": list(a.subtotal("hidden")),
                     "status": a.status, "seconds": round(a.seconds, 2), "notes": a.notes,
                     "tests": [asdict(t) for t in a.tests]}
            assignments.append(entry)
        return {"sandbox": self.sandbox, "submission": self.submission, "points": self.points,
                "max_points": self.max_points,
                "notes": self.notes, "assignments": assignments}

    def write_json(self, path: Path) -> None:
        """Write the report, its first line saying whether the code ran sandboxed."""
        data = self.to_dict()
        first = json.dumps({"sandbox": data.pop("sandbox")}, ensure_ascii=False)[:-1]
        rest = json.dumps(data, indent=2, ensure_ascii=False)
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(f"{first},{rest[1:]}\n", encoding="utf-8")
        os.replace(temporary, path)

    def table(self, failures: bool = False) -> str:
        """The score table; ``failures=True`` lists each test that lost points under its assignment."""
        out = [self.sandbox, f"grade of {self.submission}", "",
               f"{'':4}{'assignment':34}{'public':>9}{'hidden':>9}{'total':>9}  status"]
        for a in self.assignments:
            public, hidden = ("{}/{}".format(*a.subtotal(kind)) for kind in ("public", "hidden"))
            out.append(f"{a.id:4}{a.title[:33]:34}{public:>9}{hidden:>9}{a.points:>5}/{a.max_points:<3}  {a.status}")
            if failures:
                out += [f"{'':8}✗ {t.name} ({t.kind}, {t.outcome}): {t.message[:100]}"
                        for t in a.tests if t.points < t.max_points]
        share = 100.0 * self.points / self.max_points if self.max_points else 0.0
        out.append(f"{'':4}{'total':52}{self.points:>5}/{self.max_points:<3}  {share:.1f}%")
        notes = self.notes + [f"{a.id}: {note}" for a in self.assignments for note in a.notes]
        if notes:
            out += ["", "notes:"] + [f"  - {note}" for note in notes]
        return "\n".join(out)
