"""Elementwise activations as layers: ReLU, LeakyReLU, Tanh, Sigmoid, Softplus.

Each one caches what its derivative needs and nothing more::

    layer       forward y = f(x)                      backward dL/dx = dL/dy · f'(x)
    ReLU        max(x, 0)                             [x > 0]
    LeakyReLU   x if x > 0 else αx                    1 if x > 0 else α
    Tanh        tanh(x)                               1 − y²
    Sigmoid     σ(x) = 1 / (1 + e^(−x))               y (1 − y)
    Softplus    log(1 + e^x)                          σ(x)

At the kink x = 0, ReLU and LeakyReLU use the left-hand slope (0, resp. α); any value
in between would be a valid subgradient.
"""

from __future__ import annotations

from tinyvae.backend import array_module
from tinyvae.nn.base import Array, Layer


def log_sigmoid(x: Array) -> Array:
    """log σ(x) = min(x, 0) − log(1 + e^(−|x|)): never overflows, exact for every x."""
    xp = array_module(x)
    return xp.minimum(x, 0) - xp.log1p(xp.exp(-xp.abs(x)))


def sigmoid(x: Array) -> Array:
    """σ(x) = 1 / (1 + e^(−x)) = exp(log σ(x)), computed without overflow for any x.

    Branch-free on purpose: the textbook stable form picks 1/(1 + e^(−x)) or e^x/(1 + e^x)
    by the sign of x, and np.where over a random mask is much slower than this arithmetic
    (measured in docs/benchmarks.md, "No np.where on the hot path").
    """
    return array_module(x).exp(log_sigmoid(x))


def softplus(x: Array) -> Array:
    """log(1 + e^x) = max(x, 0) + log(1 + e^(−|x|)), which never overflows."""
    xp = array_module(x)
    return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))


class ReLU(Layer):
    """y = max(x, 0); dL/dx = dL/dy · [x > 0]."""

    def forward(self, x: Array) -> Array:
        ### BEGIN SOLUTION
        self.mask = x > 0                              # (N, D) bool, kept for backward
        y = x * self.mask                              # max(x, 0): x where positive, else 0
        ### END SOLUTION
        return y

    def backward(self, dy: Array) -> Array:
        ### BEGIN SOLUTION
        dx = dy * self.mask
        ### END SOLUTION
        return dx


class LeakyReLU(Layer):
    """y = x for x > 0, αx otherwise; dL/dx = dL/dy · (1 or α)."""

    def __init__(self, alpha: float = 0.01) -> None:
        self.alpha = alpha

    def forward(self, x: Array) -> Array:
        self.slope = (x > 0).astype(x.dtype)           # (N, D): 1 where x > 0 ...
        self.slope *= 1.0 - self.alpha
        self.slope += self.alpha                       # ... and α elsewhere
        return x * self.slope

    def backward(self, dy: Array) -> Array:
        return dy * self.slope


class Tanh(Layer):
    """y = tanh(x); dL/dx = dL/dy · (1 − y²)."""

    def forward(self, x: Array) -> Array:
        self.y = array_module(x).tanh(x)
        return self.y

    def backward(self, dy: Array) -> Array:
        return dy * (1.0 - self.y * self.y)


class Sigmoid(Layer):
    """y = σ(x); dL/dx = dL/dy · y (1 − y)."""

    def forward(self, x: Array) -> Array:
        self.y = sigmoid(x)
        return self.y

    def backward(self, dy: Array) -> Array:
        return dy * self.y * (1.0 - self.y)


class Softplus(Layer):
    """y = log(1 + e^x); dL/dx = dL/dy · σ(x)."""

    def forward(self, x: Array) -> Array:
        self.x = x
        return softplus(x)

    def backward(self, dy: Array) -> Array:
        return dy * sigmoid(self.x)


ACTIVATIONS = {
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "tanh": Tanh,
    "sigmoid": Sigmoid,
    "softplus": Softplus,
}


def make_activation(name: str) -> Layer:
    """The activation layer called ``name`` (one of ACTIVATIONS)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}: choose one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()
