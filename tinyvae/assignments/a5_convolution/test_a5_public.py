"""A5, public tests: Conv2d's backward and the transposed convolution (float64, tolerance 1e-8).

Run them from the folder that holds tinyvae/:  python -m pytest tinyvae/assignments/a5_convolution
"""

import numpy as np
import pytest

from tinyvae.nn.base import Layer
from tinyvae.nn.conv import Conv2d, ConvTranspose2d
from tinyvae.nn.gradcheck import check_layer
from tinyvae.nn.params import Parameters

TOL = 1e-8


def bound(layer: Layer, rng: np.random.Generator) -> Layer:
    Parameters({"conv": layer}, dtype="float64", seed=0)
    layer.b[...] = rng.standard_normal(layer.b.shape)           # nonzero, so a test sees db
    return layer


def assert_gradients_check(layer: Layer, x: np.ndarray) -> None:
    errors = check_layer(layer, x)
    assert set(errors) == {"x", "W", "b"}
    assert max(errors.values()) < TOL, errors


@pytest.mark.points(3)
def test_conv2d_backward_passes_the_gradient_check(rng: np.random.Generator) -> None:
    assert_gradients_check(bound(Conv2d(3, 4, 3), rng), rng.standard_normal((2, 3, 6, 5)))


@pytest.mark.points(2)
def test_conv_transpose_is_the_adjoint_of_conv2d(rng: np.random.Generator) -> None:
    """⟨conv(z), x⟩ = ⟨z, conv_transpose(x)⟩ for the same weights (biases zero): the definition of the adjoint."""
    conv, transposed = bound(Conv2d(3, 4, 3), rng), bound(ConvTranspose2d(4, 3, 3), rng)
    transposed.W[...] = conv.W
    conv.b[...], transposed.b[...] = 0.0, 0.0
    z, x = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((2, 4, 4, 3))
    left, right = np.sum(conv.forward(z) * x), np.sum(z * transposed.forward(x))
    assert transposed.forward(x).shape == z.shape
    assert abs(left - right) < TOL * (abs(left) + abs(right))


@pytest.mark.points(2)
def test_conv_transpose_backward_passes_the_gradient_check(rng: np.random.Generator) -> None:
    assert_gradients_check(bound(ConvTranspose2d(3, 2, 3), rng), rng.standard_normal((2, 3, 3, 4)))
