"""A1, hidden tests (kept by the grader): other shapes, the gradient contract, a whole MLP, ReLU's cache."""

from collections.abc import Callable
from types import SimpleNamespace

import numpy as np
import pytest

from tinyvae.activations import ReLU
from tinyvae.gradcheck import check_layer, check_model, numerical_gradient, rel_error
from tinyvae.layers import Sequential, mlp
from tinyvae.params import Parameters

TOL = 1e-8


@pytest.mark.points(2)
def test_linear_gradients_for_a_batch_of_one_and_uneven_shapes(rng: np.random.Generator, linear: Callable) -> None:
    for n, d_in, d_out in [(1, 3, 6), (9, 6, 2)]:
        errors = check_layer(linear(d_in, d_out), rng.standard_normal((n, d_in)))
        assert max(errors.values()) < TOL, (n, d_in, d_out, errors)


@pytest.mark.points(1)
def test_linear_backward_overwrites_its_gradients(rng: np.random.Generator, linear: Callable) -> None:
    layer = linear(3, 2)
    layer.forward(rng.standard_normal((4, 3)))
    layer.backward(rng.standard_normal((4, 2)))              # a stale gradient left behind
    errors = check_layer(layer, rng.standard_normal((5, 3)))
    assert max(errors.values()) < TOL, errors


@pytest.mark.points(1)
def test_first_layer_skips_the_input_gradient(rng: np.random.Generator, linear: Callable) -> None:
    layer = linear(3, 2, input_grad=False)
    x, dy = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    layer.forward(x)
    assert layer.backward(dy) is None
    assert np.allclose(layer.dW, x.T @ dy) and np.allclose(layer.db, dy.sum(axis=0))


class Probe:
    """L = Σ net(x)·dy shaped like a model, so check_model checks every parameter (dy sits where eps would)."""

    def __init__(self, net: Sequential) -> None:
        self.net, self.params = net, Parameters({"net": net}, dtype="float64", seed=3)

    def loss(self, x: np.ndarray, dy: np.ndarray) -> SimpleNamespace:
        return SimpleNamespace(loss=float((self.net.forward(x) * dy).sum()))

    def loss_and_grads(self, x: np.ndarray, dy: np.ndarray) -> SimpleNamespace:
        value = self.loss(x, dy)
        self.dx = self.net.backward(dy)
        return value


@pytest.mark.points(2)
def test_every_parameter_of_an_mlp_passes_the_gradient_check(rng: np.random.Generator) -> None:
    probe = Probe(mlp([5, 4, 3], activation="relu"))
    x, dy = rng.standard_normal((6, 5)), rng.standard_normal((6, 3))
    errors = check_model(probe, x, dy)
    assert len(errors) == 4 and max(errors.values()) < TOL, errors
    assert rel_error(probe.dx, numerical_gradient(lambda: probe.loss(x, dy).loss, x)) < TOL


@pytest.mark.points(1)
def test_relu_backward_uses_the_latest_forward() -> None:
    relu = ReLU()
    relu.forward(np.array([[1.0, -1.0, 2.0]]))
    relu.forward(np.array([[-1.0, 3.0, 2.0]]))                # a second forward replaces the cache
    assert np.array_equal(relu.backward(np.array([[5.0, 6.0, 7.0]])), [[0.0, 6.0, 7.0]])


@pytest.mark.points(1)
def test_relu_uses_slope_zero_at_the_kink() -> None:
    relu = ReLU()
    assert np.array_equal(relu.forward(np.array([[0.0, -0.0, 1e-300]])), [[0.0, 0.0, 1e-300]])
    assert np.array_equal(relu.backward(np.ones((1, 3))), [[0.0, 0.0, 1.0]])
