"""The conditional VAE (Sohn, Lee & Yan 2015): a VAE whose encoder and decoder also see the label.

    [x | onehot(y)] ──encoder──▶ (mu, logvar) ──▶ z ──▶ [z | onehot(y)] ──decoder──▶ p(x | z, y)
      (N, D + C)                  (N, J) (N, J)  (N, J)    (N, J + C)

The objective is the VAE's with every distribution conditioned on y, and the prior kept N(0, I)::

    loss = 1/N Σ_n [ −log p(x_n | z_n, y_n) + β · KL( q(z | x_n, y_n) ‖ N(0, I) ) ]

Because the decoder is told the class, z is free to encode everything else (slant, stroke
width): ``sample(n, labels=k)`` draws z ~ N(0, I) and decodes it as class k.

Appending the one-hot labels is a layer without parameters, :class:`AppendLabels`, at the
front of both networks. Its backward returns the gradient of the data columns and drops
that of the label columns (labels are inputs, not parameters), so the VAE's forward and
backward run unchanged: dL/dz is the first J columns of dL/d[z | onehot(y)].
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinyvae.backend import Backend, array_module, to_host
from tinyvae.models.likelihood import check_number
from tinyvae.models.vae import VAE
from tinyvae.nn.base import Array, Layer
from tinyvae.nn.layers import Sequential, mlp


def one_hot(labels: Array, n_classes: int, dtype: Any) -> Array:
    """Integer labels (N,) as one-hot rows (N, C) of ``dtype``, on the labels' device."""
    xp = array_module(labels)
    return (labels[:, None] == xp.arange(n_classes)[None, :]).astype(dtype)


class AppendLabels(Layer):
    """y = [x | onehot]: appends the one-hot labels set in ``self.onehot`` (N, C) to x (N, D).

    Backward: dL/dx = dy[:, :D], the data columns; the label columns' gradient goes nowhere.
    dy may be None (the first Linear of an encoder computes no input gradient).
    """

    def __init__(self) -> None:
        self.onehot: Array | None = None

    def forward(self, x: Array) -> Array:
        if self.onehot is None or self.onehot.shape[0] != x.shape[0]:
            raise ValueError(f"AppendLabels needs one label per row: {x.shape[0]} rows, labels "
                             f"{None if self.onehot is None else self.onehot.shape[0]}")
        self.d = x.shape[1]
        return array_module(x).concatenate([x, self.onehot], axis=1)          # (N, D + C)

    def backward(self, dy: Array) -> Array:
        return None if dy is None else dy[:, :self.d]


class ConditionalVAE(VAE):
    """A VAE conditioned on a class label: the VAE's arguments, plus ``n_classes`` (C).

    Every method that runs a network takes ``labels``: integers (N,) in 0..C−1, or one int
    for the whole batch. ``sample(n, labels=None)`` cycles through the classes 0, 1, ..., C−1.
    """

    conditional = True

    def __init__(self, input_dim: int = 784, hidden: tuple[int, ...] | list[int] = (400,), latent_dim: int = 20,
                 activation: str = "relu", likelihood: str = "bernoulli", sigma: float | None = 1.0,
                 beta: float = 1.0, dtype: str = "float32", backend: Backend | str = "cpu", seed: int = 1,
                 init: str = "pytorch", free_bits: float = 0.0, n_classes: int = 10, arch: str = "dense",
                 image_shape: tuple[int, int, int] | list[int] | None = None,
                 channels: tuple[int, ...] | list[int] = (32, 64)) -> None:
        self.n_classes = check_number("n_classes", n_classes, minimum=2, integer=True)
        self._appenders: list[AppendLabels] = []
        super().__init__(input_dim, hidden, latent_dim, activation, likelihood, sigma, beta, dtype, backend, seed,
                         init, free_bits, arch, image_shape, channels)

    def _network(self, sizes: list[int]) -> Sequential:
        """[input | onehot(y)] followed by an MLP whose first layer is C inputs wider. With arch "conv"
        the encoder's labels join the features after the convolutions, the decoder's join z."""
        append = AppendLabels()
        self._appenders.append(append)
        net = mlp([sizes[0] + self.n_classes, *sizes[1:]], self.activation, self.init)
        return Sequential(append, *net.layers)

    def _take_labels(self, labels: Any, n: int, check: bool = True) -> None:
        """One-hot the labels of the next n rows and hand them to both AppendLabels layers."""
        if labels is None:
            raise ValueError(f"the ConditionalVAE needs labels: one integer in 0..{self.n_classes - 1} per example")
        labels = self.xp.asarray(labels)
        if labels.ndim == 0:
            labels = self.xp.full(n, int(labels), dtype=np.int64)
        if tuple(labels.shape) != (n,) or labels.dtype.kind not in "iu":
            raise ValueError(f"expected {n} integer labels of shape ({n},), got {labels.dtype} of shape "
                             f"{tuple(labels.shape)}")
        if check:
            host = to_host(labels)
            if host.min() < 0 or host.max() >= self.n_classes:
                raise ValueError(f"labels must lie in 0..{self.n_classes - 1}, got {host.min()}..{host.max()}")
        onehot = one_hot(labels, self.n_classes, self.dtype)     # (n, C)
        for append in self._appenders:
            append.onehot = onehot

    def sample(self, n: int, rng: Any = None, labels: Any = None) -> Array:
        """n images decoded from z ~ N(0, I) as the classes ``labels`` (default 0, 1, ..., C−1, 0, ...): (n, D)."""
        if labels is None:
            labels = self.xp.arange(n) % self.n_classes
        return super().sample(n, rng, labels)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "n_classes": self.n_classes}


def class_samples(model: ConditionalVAE, per_class: int, rng: Any = None) -> tuple[Array, Array]:
    """``per_class`` samples of every class, class by class: images (C·per_class, D) and labels (C·per_class,)."""
    labels = model.xp.repeat(model.xp.arange(model.n_classes), per_class)
    return model.sample(labels.shape[0], rng, labels), labels


def label_accuracy(model: ConditionalVAE, classifier: Any, per_class: int = 100, rng: Any = None) -> tuple[float,
                                                                                                          np.ndarray]:
    """How often a classifier names the class a sample was drawn for: overall and per class (C,).

    ``classifier`` is any object with ``predict(x) -> labels`` (tinyvae.models.classifier.Classifier
    trained on the real images). Chance is 1/C.
    """
    images, labels = class_samples(model, per_class, rng)
    hits = to_host(classifier.predict(images) == labels).reshape(model.n_classes, per_class)
    return float(hits.mean()), hits.mean(axis=1)
