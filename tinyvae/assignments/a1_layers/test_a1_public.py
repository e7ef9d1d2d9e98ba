"""A1, public tests: Linear and ReLU, forward values and gradient checks (float64, tolerance 1e-8).

Run them from the folder that holds tinyvae/:  python -m pytest tinyvae/assignments/a1_layers
"""

from collections.abc import Callable

import numpy as np
import pytest

from tinyvae.nn.activations import ReLU
from tinyvae.nn.gradcheck import check_layer
from tinyvae.nn.layers import Linear
from tinyvae.nn.params import Parameters

TOL = 1e-8


@pytest.mark.points(2)
def test_linear_forward_computes_xW_plus_b() -> None:
    layer = Linear(2, 3)
    Parameters({"fc": layer}, dtype="float64")
    layer.W[...] = [[1.0, 0.0, -1.0], [2.0, 1.0, 0.0]]
    layer.b[...] = [0.5, -1.0, 2.0]
    y = layer.forward(np.array([[1.0, 2.0], [0.0, -1.0]]))
    assert y.shape == (2, 3)
    assert np.allclose(y, [[5.5, 1.0, 1.0], [-1.5, -2.0, 2.0]])


@pytest.mark.points(3)
def test_linear_backward_passes_the_gradient_check(rng: np.random.Generator, linear: Callable) -> None:
    layer = linear(7, 5)
    errors = check_layer(layer, rng.standard_normal((4, 7)))
    assert set(errors) == {"x", "W", "b"}
    assert max(errors.values()) < TOL, errors


@pytest.mark.points(2)
def test_relu_forward_values_and_gradient_check(rng: np.random.Generator) -> None:
    assert np.allclose(ReLU().forward(np.array([[-2.0, -0.5, 0.5, 2.0]])), [[0.0, 0.0, 0.5, 2.0]])
    x = rng.standard_normal((4, 6))
    x += np.sign(x) * 0.05                    # keep ±h away from the kink at 0
    assert check_layer(ReLU(), x)["x"] < TOL
