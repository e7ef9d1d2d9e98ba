"""What the command-line tools share: exit statuses and argparse value types.

    0    success
    1    the work failed: unreadable data, a NaN loss
    2    a usage error: a bad flag, a missing GPU, a checkpoint that does not fit
    130  interrupted with Ctrl-C (after saving)
"""

from __future__ import annotations

import argparse

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def nonnegative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be a number ≥ 0, got {text}")
    return value


def class_index(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a class index ≥ 0, got {text}")
    return value


def sigma_value(text: str) -> float | None:
    return None if text == "learned" else positive_float(text)
