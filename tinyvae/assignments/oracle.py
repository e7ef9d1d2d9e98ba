"""Oracle checks: what the grader asks the worker, and how it judges the answers.

A check is worth points and holds one or more cases. A case names a probe (probes.py), its
options, and a function that makes its input arrays from a seeded generator. The grader

1. makes every case's inputs (the seed comes from the assignment and the check's name);
2. computes the expected outputs in its own process: the same probe run on the
   instructor's tinyvae, or the case's own ``expect`` (Algorithm 1 written out, a Monte
   Carlo estimate);
3. sends the worker the inputs only, and judges what comes back as data: an .npz read with
   ``allow_pickle=False``, every expected array present, a plain ndarray of the expected
   dtype and shape, within the tolerance of the expected value.

A check earns its points when every case passes. The reason given for a failed case is
built here, from the grader's own records: the array's name, the expected shape or dtype,
the size of the error, "timed out", "crashed: <a built-in exception's name>". Nothing the
worker wrote is quoted.
"""

from __future__ import annotations

import builtins
import hashlib
import importlib
import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from types import ModuleType
from typing import Any

import numpy as np

from tinyvae.assignments import probes

Arrays = dict[str, np.ndarray]
Inputs = Callable[[np.random.Generator], Arrays]     # a case's inputs from a seeded generator
NPZ_LIMIT = 64 << 20          # bytes an answer may hold once unpacked
FRAME = re.compile(rb"TINYVAE-CASE ([A-Za-z0-9_-]{1,32}) (npz|err) ([0-9]{1,9})\n")
KNOWN_ERRORS = {name for name in dir(builtins)
                if isinstance(getattr(builtins, name), type) and issubclass(getattr(builtins, name), BaseException)}


@dataclass(frozen=True)
class Case:
    """One call: ``probe`` with ``options`` on ``inputs(rng)``; compared with ``tolerance``.

    ``tolerance``: the largest allowed ``max|got − expected| / max(1e-8, max(|got| + |expected|))``
    (the relative error of tinyvae.nn.gradcheck) when ``absolute`` is False, else the largest
    allowed ``max|got − expected|``. 0 means equal.
    ``expect``: the expected outputs from the inputs, when they are not the reference's.
    """

    probe: str
    inputs: Inputs
    options: dict[str, Any] = field(default_factory=dict)
    tolerance: float = 1e-8
    absolute: bool = False
    expect: Callable[[Arrays], Arrays] | None = None


@dataclass(frozen=True)
class Check:
    name: str
    points: int
    kind: str                 # "public" (the same name and points as a test students have) or "hidden"
    cases: tuple[Case, ...]


def reference_modules(name: str) -> ModuleType:
    """``tv`` for the instructor's tinyvae (this process's)."""
    return importlib.import_module(f"tinyvae.{name}")


def seed(assignment_id: str, check: str, case: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{assignment_id}/{check}/{case}".encode()).digest()[:8], "little")


@dataclass(frozen=True)
class Planned:
    """A case ready to run: its key in the plan ("c3-1": check 3, case 1), its inputs and the expected outputs."""

    key: str
    check: Check
    case: Case
    inputs: Arrays
    expected: Arrays


@cache
def plan(assignment_id: str) -> tuple[Planned, ...]:
    """Every case of the assignment's checks, its inputs and expected outputs (cached: the same for everyone)."""
    from tinyvae.assignments import spec

    planned = []
    for i, check in enumerate(spec.get(assignment_id).checks()):
        for j, case in enumerate(check.cases):
            inputs = case.inputs(np.random.default_rng(seed(assignment_id, check.name, j)))
            given = {name: value.copy() for name, value in inputs.items()}
            expected = case.expect(given) if case.expect else probes.PROBES[case.probe](
                reference_modules, given, **case.options)
            planned.append(Planned(f"c{i}-{j + 1}", check, case, inputs, expected))
    return tuple(planned)


def write_inputs(planned: tuple[Planned, ...], folder: Any) -> None:
    """folder/plan.json (keys, probes, options) and folder/inputs.npz ("<key>.<name>" arrays): inputs only."""
    import json

    folder.mkdir(parents=True)
    steps = [{"key": p.key, "probe": p.case.probe, "options": p.case.options} for p in planned]
    (folder / "plan.json").write_text(json.dumps(steps), encoding="utf-8")
    np.savez(folder / "inputs.npz", **{f"{p.key}.{name}": value for p in planned for name, value in p.inputs.items()})


def read_frames(output: bytes) -> dict[str, tuple[str, bytes]]:
    """{case key: (kind, payload)} from the worker's channel; the first frame of a key counts, noise is skipped."""
    frames: dict[str, tuple[str, bytes]] = {}
    at = 0
    while (found := FRAME.search(output, at)) is not None:
        key, kind, size = found.group(1).decode(), found.group(2).decode(), int(found.group(3))
        payload = output[found.end():found.end() + size]
        at = found.end() + size if len(payload) == size else found.end()
        if len(payload) == size:
            frames.setdefault(key, (kind, payload))
    return frames


def load_answer(payload: bytes) -> Arrays | str:
    """The arrays of an .npz answer, or why it is refused (one short phrase of the grader's own)."""
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            if sum(info.file_size for info in archive.infolist()) > NPZ_LIMIT:
                return "refused: the answer is larger than the grader accepts"
        with np.load(io.BytesIO(payload), allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
    except ValueError as err:
        return "refused: it holds Python objects (pickles are not loaded)" if "pickle" in str(err) else \
            "refused: not a readable .npz"
    except Exception:                          # any malformed archive
        return "refused: not a readable .npz"
    return arrays


def judge(planned: Planned, answer: tuple[str, bytes] | None, why_missing: str) -> str:
    """"" when the case passes, else the reason it does not."""
    if answer is None:
        return why_missing
    kind, payload = answer
    if kind == "err":
        name = payload.decode("ascii", errors="replace")
        if name == "TimeLimit":
            return "timed out"
        return f"crashed: {name}" if name in KNOWN_ERRORS else "crashed: an exception of the submission's own"
    arrays = load_answer(payload)
    if isinstance(arrays, str):
        return arrays
    for name, expected in planned.expected.items():
        if name not in arrays:
            return f"{name}: missing from the answer"
        reason = compare(name, arrays[name], np.asarray(expected), planned.case)
        if reason:
            return reason
    return ""


def compare(name: str, got: np.ndarray, expected: np.ndarray, case: Case) -> str:
    """"" when ``got`` matches ``expected`` within the case's tolerance, else why not."""
    if type(got) is not np.ndarray or got.dtype.kind not in "biufc":
        return f"{name}: not a numeric array"
    if got.dtype != expected.dtype:
        return f"{name}: dtype {expected.dtype} expected, got {got.dtype}"
    if got.shape != expected.shape:
        shown = str(got.shape) if got.ndim <= 4 and all(n <= 4096 for n in got.shape) else "another shape"
        return f"{name}: shape {expected.shape} expected, got {shown}"
    if expected.dtype == bool:
        return "" if np.array_equal(got, expected) else f"{name}: {bool(got.reshape(-1)[0])} is wrong"
    if not np.all(np.isfinite(got)) and np.all(np.isfinite(expected)):
        return f"{name}: holds inf or nan"
    got64, expected64 = got.astype(np.float64), expected.astype(np.float64)
    error = float(np.max(np.abs(got64 - expected64))) if got.size else 0.0
    if not case.absolute and got.size:
        error /= max(1e-8, float(np.max(np.abs(got64) + np.abs(expected64))))
    if error <= case.tolerance:
        return ""
    what = "error" if case.absolute else "relative error"
    return f"{name}: {what} {error:.1e}, more than {case.tolerance:g}"
