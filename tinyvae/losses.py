"""Likelihoods and the KL term: pure functions returning per-example values and gradients.

Every function returns ``(value, grad...)`` where ``value`` has shape (N,) — one number
per example, summed over pixels or latent dimensions — and each gradient is that of
Σ_n value[n] with respect to an input (so row n of the gradient depends on row n only).
The caller decides the reduction: the VAE averages over the batch.

Negative log-likelihoods of a decoder output for data x (N, D):

    Bernoulli, from logits l:   −log p(x|l) = Σ_d  max(l,0) − x·l + log(1 + e^(−|l|))
                                d/dl        = σ(l) − x
    Gaussian, fixed σ:          −log p(x|m) = Σ_d  (x − m)² / 2σ² + ½ log(2πσ²)
                                d/dm        = (m − x) / σ²
    Gaussian, learned log σ²=s: −log p(x|m,s) = Σ_d ½[(x − m)² e^(−s) + s + log 2π]
                                d/dm = (m − x) e^(−s),   d/ds = ½[1 − (x − m)² e^(−s)]

KL of the approximate posterior N(mu, e^logvar) from the prior N(0, I), per example:

    KL = ½ Σ_j (mu² + e^logvar − 1 − logvar)
    d/dmu = mu,   d/dlogvar = ½(e^logvar − 1)

The derivations, step by step, are in docs/derivations.md.
"""

from __future__ import annotations

import math

from tinyvae.backend import array_module
from tinyvae.base import Array

LOG_2PI = math.log(2.0 * math.pi)


def bernoulli_nll(logits: Array, x: Array) -> tuple[Array, Array]:
    """Bernoulli negative log-likelihood of x ∈ [0, 1] given logits, in the stable form.

    logits, x: (N, D).  Returns nll (N,) and dnll/dlogits (N, D).

    The naive −x·log σ(l) − (1−x)·log(1−σ(l)) overflows or takes log(0) once |l| is
    large; max(l,0) − x·l + log(1 + e^(−|l|)) is the same number and never does.
    """
    xp = array_module(logits)
    e = xp.exp(-xp.abs(logits))                              # (N, D), in (0, 1]
    nll = (xp.maximum(logits, 0) - x * logits + xp.log1p(e)).sum(axis=1)
    ### BEGIN SOLUTION
    dlogits = xp.where(logits >= 0, 1.0, e) / (1.0 + e) - x  # σ(l) − x
    ### END SOLUTION
    return nll, dlogits


def gaussian_nll(mean: Array, x: Array, sigma: float = 1.0) -> tuple[Array, Array]:
    """Gaussian negative log-likelihood with a fixed standard deviation ``sigma``.

    mean, x: (N, D).  Returns nll (N,) and dnll/dmean (N, D).
    With sigma² = ½ this is the summed squared error plus a constant.
    """
    diff = mean - x                                          # (N, D)
    var = sigma * sigma
    nll = 0.5 * (diff * diff).sum(axis=1) / var + 0.5 * x.shape[1] * (LOG_2PI + math.log(var))
    dmean = diff / var
    return nll, dmean


def gaussian_nll_learned(mean: Array, logvar: Array, x: Array) -> tuple[Array, Array, Array]:
    """Gaussian negative log-likelihood with a learned per-pixel log-variance.

    mean, logvar, x: (N, D).  Returns nll (N,), dnll/dmean (N, D), dnll/dlogvar (N, D).
    """
    xp = array_module(mean)
    diff = mean - x                                          # (N, D)
    inv_var = xp.exp(-logvar)
    sq = diff * diff * inv_var                               # (x − m)² e^(−s)
    nll = 0.5 * (sq + logvar + LOG_2PI).sum(axis=1)
    dmean = diff * inv_var
    dlogvar = 0.5 * (1.0 - sq)
    return nll, dmean, dlogvar


def gaussian_kl(mu: Array, logvar: Array) -> tuple[Array, Array, Array]:
    """KL( N(mu, e^logvar) ‖ N(0, I) ) per example, with its gradients.

    mu, logvar: (N, J).  Returns kl (N,), dkl/dmu (N, J), dkl/dlogvar (N, J).
    """
    xp = array_module(mu)
    var = xp.exp(logvar)                                     # σ²  (N, J)
    ### BEGIN SOLUTION
    kl = 0.5 * (mu * mu + var - 1.0 - logvar).sum(axis=1)
    dmu = mu
    dlogvar = 0.5 * (var - 1.0)
    ### END SOLUTION
    return kl, dmu, dlogvar
