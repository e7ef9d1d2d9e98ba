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

Objectives of the VAE's family (docs/family.md). Unlike the functions above, these couple the
rows of a batch through a batch mean, so row n of a gradient depends on every row; their
per-example values still average to the objective, and each gradient is still that of Σ_n value[n]:

    free bits, λ ≥ 0:   Σ_j max(λ, KL_j),  KL_j = 1/N Σ_n KL_nj     (Kingma et al. 2016)
    L1 sparsity:        Σ_j |h_j|                                  (per example; no coupling)
    KL sparsity, ρ:     Σ_j KL(ρ ‖ ρ̂_j),   ρ̂_j = 1/N Σ_n h_nj ∈ (0, 1)

The derivations, step by step, are in docs/derivations.md.
"""

from __future__ import annotations

import math

from tinyvae.backend import array_module
from tinyvae.nn.base import Array

LOG_2PI = math.log(2.0 * math.pi)


def bernoulli_nll(logits: Array, x: Array) -> tuple[Array, Array]:
    """Bernoulli negative log-likelihood of x ∈ [0, 1] given logits, in the stable form.

    logits, x: (N, D).  Returns nll (N,) and dnll/dlogits (N, D).

    The naive −x·log σ(l) − (1−x)·log(1−σ(l)) overflows or takes log(0) once |l| is
    large; max(l,0) − x·l + log(1 + e^(−|l|)) is the same number and never does. The
    gradient σ(l) − x reuses its pieces: log σ(l) = l − max(l,0) − log(1 + e^(−|l|)),
    which is ≤ 0 and never overflows, so σ(l) = exp(log σ(l)) is exact for every l.
    (No np.where: selecting with a random mask is much slower than arithmetic; docs/benchmarks.md.)
    """
    xp = array_module(logits)
    relu = xp.maximum(logits, 0)                             # max(l, 0)          (N, D)
    log1p_e = xp.log1p(xp.exp(-xp.abs(logits)))              # log(1 + e^(−|l|))  (N, D)
    nll = (relu - x * logits + log1p_e).sum(axis=1)
    ### BEGIN SOLUTION
    dlogits = xp.exp(logits - relu - log1p_e) - x            # σ(l) − x
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


def free_bits_kl(mu: Array, logvar: Array, free_bits: float) -> tuple[Array, Array, Array]:
    """The free-bits KL term (Kingma et al. 2016, eq. 15): Σ_j max(λ, KL_j), λ = ``free_bits``.

    mu, logvar: (N, J). KL_nj is the KL of dimension j for example n, KL_j = 1/N Σ_n KL_nj its
    batch mean. Returns, like gaussian_kl, values (N,) and the gradients of their sum:

        value_n = Σ_j (KL_nj if KL_j > λ else λ)          so 1/N Σ_n value_n = Σ_j max(λ, KL_j)
        dvalue/dmu_nj = mu_nj · [KL_j > λ],   dvalue/dlogvar_nj = ½(e^logvar_nj − 1) · [KL_j > λ]

    A dimension whose batch KL is at most λ nats costs a constant λ: its gradient is 0, so the
    optimizer has no reason to squeeze it to 0 nats (posterior collapse). At the kink KL_j = λ
    the left derivative, 0, is the subgradient chosen (as ReLU does at 0). KL_nj comes from
    gaussian_kl applied to each entry as a one-dimensional Gaussian.
    """
    xp = array_module(mu)
    if not free_bits >= 0:
        raise ValueError(f"free_bits must be ≥ 0 nats per dimension, got {free_bits}")
    N, J = mu.shape
    kl, dmu, dlogvar = gaussian_kl(mu.reshape(-1, 1), logvar.reshape(-1, 1))   # one entry per "example"
    kl = kl.reshape(N, J)                                    # KL_nj
    above = kl.mean(axis=0) > free_bits                      # (J,): KL_j > λ
    value = xp.where(above, kl, free_bits).sum(axis=1)       # (N,)
    return value, dmu.reshape(N, J) * above, dlogvar.reshape(N, J) * above


def l1_penalty(code: Array) -> tuple[Array, Array]:
    """The L1 sparsity penalty on an autoencoder's code h (N, J): Σ_j |h_nj| per example (N,),
    and its gradient sign(h) (N, J); at the kink h = 0 the subgradient chosen is 0."""
    xp = array_module(code)
    return xp.abs(code).sum(axis=1), xp.sign(code)


SPARSITY_EPS = 1e-6   # ρ̂ is kept in [ε, 1 − ε] so the logarithms stay finite (gradient 0 where clipped)


def kl_sparsity(code: Array, rho: float) -> tuple[Array, Array]:
    """The KL sparsity penalty on a code h (N, J) with entries in (0, 1) (Ng, CS294A notes).

    With the mean activation ρ̂_j = 1/N Σ_n h_nj of each unit and the target rate ρ::

        KL(ρ ‖ ρ̂_j) = ρ log(ρ / ρ̂_j) + (1 − ρ) log((1 − ρ) / (1 − ρ̂_j))
        d/dρ̂_j      = −ρ / ρ̂_j + (1 − ρ) / (1 − ρ̂_j)

    Returns the values (N,), each Σ_j KL(ρ ‖ ρ̂_j) (the penalty belongs to the batch, so every
    example carries all of it and their mean is the penalty), and the gradient of their sum,
    N · (1/N) · d/dρ̂_j = d/dρ̂_j for every row (N, J).
    """
    xp = array_module(code)
    if not 0 < rho < 1:
        raise ValueError(f"the sparsity target rho must lie in (0, 1), got {rho}")
    rho_hat = code.mean(axis=0)                              # (J,)
    inside = (rho_hat > SPARSITY_EPS) & (rho_hat < 1.0 - SPARSITY_EPS)
    rho_hat = xp.clip(rho_hat, SPARSITY_EPS, 1.0 - SPARSITY_EPS)
    kl = (rho * xp.log(rho / rho_hat) + (1.0 - rho) * xp.log((1.0 - rho) / (1.0 - rho_hat))).sum()
    dkl = (-rho / rho_hat + (1.0 - rho) / (1.0 - rho_hat)) * inside      # (J,)
    return kl * xp.ones(code.shape[0], dtype=code.dtype), xp.ones_like(code) * dkl
