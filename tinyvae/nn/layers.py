"""Dense layers with hand-written backprop: ``Layer``, ``Linear``, ``Sequential``, ``mlp``.

The contract every layer keeps (CS231n style):

* ``forward(x) -> y`` caches exactly what ``backward`` needs. One forward is in
  flight at a time: a second forward overwrites the cache.
* ``backward(dy) -> dx`` takes dL/dy, OVERWRITES the layer's parameter gradients
  (never accumulates) and returns dL/dx.

Parameters live in a flat buffer owned by :class:`tinyvae.nn.params.Parameters`; a layer
only declares their shapes, initializes them on the host, and receives views.
Activations live in :mod:`tinyvae.nn.activations`, the base class in :mod:`tinyvae.nn.base`.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from tinyvae.nn.activations import make_activation
from tinyvae.nn.base import Array, Layer

INITS = ("pytorch", "kaiming", "xavier")


class Linear(Layer):
    """Affine map ``y = x W + b``.

    Shapes: x (N, D_in), W (D_in, D_out), b (D_out,), y (N, D_out).

    Backward, given dy = dL/dy (N, D_out)::

        dL/dW = xᵀ dy        (D_in, D_out)
        dL/db = Σ_n dy[n]    (D_out,)
        dL/dx = dy Wᵀ        (N, D_in)

    ``input_grad=False`` skips dL/dx (the first layer of a network never needs it,
    and it is the largest matrix product of the step); backward then returns None.

    Initialization:
        "pytorch": W, b ~ U(±1/sqrt(D_in))          (PyTorch's nn.Linear default; the VAE's default,
                                                     so tinyvae reproduces pytorch/examples)
        "kaiming": W ~ N(0, 2 / D_in), b = 0        (He et al. 2015; for ReLU networks)
        "xavier":  W ~ U(±sqrt(6 / (D_in + D_out))), b = 0  (Glorot & Bengio 2010; for tanh/sigmoid)
    """

    def __init__(self, d_in: int, d_out: int, init: str = "kaiming", input_grad: bool = True) -> None:
        if init not in INITS:
            raise ValueError(f"unknown init {init!r}: choose one of {', '.join(INITS)}")
        self.d_in, self.d_out, self.init, self.input_grad = d_in, d_out, init, input_grad

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"W": (self.d_in, self.d_out), "b": (self.d_out,)}

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        if self.init == "pytorch":
            bound = 1.0 / np.sqrt(self.d_in)
            return {"W": rng.uniform(-bound, bound, size=(self.d_in, self.d_out)),
                    "b": rng.uniform(-bound, bound, size=self.d_out)}
        if self.init == "kaiming":
            W = rng.normal(0.0, np.sqrt(2.0 / self.d_in), size=(self.d_in, self.d_out))
        else:
            bound = np.sqrt(6.0 / (self.d_in + self.d_out))
            W = rng.uniform(-bound, bound, size=(self.d_in, self.d_out))
        return {"W": W, "b": np.zeros(self.d_out)}

    def bind(self, params: dict[str, Array], grads: dict[str, Array]) -> None:
        super().bind(params, grads)
        self.W, self.b = params["W"], params["b"]      # (D_in, D_out), (D_out,)
        self.dW, self.db = grads["W"], grads["b"]

    def forward(self, x: Array) -> Array:
        if x.ndim != 2 or x.shape[1] != self.d_in:
            raise ValueError(f"Linear({self.d_in}→{self.d_out}) expects input of shape (N, {self.d_in}), "
                             f"got {tuple(x.shape)}")
        self.x = x                                     # (N, D_in), kept for backward
        ### BEGIN SOLUTION
        y = x @ self.W                                 # (N, D_out)
        y += self.b
        ### END SOLUTION
        return y

    def backward(self, dy: Array) -> Array:
        x = self.x
        ### BEGIN SOLUTION
        x.T.dot(dy, out=self.dW)                       # dW = xᵀ dy     (D_in, D_out)
        dy.sum(axis=0, out=self.db)                    # db = Σ_n dy[n] (D_out,)
        if not self.input_grad:
            return None
        dx = dy @ self.W.T                             # (N, D_in)
        ### END SOLUTION
        return dx

    def __repr__(self) -> str:
        return f"Linear({self.d_in}, {self.d_out})"


class Sequential(Layer):
    """Layers applied in order; backward runs them in reverse."""

    def __init__(self, *layers: Layer) -> None:
        self.layers = list(layers)

    def named_layers(self, prefix: str = "") -> Iterator[tuple[str, Layer]]:
        for i, layer in enumerate(self.layers):
            yield from layer.named_layers(f"{prefix}.{i}" if prefix else str(i))

    def forward(self, x: Array) -> Array:
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dy: Array) -> Array:
        for layer in reversed(self.layers):
            dy = layer.backward(dy)
        return dy

    def __repr__(self) -> str:
        return "Sequential(" + ", ".join(map(repr, self.layers)) + ")"


def mlp(sizes: list[int], activation: str = "relu", init: str | None = None) -> Sequential:
    """A multilayer perceptron: Linear, activation, Linear, ..., Linear (no final activation).

    ``mlp([784, 400, 40])`` is ``Linear(784, 400), ReLU(), Linear(400, 40)``.
    ``init`` defaults to "kaiming" for ReLU-like activations and "xavier" otherwise.
    """
    if len(sizes) < 2:
        raise ValueError(f"mlp needs at least an input and an output size, got {sizes}")
    if init is None:
        init = "kaiming" if activation in ("relu", "leaky_relu") else "xavier"
    layers: list[Layer] = []
    for i, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=False)):
        layers.append(Linear(d_in, d_out, init=init))
        if i < len(sizes) - 2:
            layers.append(make_activation(activation))
    return Sequential(*layers)
