"""Numerical gradients by central differences, and the relative error used to compare.

    df/dx_i ≈ ( f(x + h·e_i) − f(x − h·e_i) ) / 2h        error O(h²)

Use float64: with h = 1e-5 the truncation error is ~1e-10 and the rounding error
~1e-16·|f|/h ≈ 1e-11·|f|, so a correct gradient agrees to about 1e-8 or better.
In float32 the rounding error alone is ~1e-2: never gradient-check in float32.

    >>> layer = ...; x = ...; dy = ...
    >>> f = lambda: float((layer.forward(x) * dy).sum())      # L = Σ y·dy, so dL/dy = dy
    >>> layer.forward(x); dx = layer.backward(dy)
    >>> rel_error(dx, numerical_gradient(f, x)) < 1e-8
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tinyvae.backend import array_module, to_host


def numerical_gradient(f: Callable[[], float], x: Any, h: float = 1e-5) -> Any:
    """The gradient of the scalar ``f()`` with respect to the array ``x``, by central differences.

    ``f`` takes no arguments and reads ``x``; each entry of ``x`` is nudged by ±h in
    place and restored. Works on NumPy and CuPy arrays; returns an array like ``x``.
    """
    if x.dtype != np.float64:
        raise ValueError(f"gradient checks need float64 arrays, got {x.dtype}")
    if not x.flags.c_contiguous:
        raise ValueError("numerical_gradient needs a C-contiguous array (it perturbs x in place)")
    flat = x.reshape(-1)                 # a view: writing flat[i] changes x
    grad = np.zeros(flat.size)
    for i in range(flat.size):
        old = float(flat[i])
        flat[i] = old + h
        f_plus = float(f())
        flat[i] = old - h
        f_minus = float(f())
        flat[i] = old
        grad[i] = (f_plus - f_minus) / (2.0 * h)
    return array_module(x).asarray(grad.reshape(x.shape))   # on x's device


def rel_error(a: Any, b: Any) -> float:
    """Scale-aware relative error: max|a − b| / max(1e-8, max(|a| + |b|)).

    Taking the maximum over the whole array in the denominator (rather than entry by
    entry) keeps entries whose true gradient is ~0 from dominating through rounding
    noise; check each parameter array separately so a small one is not hidden by a
    large one.
    """
    a = to_host(a).astype(np.float64)
    b = to_host(b).astype(np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b)) / max(1e-8, float(np.max(np.abs(a) + np.abs(b)))))


def check_layer(layer: Any, x: Any, seed: int = 0, h: float = 1e-5) -> dict[str, float]:
    """Check a layer's backward against central differences; return the relative errors.

    Uses the scalar L = Σ forward(x)·dy for a fixed random dy, so dL/dy = dy and
    backward(dy) must return dL/dx and fill the parameter gradients. Returns
    ``{"x": err, "W": err, "b": err, ...}`` — one entry for the input and one for each
    parameter the layer holds (``layer.params``, set when it was bound to Parameters).
    """
    xp = array_module(x)
    dy_host = np.random.default_rng(seed).standard_normal(tuple(layer.forward(x).shape))
    dy = xp.asarray(dy_host)

    def loss() -> float:
        return float((layer.forward(x) * dy).sum())

    layer.forward(x)
    errors: dict[str, float] = {}
    dx = layer.backward(dy)
    analytic = {name: grad.copy() for name, grad in getattr(layer, "grads", {}).items()}
    if dx is not None:
        errors["x"] = rel_error(dx, numerical_gradient(loss, x, h))
    for name, value in getattr(layer, "params", {}).items():
        errors[name] = rel_error(analytic[name], numerical_gradient(loss, value, h))
    return errors


def check_model(model: Any, x: Any, eps: Any, h: float = 1e-5, labels: Any = None) -> dict[str, float]:
    """Check a model's whole backward: d(loss)/dθ against central differences, per parameter.

    ``model`` needs ``loss_and_grads(x, eps)``, ``loss(x, eps)`` and ``params`` (a float64
    Parameters). The noise ``eps`` (whatever the model's ``draw_noise`` gives: eps for a VAE,
    the corruption noise for a denoising autoencoder, None for a plain one) is fixed so the
    loss is a deterministic function of θ. ``labels`` (N,) go to a conditional model.
    Returns ``{parameter name: relative error}``.
    """
    given = {} if labels is None else {"labels": labels}
    model.loss_and_grads(x, eps, **given)
    analytic = model.params.grad.copy()
    numeric = numerical_gradient(lambda: float(model.loss(x, eps, **given).loss), model.params.data, h)
    errors = {}
    for name, (start, shape) in model.params.layout.items():
        stop = start + int(np.prod(shape))
        errors[name] = rel_error(analytic[start:stop], numeric[start:stop])
    return errors
