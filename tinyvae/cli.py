"""What the command-line tools share: exit statuses, argparse value types and output checks.

    0    success
    1    the work failed: unreadable data, a NaN loss, a folder that cannot be written
    2    a usage error: a bad flag, a missing GPU, a checkpoint that does not fit
    130  interrupted with Ctrl-C (after saving)

Every value type refuses NaN and infinity and says the range it accepts; argparse puts the
flag's name in front (``argument --beta: must be a finite number ≥ 0, got -1``).
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _number(text: str, kind: type, what: str) -> float:
    """``text`` as an int or a finite float, or an ArgumentTypeError saying ``what`` is expected."""
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
    return value


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``error: argument --beta: ... (see --help)``, status 2, no usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"error: {message} (see {self.prog} --help)\n")


def parser(prog: str, description: str, **kwargs: object) -> Parser:
    """The ArgumentParser of a tinyvae command: one-line errors, and no abbreviated flags
    (``--epoch`` is an unknown flag, not ``--epochs``)."""
    return Parser(prog=prog, description=description, allow_abbrev=False, **kwargs)


def _at_least(text: str, kind: type, minimum: float, what: str) -> float:
    value = _number(text, kind, what)
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
    return value


def positive_int(text: str) -> int:
    return _at_least(text, int, 1, "a whole number ≥ 1")


def nonnegative_int(text: str) -> int:
    return _at_least(text, int, 0, "a whole number ≥ 0")


seed_value = nonnegative_int          # a seed is any whole number ≥ 0


def class_index(text: str) -> int:
    return _at_least(text, int, 0, "a class index ≥ 0")


def nonnegative_float(text: str) -> float:
    return _at_least(text, float, 0.0, "a finite number ≥ 0")


def positive_float(text: str) -> float:
    value = _number(text, float, "a finite number > 0")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def sigma_value(text: str) -> float | None:
    return None if text == "learned" else positive_float(text)


def unwritable(folder: str | os.PathLike) -> str | None:
    """Why files cannot be written in ``folder``, in a few words; None if they can.

    Creates nothing that stays: a temporary file is made and removed in ``folder``, or, if the
    folder does not exist yet, in its nearest existing parent (where it would be created).
    """
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    try:
        fd, probe = tempfile.mkstemp(prefix=".tinyvae-probe.", dir=existing)
        os.close(fd)
        os.remove(probe)
    except OSError as err:
        return f"cannot write in {existing} ({err.strerror or err})"
    return None
