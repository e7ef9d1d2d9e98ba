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
