"""A4, public tests: Adam's first step and a small optimization problem.

Run them from the folder that holds tinyvae/:  python -m pytest tinyvae/assignments/a4_adam_training

``Adam(...)`` runs your ``_update``: a compiled twin runs only where one is handed to it
(``fused_update=``), as the trainer does in the full tinyvae.
"""

import numpy as np
import pytest

from tinyvae.nn.layers import Linear
from tinyvae.nn.params import Parameters
from tinyvae.training.optim import Adam


def flat_params() -> Parameters:
    return Parameters({"fc": Linear(4, 3)}, dtype="float64", seed=0)          # 15 values


@pytest.mark.points(2)
def test_first_step_moves_every_parameter_by_about_lr(rng: np.random.Generator) -> None:
    """With bias correction m̂ = g and v̂ = g² after one step, so θ moves by −lr·g/(|g| + ε) ≈ −lr·sign(g)."""
    params = flat_params()
    before = params.data.copy()
    params.grad[...] = rng.standard_normal(15) * 10.0 ** rng.integers(-3, 3, 15)   # very different scales
    Adam(params, lr=0.01).step()
    assert np.allclose(params.data - before, -0.01 * np.sign(params.grad), rtol=1e-4, atol=0)


@pytest.mark.points(2)
def test_adam_minimizes_a_badly_scaled_quadratic() -> None:
    """f(θ) = ½ Σ_i c_i (θ_i − t_i)² with curvatures c_i from 1e-3 to 1e3: Adam's steps ignore the scale."""
    params = flat_params()
    target, curvature = np.linspace(-1.0, 1.0, params.size), np.logspace(-3, 3, params.size)
    adam = Adam(params, lr=0.05)
    for _ in range(600):
        np.multiply(curvature, params.data - target, out=params.grad)
        adam.step()
    assert np.max(np.abs(params.data - target)) < 1e-2
