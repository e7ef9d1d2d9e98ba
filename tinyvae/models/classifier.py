"""A softmax classifier from tinyvae's own layers: the linear probe and the feature extractor.

Softmax cross-entropy of logits l (N, C) against integer labels y (N,), per example::

    p_nc   = e^(l_nc) / Σ_c' e^(l_nc')                      softmax
    loss_n = −log p_{n,y_n} = log Σ_c e^(l_nc) − l_{n,y_n}
    d loss_n / d l_nc = p_nc − [c = y_n]                    softmax minus one-hot

The log-sum-exp is taken after subtracting each row's maximum, so no exponential overflows
(the loss is unchanged: adding a constant to a row of logits does not change its softmax).

Two uses in ``python -m tinyvae.evaluate``:

* the **linear probe**: ``Classifier(J, hidden=())`` is softmax regression on latent means;
  its test accuracy measures how linearly the latent code separates the classes;
* the **feature extractor** for the Fréchet distance: ``Classifier(D, hidden=(256, 64))``
  trained on the images; ``features(x)`` is the last hidden layer's activations (N, 64).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
from tqdm import tqdm

from tinyvae.backend import Backend, array_module, get_backend
from tinyvae.nn.base import Array
from tinyvae.nn.layers import mlp
from tinyvae.nn.params import Parameters
from tinyvae.training.optim import Adam

PREDICT_BATCH = 1000


def log_softmax(logits: Array) -> Array:
    """log p (N, C) from logits (N, C): l − max − log Σ e^(l − max), row by row."""
    xp = array_module(logits)
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))


def softmax_cross_entropy(logits: Array, labels: Array) -> tuple[Array, Array]:
    """Cross-entropy of the softmax of logits (N, C) with integer labels (N,) in 0..C−1.

    Returns the loss per example (N,) and d(Σ_n loss_n)/d logits = softmax − one-hot (N, C).
    """
    xp = array_module(logits)
    if logits.ndim != 2 or tuple(labels.shape) != (logits.shape[0],):
        raise ValueError(f"expected logits (N, C) and labels (N,), got {tuple(logits.shape)} and {tuple(labels.shape)}")
    rows = xp.arange(logits.shape[0])
    log_p = log_softmax(logits)                                  # (N, C)
    loss = -log_p[rows, labels]                                  # (N,)
    dlogits = xp.exp(log_p)                                      # softmax (N, C)
    dlogits[rows, labels] -= 1.0                                 # minus one-hot
    return loss, dlogits


class Classifier:
    """An MLP  x (N, D) → logits (N, C)  trained with softmax cross-entropy and Adam.

    input_dim:  D;   n_classes: C
    hidden:     hidden layer sizes; () is softmax regression (the linear probe)
    activation: one of tinyvae.nn.activations.ACTIVATIONS
    dtype:      "float32" to train, "float64" for gradient checks
    backend:    a Backend or its name; seed: initial weights (drawn on the host, as for the VAE)
    """

    def __init__(self, input_dim: int, n_classes: int = 10, hidden: Sequence[int] = (), activation: str = "relu",
                 dtype: str = "float32", backend: Backend | str = "cpu", seed: int = 0) -> None:
        self.backend = get_backend(backend) if isinstance(backend, str) else backend
        self.xp, self.dtype = self.backend.xp, np.dtype(dtype)
        self.input_dim, self.n_classes, self.hidden = int(input_dim), int(n_classes), [int(h) for h in hidden]
        self.net = mlp([self.input_dim, *self.hidden, self.n_classes], activation, init="pytorch")
        self.net.layers[0].input_grad = False                    # nobody needs dL/dx
        self.params = Parameters({"net": self.net}, self.backend, self.dtype, seed)

    def _batch(self, x: Array) -> Array:
        x = self.xp.asarray(x, dtype=self.dtype)
        if x.ndim != 2 or x.shape[1] != self.input_dim:
            raise ValueError(f"expected inputs of shape (N, {self.input_dim}), got {tuple(x.shape)}")
        return x

    def loss_and_grads(self, x: Array, labels: Array) -> Array:
        """Mean cross-entropy over the batch (a 0-d device array); fills ``params.grad``."""
        logits = self.net.forward(self._batch(x))                # (N, C)
        loss, dlogits = softmax_cross_entropy(logits, self.xp.asarray(labels))
        self.net.backward(dlogits * (1.0 / logits.shape[0]))
        return loss.mean()

    def fit(self, x: Array, labels: Array, epochs: int = 10, batch_size: int = 128, lr: float = 1e-3,
            seed: int = 0, progress: bool | None = None, desc: str = "classifier") -> list[float]:
        """Train on x (N, D) and labels (N,) with Adam; returns the mean training loss of each epoch.

        Batches are drawn in a seeded random order (seed, epoch), as in the VAE's trainer.
        """
        x, labels = self._batch(x), self.xp.asarray(labels)
        optimizer, n, losses = Adam(self.params, lr=lr), x.shape[0], []
        bar = tqdm(range(1, epochs + 1), desc=desc, unit="epoch", leave=False, file=sys.stderr,
                   disable=None if progress is None else not progress)
        for epoch in bar:
            perm = self.backend.asarray(np.random.default_rng([seed, epoch]).permutation(n))
            total = self.xp.zeros((), dtype=np.float64)
            for start in range(0, n, batch_size):
                idx = perm[start:start + batch_size]
                total += self.loss_and_grads(x[idx], labels[idx]) * idx.shape[0]
                optimizer.step()
            losses.append(float(total) / n)
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
        return losses

    def _in_batches(self, layers: list[Any], x: Array) -> Array:
        x = self._batch(x)
        outputs = []
        for start in range(0, x.shape[0], PREDICT_BATCH):
            h = x[start:start + PREDICT_BATCH]
            for layer in layers:
                h = layer.forward(h)
            outputs.append(h)
        return self.xp.concatenate(outputs)

    def predict_proba(self, x: Array) -> Array:
        """p(y|x), (N, C) on the device."""
        return self.xp.exp(log_softmax(self._in_batches(self.net.layers, x)))

    def predict(self, x: Array) -> Array:
        """The most probable class of each row, (N,) on the device."""
        return self._in_batches(self.net.layers, x).argmax(axis=1)

    def accuracy(self, x: Array, labels: Array) -> float:
        """The fraction of rows of x whose predicted class is the label."""
        return float((self.predict(x) == self.xp.asarray(labels)).mean())

    def features(self, x: Array) -> Array:
        """The last hidden layer's activations, (N, hidden[-1]) on the device: every layer but the last Linear."""
        if not self.hidden:
            raise ValueError("a classifier without hidden layers has no features; give it hidden=(...)")
        return self._in_batches(self.net.layers[:-1], x)

    def __repr__(self) -> str:
        sizes = "-".join(map(str, [self.input_dim, *self.hidden, self.n_classes]))
        return f"Classifier({sizes}, {self.dtype.name}, {self.backend.name}, {self.params.size:,} parameters)"
