"""The grading worker: the only process that runs student code. The grader starts it as

    python -I -S -B worker.py --site SITE --submission SUB --inputs IN --limits JSON [--uid N]

inside the sandbox (sandbox.py), where SITE holds NumPy only, SUB the copy of the
submission (SUB/tinyvae), IN the plan and the inputs. The results go back on standard
output, one frame per case (``frame``); the student code's own standard output and error
go to /dev/null.

1. Set the resource limits (CPU seconds, address space, file size, processes, open files,
   no core files) and, when started as root, become an unprivileged user: before any
   student code runs, so it cannot raise them again.
2. Import NumPy from SITE and the probes (probes.py, next to this file).
3. Make ``tinyvae`` the submission's package without running its ``__init__.py`` (which
   imports plotting and other packages the sandbox does not hold); SUB itself is never put
   on sys.path, so nothing at the submission's top level (a ``numpy/`` folder, a
   ``sitecustomize.py``) can be imported.
4. For each case of the plan (IN/plan.json, arrays in IN/inputs.npz): run its probe with a
   time limit, and send its outputs as an .npz frame, or the exception's class name as an
   "err" frame ("TimeLimit" for a case that ran out of time). Never the message.

Everything this process writes is untrusted: the grader checks it as data (oracle.py).
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import resource
import signal
import sys
import types
from pathlib import Path
from typing import Any

LIMITS = {"cpu": resource.RLIMIT_CPU, "as": resource.RLIMIT_AS, "fsize": resource.RLIMIT_FSIZE,
          "nproc": resource.RLIMIT_NPROC, "nofile": resource.RLIMIT_NOFILE, "core": resource.RLIMIT_CORE}


class TimeLimit(BaseException):
    """Raised in a case that ran too long (a BaseException, so ``except Exception`` does not swallow it)."""


def on_alarm(signum: int, frame: Any) -> None:
    raise TimeLimit


def confine(limits: dict[str, int], uid: int | None) -> None:
    """Step 1: lower the limits (soft and hard), then drop root's identity when asked."""
    for name, value in limits.items():
        resource.setrlimit(LIMITS[name], (value, value))
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)


def submission_package(submission: Path) -> None:
    """Step 3: ``import tinyvae.x`` finds SUB/tinyvae/x.py; SUB/tinyvae/__init__.py is not run."""
    package = types.ModuleType("tinyvae")
    package.__path__ = [str(submission / "tinyvae")]
    package.__file__ = str(submission / "tinyvae" / "__init__.py")
    package.__version__ = "submission"
    sys.modules["tinyvae"] = package


MAGIC = b"TINYVAE-CASE"


def frame(key: str, kind: str, payload: bytes) -> bytes:
    """One result on the channel: b"TINYVAE-CASE <key> <npz|err> <size>\\n" then ``size`` bytes."""
    return MAGIC + f" {key} {kind} {len(payload)}\n".encode("ascii") + payload


def main() -> None:
    parser = argparse.ArgumentParser()
    for flag in ("--site", "--submission", "--inputs", "--limits"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--uid", type=int, default=None)
    parser.add_argument("--case-timeout", type=float, default=20.0)
    args = parser.parse_args()
    confine(json.loads(args.limits), args.uid)
    sys.path.insert(0, args.site)
    import numpy as np

    spec = importlib.util.spec_from_file_location("probes", Path(__file__).with_name("probes.py"))
    probes = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probes)
    inputs = Path(args.inputs)
    plan = json.loads((inputs / "plan.json").read_text(encoding="utf-8"))
    with np.load(inputs / "inputs.npz", allow_pickle=False) as stored:
        arrays = {name: stored[name] for name in stored.files}
    channel = os.fdopen(os.dup(1), "wb")
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1)
    os.dup2(quiet, 2)
    submission_package(Path(args.submission))
    os.chdir(os.environ.get("TMPDIR", "/tmp"))
    signal.signal(signal.SIGALRM, on_alarm)

    def tv(name: str) -> types.ModuleType:
        return importlib.import_module(f"tinyvae.{name}")

    for case in plan:
        key = case["key"]
        mine = {name.split(".", 1)[1]: value for name, value in arrays.items() if name.split(".", 1)[0] == key}
        try:
            signal.setitimer(signal.ITIMER_REAL, args.case_timeout)
            try:
                result = probes.PROBES[case["probe"]](tv, mine, **case["options"])
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            buffer = io.BytesIO()
            np.savez(buffer, **result)
            channel.write(frame(key, "npz", buffer.getvalue()))
        except BaseException as err:  # noqa: B036 — any failure of student code is a result to report
            channel.write(frame(key, "err", type(err).__name__[:64].encode("ascii", errors="replace")))
        channel.flush()
    os._exit(0)                       # no atexit hook or finalizer of the submission runs after the work


if __name__ == "__main__":
    main()
