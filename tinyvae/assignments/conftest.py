"""pytest setup for the assignment tests: the ``points`` mark, shared fixtures, and the
grader's hooks.

Students: nothing to do here; run ``python -m pytest tinyvae/assignments/a1_layers``.

When the grader runs the tests it copies this file next to its own copies of the tests and
sets two environment variables:

    TINYVAE_GRADE_LOG      append one JSON line per collected item, test report, collection
                           error and the end of the session to this file, as they happen, so
                           the tests that finished still count if the run is killed later
    TINYVAE_TEST_TIMEOUT   seconds one test may run before it fails (SIGALRM; POSIX only);
                           the grader also kills the whole run after its own time limit
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

LOG_ENV, TIMEOUT_ENV = "TINYVAE_GRADE_LOG", "TINYVAE_TEST_TIMEOUT"
# Read once and taken out of the environment, so the code under test does not come across them.
LOG_PATH = os.environ.pop(LOG_ENV, None)
TEST_TIMEOUT = float(os.environ.pop(TIMEOUT_ENV, None) or 0)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "points(n): what the test is worth when it passes")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def linear(rng: np.random.Generator) -> Callable[..., Any]:
    """``linear(d_in, d_out, **kwargs)``: a float64 Linear with random weights and a nonzero bias.

    tinyvae is imported inside the fixtures, not at the top: a submission that does not
    import then fails its tests one by one instead of stopping this file from loading.
    """
    from tinyvae.layers import Linear
    from tinyvae.params import Parameters

    def make(d_in: int, d_out: int, **kwargs: Any) -> Any:
        layer = Linear(d_in, d_out, **kwargs)
        Parameters({"fc": layer}, dtype="float64", seed=0)
        layer.b[...] = rng.standard_normal(d_out)   # nonzero, so a test sees db
        return layer

    return make


@pytest.fixture
def small_vae(rng: np.random.Generator) -> Callable[..., Any]:
    """``small_vae(**kwargs)``: a float64 VAE 12-8-3 (kwargs override), a batch x (5, 12) and noise eps (5, 3).

    The activation is smooth (tanh) unless asked otherwise: a ReLU kink within ±h of a
    pre-activation would spoil a finite difference, whatever the student wrote.
    """
    from tinyvae.vae import VAE

    def make(**kwargs: Any) -> tuple[Any, np.ndarray, np.ndarray]:
        model = VAE(**{"input_dim": 12, "hidden": (8,), "latent_dim": 3, "activation": "tanh", "dtype": "float64",
                       "seed": 2, **kwargs})
        return model, rng.random((5, 12)), rng.standard_normal((5, model.latent_dim))

    return make


class TimeLimit(BaseException):
    """Raised in a test that ran too long. A BaseException, so ``except Exception`` cannot swallow it."""


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    seconds = TEST_TIMEOUT
    if seconds <= 0 or not hasattr(signal, "setitimer"):
        return (yield)

    def on_alarm(signum: int, frame: Any) -> None:
        raise TimeLimit(f"the test ran longer than its time limit of {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return (yield)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _log(event: dict[str, Any]) -> None:
    if LOG_PATH:
        with open(LOG_PATH, "a", encoding="utf-8") as f:
            f.write(json.dumps(event) + "\n")


def _message(report: Any) -> str:
    """One line saying why a report failed: the exception line, else the last line of the report."""
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return crash.message.strip()[:500]
    lines = [line for line in str(report.longrepr).splitlines() if line.strip()]
    errors = [line[1:].strip() for line in lines if line.startswith("E ")]
    return (errors or lines or [""])[-1][:500]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    _log({"event": "collected", "items": [item.nodeid for item in items]})


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed:
        _log({"event": "collect_error", "nodeid": report.nodeid, "message": _message(report)})


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or report.outcome != "passed":
        _log({"event": "report", "nodeid": report.nodeid, "when": report.when, "outcome": report.outcome,
              "message": _message(report) if report.failed else ""})


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    package = getattr(sys.modules.get("tinyvae"), "__file__", None)
    _log({"event": "finished", "exitstatus": int(exitstatus), "package": package})
