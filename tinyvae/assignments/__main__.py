"""Command line: ``python -m tinyvae.assignments {list,build,grade} ...`` (see --help)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tinyvae.assignments import spec
from tinyvae.assignments.build import build, collect_regions
from tinyvae.assignments.grade import CHECK_TIMEOUT, TIMEOUT, grade
from tinyvae.assignments.markers import MarkerError
from tinyvae.assignments.sandbox import SandboxError

REPORT_NAME = "grade_report.json"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tinyvae.assignments", allow_abbrev=False,
                                     description="Course assignments: list them, build the student release, grade.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the assignments, the regions students write, and the points")
    b = commands.add_parser("build", help="write the student release into OUTDIR", allow_abbrev=False)
    b.add_argument("outdir", type=Path)
    b.add_argument("--source", type=Path, default=None, help="the package to release (default: this tinyvae)")
    b.add_argument("--force", action="store_true", help="replace OUTDIR if it is not empty")
    g = commands.add_parser("grade", help="grade a student's copy, print the scores, write a JSON report",
                            allow_abbrev=False)
    g.add_argument("submission", type=Path, help="the student's folder, the one that holds tinyvae/")
    g.add_argument("--report", type=Path, default=None, help=f"JSON report path (default: SUBMISSION/{REPORT_NAME})")
    g.add_argument("--only", default=None, help="comma-separated assignments to grade, e.g. A1,A3 (default: all)")
    g.add_argument("--timeout", type=float, default=TIMEOUT, help="seconds for one assignment's worker")
    g.add_argument("--check-timeout", type=float, default=CHECK_TIMEOUT, help="seconds for one check's case")
    g.add_argument("--unsandboxed", action="store_true",
                   help="run student code without the sandbox (every report says so on its first line)")
    g.add_argument("--jobs", type=int, default=None, help="assignments graded at once (default: up to 4)")
    g.add_argument("-v", "--verbose", action="store_true", help="list every check that lost points")
    return parser.parse_args(argv)


def list_assignments() -> None:
    regions = {region.key: region for found in collect_regions(spec.PACKAGE).values() for region in found}
    for a in spec.ASSIGNMENTS:
        public, hidden = a.points("public"), a.points("hidden")
        print(f"{a.id}  {a.title}: {a.max_points()} points ({sum(public.values())} public in {len(public)} tests, "
              f"{sum(hidden.values())} hidden in {len(hidden)} tests), tinyvae/assignments/{a.folder}/")
        for key in a.regions:
            print(f"      tinyvae/{regions[key].path}:{regions[key].start + 1:<5} {regions[key].qualname}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.command == "list":
            list_assignments()
        elif args.command == "build":
            release = build(args.outdir, args.source, args.force)
            print(f"wrote the student release to {release.outdir}: {len(release.stubs)} stubs in "
                  f"{len(spec.ASSIGNMENTS)} assignments, the grader's checks left out")
            for leak in release.leaks:
                print(f"warning: {leak}", file=sys.stderr)
        else:
            if not args.submission.is_dir():
                raise FileNotFoundError(f"{args.submission} is not a folder")
            only = [name.strip() for name in args.only.split(",")] if args.only else None
            report_path = args.report or args.submission / REPORT_NAME
            if not (args.timeout > 0 and args.check_timeout > 0):
                raise ValueError("--timeout and --check-timeout must be positive numbers of seconds")
            if args.jobs is not None and args.jobs < 1:
                raise ValueError(f"--jobs must be at least 1, got {args.jobs}")
            if not report_path.resolve().parent.is_dir():
                raise FileNotFoundError(f"--report {report_path}: the folder {report_path.resolve().parent} "
                                        f"does not exist")
            report = grade(args.submission, only, args.timeout, args.check_timeout, args.jobs, report_path,
                           sandboxed=not args.unsandboxed)
            print(report.table(failures=args.verbose))
            print(f"\nreport: {report_path}")
    except (MarkerError, spec.SpecError, FileExistsError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (SandboxError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
