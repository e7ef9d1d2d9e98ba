"""Gradient tests for every layer: input and parameter gradients, float64, tolerance 1e-8."""

import numpy as np
import pytest
from conftest import away_from_zero

from tinyvae.nn.activations import ACTIVATIONS, LeakyReLU, ReLU, Sigmoid, Softplus, Tanh, make_activation, sigmoid
from tinyvae.nn.gradcheck import check_layer
from tinyvae.nn.layers import Linear, Sequential, mlp
from tinyvae.nn.params import Parameters

LAYER_TOL = 1e-8


def bound(layer, backend, seed=0):
    Parameters({"layer": layer}, backend, "float64", seed=seed)
    return layer


@pytest.mark.parametrize("init", ["kaiming", "xavier"])
def test_linear_gradients(backend, rng, init):
    layer = bound(Linear(7, 5, init=init), backend)
    layer.b[...] = backend.asarray(rng.standard_normal(5))  # nonzero bias: the test must see db
    x = backend.asarray(rng.standard_normal((4, 7)))
    errors = check_layer(layer, x)
    assert set(errors) == {"x", "W", "b"}
    assert max(errors.values()) < LAYER_TOL, errors


@pytest.mark.parametrize("cls", [ReLU, LeakyReLU, Tanh, Sigmoid, Softplus])
def test_activation_gradients(backend, rng, cls):
    x = backend.asarray(away_from_zero(rng.standard_normal((4, 6)) * 3))
    errors = check_layer(cls(), x)
    assert errors["x"] < LAYER_TOL, errors


def test_activation_values(rng):
    x = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    assert np.allclose(ReLU().forward(x), [0, 0, 0, 0.5, 2])
    assert np.allclose(LeakyReLU(0.1).forward(x), [-0.2, -0.05, 0, 0.5, 2])
    assert np.allclose(Tanh().forward(x), np.tanh(x))
    assert np.allclose(Sigmoid().forward(x), 1 / (1 + np.exp(-x)))
    assert np.allclose(Softplus().forward(x), np.log1p(np.exp(x)))


def test_sigmoid_and_softplus_do_not_overflow():
    x = np.array([-1000.0, -40.0, 0.0, 40.0, 1000.0], dtype=np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        s = sigmoid(x)
        sp = Softplus().forward(x)
    assert s.tolist() == pytest.approx([0.0, 4.248e-18, 0.5, 1.0, 1.0], rel=1e-3, abs=1e-30)
    assert sp.tolist() == pytest.approx([0.0, 4.248e-18, np.log(2), 40.0, 1000.0], rel=1e-3, abs=1e-30)


def test_mlp_gradients_through_every_layer(backend, rng):
    net = mlp([6, 5, 4, 3], activation="tanh")
    Parameters({"net": net}, backend, "float64", seed=1)
    x = backend.asarray(rng.standard_normal((5, 6)))
    # check_layer on a Sequential checks only the input; check each parameter separately:
    dy = backend.asarray(rng.standard_normal((5, 3)))
    from tinyvae.nn.gradcheck import numerical_gradient, rel_error

    def loss():
        return float((net.forward(x) * dy).sum())

    net.forward(x)
    dx = net.backward(dy)
    grads = {f"{i}.{k}": g.copy() for i, layer in enumerate(net.layers)
             for k, g in getattr(layer, "grads", {}).items()}
    assert rel_error(dx, numerical_gradient(loss, x)) < LAYER_TOL
    for i, layer in enumerate(net.layers):
        for k, p in getattr(layer, "params", {}).items():
            assert rel_error(grads[f"{i}.{k}"], numerical_gradient(loss, p)) < LAYER_TOL, (i, k)


def test_backward_overwrites_gradients_instead_of_accumulating(rng):
    layer = bound(Linear(3, 2), None)
    x = rng.standard_normal((4, 3))
    dy = rng.standard_normal((4, 2))
    layer.forward(x)
    layer.backward(dy)
    first = layer.dW.copy()
    layer.backward(dy)
    assert np.array_equal(layer.dW, first)


def test_second_forward_replaces_the_cache(rng):
    layer = bound(Linear(3, 2), None)
    x1, x2 = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    dy = rng.standard_normal((4, 2))
    layer.forward(x1)
    layer.forward(x2)
    layer.backward(dy)
    assert np.allclose(layer.dW, x2.T @ dy)


def test_first_layer_can_skip_input_gradient(rng):
    layer = bound(Linear(3, 2, input_grad=False), None)
    layer.forward(rng.standard_normal((4, 3)))
    assert layer.backward(rng.standard_normal((4, 2))) is None
    assert np.abs(layer.dW).sum() > 0


def test_linear_rejects_wrong_shapes(rng):
    layer = bound(Linear(3, 2), None)
    with pytest.raises(ValueError, match=r"expects input of shape \(N, 3\), got \(4, 5\)"):
        layer.forward(rng.standard_normal((4, 5)))
    with pytest.raises(ValueError, match=r"got \(3,\)"):
        layer.forward(rng.standard_normal(3))


def test_mlp_structure_and_unknown_activation():
    net = mlp([4, 3, 2], activation="softplus")
    assert [type(layer).__name__ for layer in net.layers] == ["Linear", "Softplus", "Linear"]
    assert isinstance(net, Sequential)
    assert set(ACTIVATIONS) == {"relu", "leaky_relu", "tanh", "sigmoid", "softplus"}
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        make_activation("swish")
    with pytest.raises(ValueError, match="at least"):
        mlp([4])


def test_the_layer_base_class_states_the_contract():
    from tinyvae.nn.base import Layer

    class Double(Layer):                                   # a parameter-free layer: forward and backward only
        def forward(self, x):
            return 2 * x

        def backward(self, dy):
            return 2 * dy

    bare = Layer()
    with pytest.raises(NotImplementedError):
        bare.forward(np.zeros((1, 2)))
    with pytest.raises(NotImplementedError):
        bare.backward(np.zeros((1, 2)))
    assert bare.param_shapes() == {} and repr(bare) == "Layer()"
    net = Sequential(Double(), Double())
    assert np.array_equal(net.forward(np.ones((1, 2))), 4 * np.ones((1, 2)))
    assert check_layer(Double(), np.ones((2, 3)))["x"] < LAYER_TOL
