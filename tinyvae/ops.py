"""Fused GPU kernels for the hot spots of a training step, each beside its NumPy reference.

For a model this small a GPU step is bound by kernel launches and Python overhead, not by
arithmetic: the reference code launches one kernel per array operator (the Bernoulli NLL
alone is about a dozen). Each kernel here does the same maths in ONE launch. The
references stay where the maths is taught and are what the CPU runs (except Adam's update,
which has a CPU twin as well: tinyvae/cpu_kernels.py); the VAE and Adam pick these twins
when their backend is the GPU, and ``tests/test_ops.py`` checks on a GPU that every twin
equals its reference::

    fused twin              reference                        launches, reference → fused
    fused_bernoulli_nll     losses.bernoulli_nll             ~13 → 2 (elementwise + row sum)
    fused_gaussian_kl       losses.gaussian_kl               ~9  → 2 (row reduction + gradient)
    FusedReparameterize     reparam.Reparameterize           4 → 1 forward, 3 → 1 backward
    adam_schedule + update  optim.Adam._update (+ step)      12 → 2, over the whole flat buffer
    (ReLU backward)         activations.ReLU.backward        already 1: dy * mask

The Adam twin keeps t, α_t and ε̂ on the device, so a whole training step can be captured
as a CUDA graph and replayed (``--cuda-graph``; see tinyvae/trainer.py).

This module never imports CuPy: the kernel classes come from ``xp`` (the cupy module the
backend hands over), and each kernel is compiled once, on first use.
"""

from __future__ import annotations

from functools import cache
from types import ModuleType, SimpleNamespace
from typing import Any

from tinyvae.backend import array_module
from tinyvae.base import Array
from tinyvae.reparam import Reparameterize


@cache
def gpu_kernels(xp: ModuleType) -> SimpleNamespace:
    """The fused kernels, built with ``xp`` (cupy). Cached: built once per process."""
    ### BEGIN SOLUTION
    return SimpleNamespace(
        # per pixel: nll = max(l,0) − x·l + log(1 + e^(−|l|)),  dl = σ(l) − x
        bce_with_logits=xp.ElementwiseKernel(
            "T l, T x", "T nll, T dl",
            """
            T e = exp(-fabs(l));
            nll = (l > (T)0 ? l : (T)0) - x * l + log1p(e);
            dl = (l >= (T)0 ? (T)1 : e) / ((T)1 + e) - x;
            """,
            "tinyvae_bce_with_logits"),
        # per example: KL = ½ Σ_j (mu² + e^lv − 1 − lv)
        kl_rows=xp.ReductionKernel(
            "T mu, T lv", "T kl",
            "mu * mu + exp(lv) - (T)1 - lv", "a + b", "kl = (T)0.5 * a", "0",
            "tinyvae_kl_rows"),
        # d KL / d lv = ½ (e^lv − 1)
        kl_dlogvar=xp.ElementwiseKernel(
            "T lv", "T dlv", "dlv = (T)0.5 * (exp(lv) - (T)1)", "tinyvae_kl_dlogvar"),
        # std = e^(½ lv),  z = mu + std · eps
        reparameterize=xp.ElementwiseKernel(
            "T mu, T lv, T eps", "T z, T std",
            "std = exp((T)0.5 * lv); z = mu + std * eps;",
            "tinyvae_reparameterize"),
        # dL/dlv = ½ · dz · std · eps
        reparameterize_backward=xp.ElementwiseKernel(
            "T dz, T std, T eps", "T dlv", "dlv = (T)0.5 * dz * std * eps", "tinyvae_reparameterize_backward"),
        # the schedule [t, α_t, ε̂], three (1,) device arrays: t ← t + 1, then the bias-corrected
        # step size and epsilon (kept on the device, so a captured graph reads the current ones)
        adam_schedule=xp.ElementwiseKernel(
            "float64 lr, float64 b1, float64 b2, float64 eps, bool correct", "float64 t, float64 lr_t, float64 eps_t",
            """
            t = t + 1.0;
            lr_t = correct ? lr * sqrt(1.0 - pow(b2, t)) / (1.0 - pow(b1, t)) : lr;
            eps_t = correct ? eps * sqrt(1.0 - pow(b2, t)) : eps;
            """,
            "tinyvae_adam_schedule"),
        # m ← m + (1 − β₁)(g − m),  v ← v + (1 − β₂)(g² − v),  θ ← θ − α_t m / (√v + ε̂)
        adam_update=xp.ElementwiseKernel(
            "T g, float64 lr_t, float64 eps_t, float64 b1, float64 b2", "T theta, T m, T v",
            """
            m = m + (T)(1.0 - b1) * (g - m);
            v = v + (T)(1.0 - b2) * (g * g - v);
            theta = theta - (T)lr_t * m / (sqrt(v) + (T)eps_t);
            """,
            "tinyvae_adam_update"),
    )
    ### END SOLUTION


def fused_bernoulli_nll(logits: Array, x: Array) -> tuple[Array, Array]:
    """losses.bernoulli_nll in two launches: nll (N,) and dnll/dlogits (N, D)."""
    nll, dlogits = gpu_kernels(array_module(logits)).bce_with_logits(logits, x)
    return nll.sum(axis=1), dlogits


def fused_gaussian_kl(mu: Array, logvar: Array) -> tuple[Array, Array, Array]:
    """losses.gaussian_kl in two launches: kl (N,), dkl/dmu (= mu), dkl/dlogvar (N, J)."""
    kernels = gpu_kernels(array_module(mu))
    return kernels.kl_rows(mu, logvar, axis=1), mu, kernels.kl_dlogvar(logvar)


class FusedReparameterize(Reparameterize):
    """Reparameterize with one launch forward (z and std together) and one backward."""

    def forward(self, mu: Array, logvar: Array, eps: Array | None = None, rng: Any = None) -> Array:
        self.eps = self.noise_for(mu, eps, rng)
        z, self.std = gpu_kernels(array_module(mu)).reparameterize(mu, logvar, self.eps)
        return z

    def backward(self, dz: Array) -> tuple[Array, Array]:
        return dz, gpu_kernels(array_module(dz)).reparameterize_backward(dz, self.std, self.eps)
