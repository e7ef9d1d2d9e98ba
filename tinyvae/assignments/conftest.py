"""pytest setup for the public assignment tests: the ``points`` mark and shared fixtures.

Students: nothing to do here; run ``python -m pytest tinyvae/assignments/a1_layers``.

The grader does not run these tests: it runs its own checks (checks.py in each assignment
folder, kept by the instructor) on the submission in a sandbox. Each public test has a
check of the same name and points there, so passing it locally is a good sign.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest


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
    from tinyvae.nn.layers import Linear
    from tinyvae.nn.params import Parameters

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
    from tinyvae.models.vae import VAE

    def make(**kwargs: Any) -> tuple[Any, np.ndarray, np.ndarray]:
        model = VAE(**{"input_dim": 12, "hidden": (8,), "latent_dim": 3, "activation": "tanh", "dtype": "float64",
                       "seed": 2, **kwargs})
        return model, rng.random((5, 12)), rng.standard_normal((5, model.latent_dim))

    return make
