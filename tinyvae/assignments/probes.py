"""How the grader calls the students' functions: one probe per kind of call.

A probe takes ``tv`` (``tv("nn.layers")`` is the module ``tinyvae.nn.layers`` of whichever tinyvae
is being probed), the input arrays of one case and the case's options, calls the code, and
returns its outputs as a dict of arrays. The same probe runs twice:

- in the sandboxed worker (worker.py) on the submission's tinyvae, whose outputs come back
  to the grader as data; and
- in the grader's own process on the instructor's tinyvae: the reference the outputs are
  compared with (oracle.py).

So this file holds calls only: no expected value, no test, nothing a student could not
learn from the assignment's README. It imports nothing but NumPy, because the worker that
loads it (by its path) sees nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

Arrays = dict[str, np.ndarray]
Modules = Callable[[str], ModuleType]


def _float64_params(tv: Modules, layers: dict[str, Any], theta: np.ndarray | None = None) -> Any:
    """Bind ``layers`` to float64 Parameters; load ``theta`` into them when given."""
    params = tv("nn.params").Parameters(layers, dtype="float64", seed=0)
    if theta is not None:
        params.data[...] = theta
    return params


def linear(tv: Modules, a: Arrays, d_in: int, d_out: int, input_grad: bool = True, backward: bool = True,
           stale: bool = False) -> Arrays:
    """Linear(d_in, d_out) with weights W, b: y = forward(x); then dx = backward(dy) with dW, db.

    ``stale``: a forward and backward on (x0, dy0) first, so a gradient left behind shows.
    """
    layer = tv("nn.layers").Linear(d_in, d_out, input_grad=input_grad)
    params = _float64_params(tv, {"fc": layer})
    layer.W[...], layer.b[...] = a["W"], a["b"]
    if stale:
        layer.forward(a["x0"])
        layer.backward(a["dy0"])
    out = {"y": np.array(layer.forward(a["x"]))}
    if backward:
        dx = layer.backward(a["dy"])
        out["dx_is_none"] = np.array(dx is None)
        if dx is not None:
            out["dx"] = np.array(dx)
        out["dW"], out["db"] = np.array(layer.dW), np.array(layer.db)
        out["grad"] = np.array(params.grad)
    return out


def relu(tv: Modules, a: Arrays, earlier: bool = False) -> Arrays:
    """ReLU: y = forward(x), dx = backward(dy); ``earlier``: a forward on x0 first."""
    layer = tv("nn.activations").ReLU()
    if earlier:
        layer.forward(a["x0"])
    y = np.array(layer.forward(a["x"]))
    return {"y": y, "dx": np.array(layer.backward(a["dy"]))}


def mlp(tv: Modules, a: Arrays, sizes: list[int], activation: str) -> Arrays:
    """mlp(sizes) with parameters theta: y = forward(x), dx = backward(dy) and every parameter gradient."""
    net = tv("nn.layers").mlp(sizes, activation=activation)
    params = _float64_params(tv, {"net": net}, a["theta"])
    y = np.array(net.forward(a["x"]))
    dx = net.backward(a["dy"])
    return {"y": y, "dx": np.array(dx), "grad": np.array(params.grad)}


def bernoulli_nll(tv: Modules, a: Arrays, raise_on_overflow: bool = False) -> Arrays:
    """(nll, dlogits) = bernoulli_nll(logits, x); ``raise_on_overflow``: floating-point errors raise."""
    with np.errstate(**({"over": "raise", "invalid": "raise", "divide": "raise"} if raise_on_overflow else {})):
        nll, dlogits = tv("nn.losses").bernoulli_nll(a["logits"], a["x"])
    return {"nll": np.array(nll), "dlogits": np.array(dlogits)}


def gaussian_kl(tv: Modules, a: Arrays) -> Arrays:
    """(kl, dmu, dlogvar) = gaussian_kl(mu, logvar)."""
    kl, dmu, dlogvar = tv("nn.losses").gaussian_kl(a["mu"], a["logvar"])
    return {"kl": np.array(kl), "dmu": np.array(dmu), "dlogvar": np.array(dlogvar)}


def reparameterize(tv: Modules, a: Arrays, backward: bool = True, seed: int | None = None) -> Arrays:
    """z = forward(mu, logvar, eps) (eps drawn from default_rng(seed) when seed is given), then backward(dz)."""
    r = tv("nn.reparam").Reparameterize()
    if seed is None:
        out = {"z": np.array(r.forward(a["mu"], a["logvar"], a["eps"]))}
    else:
        out = {"z": np.array(r.forward(a["mu"], a["logvar"], rng=np.random.default_rng(seed)))}
    if backward:
        dmu, dlogvar = r.backward(a["dz"])
        out["dmu"], out["dlogvar"] = np.array(dmu), np.array(dlogvar)
    return out


def vae(tv: Modules, a: Arrays, model: dict[str, Any]) -> Arrays:
    """VAE(**model) with parameters theta: the loss and every parameter gradient for the batch (x, eps)."""
    net = tv("models.vae").VAE(**model)
    net.params.data[...] = a["theta"]
    elbo = net.loss_and_grads(a["x"], a["eps"])
    return {"loss": np.array(float(elbo.loss)), "grad": np.array(net.params.grad)}


def _adam(tv: Modules, theta: np.ndarray, **hyper: float) -> tuple[Any, Any]:
    """A float64 Linear(4, 3) (15 values) set to theta, and Adam over it running the students' _update."""
    params = _float64_params(tv, {"fc": tv("nn.layers").Linear(4, 3)}, theta)
    return params, tv("training.optim").Adam(params, **hyper)


def adam_steps(tv: Modules, a: Arrays, **hyper: float) -> Arrays:
    """Adam steps with the gradients grads (k, 15) from theta: the parameters after each step (k, 15)."""
    params, adam = _adam(tv, a["theta"], **hyper)
    thetas = []
    for g in a["grads"]:
        params.grad[...] = g
        adam.step()
        thetas.append(params.data.copy())
    return {"thetas": np.array(thetas)}


def adam_quadratic(tv: Modules, a: Arrays, lr: float, steps: int) -> Arrays:
    """Adam on f(θ) = ½ Σ c_i (θ_i − t_i)² from theta: the parameters after ``steps`` steps."""
    params, adam = _adam(tv, a["theta"], lr=lr)
    for _ in range(steps):
        np.multiply(a["curvature"], params.data - a["target"], out=params.grad)
        adam.step()
    return {"theta": np.array(params.data)}


def adam_vae(tv: Modules, a: Arrays, model: dict[str, Any], lr: float) -> Arrays:
    """A VAE trained by Adam on the minibatches data[batches[i]]: its loss on (data, eps) before and after."""
    net = tv("models.vae").VAE(**model)
    adam = tv("training.optim").Adam(net.params, lr=lr)
    before = float(net.loss(a["data"], a["eps"]).loss)
    for batch in a["batches"]:
        net.loss_and_grads(a["data"][batch], a["eps"][batch])
        adam.step()
    return {"before": np.array(before), "after": np.array(float(net.loss(a["data"], a["eps"]).loss))}


def conv(tv: Modules, a: Arrays, transposed: bool, c_in: int, c_out: int, k: int, stride: int = 1,
         padding: int = 0, output_padding: int = 0, input_grad: bool = True, stale: bool = False) -> Arrays:
    """Conv2d or ConvTranspose2d with weights W, b: y = forward(x), then dx = backward(dy) with dW, db.

    ``stale``: a forward and backward on (x0, dy0) first, so a gradient left behind shows.
    """
    module = tv("nn.conv")
    extra = {"output_padding": output_padding} if transposed else {}
    kind = module.ConvTranspose2d if transposed else module.Conv2d
    layer = kind(c_in, c_out, k, stride, padding, input_grad=input_grad, **extra)
    params = _float64_params(tv, {"conv": layer})
    layer.W[...], layer.b[...] = a["W"], a["b"]
    if stale:
        layer.forward(a["x0"])
        layer.backward(a["dy0"])
    out = {"y": np.array(layer.forward(a["x"]))}
    dx = layer.backward(a["dy"])
    out["dx_is_none"] = np.array(dx is None)
    if dx is not None:
        out["dx"] = np.array(dx)
    out["dW"], out["db"], out["grad"] = np.array(layer.dW), np.array(layer.db), np.array(params.grad)
    return out


PROBES: dict[str, Callable[..., Arrays]] = {
    f.__name__: f for f in (linear, relu, mlp, bernoulli_nll, gaussian_kl, reparameterize, vae, adam_steps,
                            adam_quadratic, adam_vae, conv)
}
