"""Evaluating a VAE: the bound, the importance-weighted bound, the latent code, sample quality.

Array functions take NumPy or CuPy arrays (the library is read from the array, or from
``model.backend``); the small linear algebra at the end (PCA, Fréchet distance) runs on the
host in float64 NumPy. All values are in nats per example unless stated otherwise.

The negative ELBO of one example, with β = 1 (the bound on log p(x), whatever β trained it)::

    −ELBO(x) = −E_q[log p(x|z)] + KL(q(z|x) ‖ N(0, I))

The importance-weighted bound (Burda, Grosse & Salakhutdinov 2015, "Importance Weighted Autoencoders")::

    z_i ~ q(z|x) = N(mu, diag e^logvar),  i = 1..k
    log w_i = log p(x|z_i) + log p(z_i) − log q(z_i|x)
    L_k(x)  = log (1/k Σ_i w_i)

E[L_1] = ELBO, E[L_k] ≤ E[L_{k+1}] ≤ log p(x), and L_k → log p(x) as k → ∞ (their Theorem 1).
With z = mu + e^(logvar/2)·eps both Gaussian log-densities are closed forms::

    log q(z|x) = Σ_j −½ (eps_j² + logvar_j + log 2π)      ((z − mu)² / σ² is just eps²)
    log p(z)   = Σ_j −½ (z_j² + log 2π)

Latent diagnostics (Burda et al. 2015): the activity of latent unit u is
A_u = Cov_x(E_q[z_u]) = Var_x(mu_u); a unit with A_u ≤ 0.01 is *inactive*: its posterior mean
ignores the input, the signature of posterior collapse in that dimension.

The Fréchet distance between Gaussians fitted to two sets of feature vectors (Dowson & Landau
1982; as "FID", Heusel et al. 2017) is the squared 2-Wasserstein distance between them::

    d² = |m₁ − m₂|² + tr(Σ₁ + Σ₂ − 2 (Σ₁^½ Σ₂ Σ₁^½)^½)

The textbook form writes tr (Σ₁Σ₂)^½; Σ₁Σ₂ is not symmetric, but it is similar to the
symmetric PSD matrix Σ₁^½ Σ₂ Σ₁^½ (same eigenvalues, all ≥ 0), so both traces are the sum of
the square roots of those eigenvalues, and only symmetric eigendecompositions (``eigh``) are
needed. The number depends entirely on the feature extractor: tinyvae's is its own small
classifier (:mod:`tinyvae.models.classifier`), so values compare only with other tinyvae values.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from tinyvae.backend import array_module, to_host
from tinyvae.nn.base import Array

LOG_2PI = math.log(2.0 * math.pi)
ACTIVITY_THRESHOLD = 0.01          # Burda et al. (2015): A_u > 0.01 is an active unit
MAX_ROWS = 2048                    # (samples × images) decoded at once by iwae_bound
BCE_CLIP = 1e-7                    # pixel probabilities clipped to [1e-7, 1 − 1e-7] in the BCE


# --- log-sum-exp ------------------------------------------------------------------------------

def log_sum_exp(a: Array, axis: int = 0) -> Array:
    """log Σ_i e^(a_i) along ``axis``, as m + log Σ_i e^(a_i − m) with m = max_i a_i.

    Every exponent is ≤ 0, so nothing overflows, and the largest term is exactly 1, so the
    sum never underflows to 0. A slice that is all −inf gives −inf (not NaN).
    """
    xp = array_module(a)
    m = a.max(axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):                       # log 0 = −inf is the right answer there
        return (m + xp.log(xp.exp(a - m).sum(axis=axis, keepdims=True))).squeeze(axis)


def log_mean_exp(a: Array, axis: int = 0) -> Array:
    """log (1/k Σ_i e^(a_i)) along ``axis`` (k = a.shape[axis]): log_sum_exp(a) − log k."""
    return log_sum_exp(a, axis) - math.log(a.shape[axis])


# --- the bounds ---------------------------------------------------------------------------------

class BatchStats(NamedTuple):
    """Per-example numbers for one batch of N examples, each (N,) unless stated; on the device."""

    recon: Array    # −log p(x|z) at one z ~ q(z|x): the ELBO's reconstruction term, one-sample estimate
    kl: Array       # KL(q(z|x) ‖ N(0, I)), analytic
    bce: Array      # −Σ_d [x log p̂ + (1 − x) log(1 − p̂)], p̂ = decode(mu) clipped to [1e-7, 1 − 1e-7]
    mse: Array      # 1/D Σ_d (x − p̂)², per pixel
    mu: Array       # (N, J) posterior means
    logvar: Array   # (N, J) posterior log-variances


def elbo_parts(model: Any, x: Array, eps: Array | None = None) -> BatchStats:
    """The ELBO's two terms and the reconstruction errors of the posterior mean, for a batch x (N, D).

    ``eps`` (N, J) fixes the noise of the one-sample reconstruction term (else ``model.rng``).
    The reconstruction errors compare x with p̂ = decode(mu), the decoder's mean at the
    posterior mean; for a Bernoulli decoder the BCE is −log p(x | z = mu).
    """
    xp = model.xp
    recon, kl = model.forward(x, eps, check_finite=False)
    mu, logvar = model.encode(x)                                           # (N, J) each
    p = xp.clip(model.decode(mu).astype(np.float64), BCE_CLIP, 1.0 - BCE_CLIP)   # (N, D)
    x = xp.asarray(x, dtype=np.float64)
    bce = -(x * xp.log(p) + (1.0 - x) * xp.log1p(-p)).sum(axis=1)
    mse = ((x - p) ** 2).mean(axis=1)
    return BatchStats(recon, kl, bce, mse, mu, logvar)


def iwae_bound(model: Any, x: Array, k: int, rng: Any = None, max_rows: int = MAX_ROWS) -> Array:
    """L_k(x) for each row of x (N, D): (N,) float64 on the model's device.

    The k samples are decoded in chunks of c = max(1, max_rows // N) samples, so at most
    c·N rows (c·N × D values per decoder activation) exist at once; each chunk is reduced to
    log Σ_{i in chunk} w_i, and the chunks are combined by one more log-sum-exp:

        L_k = log_sum_exp over chunks of (log_sum_exp over i in the chunk of log w_i) − log k

    The log-weights are float64 (only the decoder runs in the model's dtype); ``rng`` is a
    generator on the model's device (default ``model.rng``). Pass few enough images that
    N ≤ max_rows; the evaluator walks the test set in batches.
    """
    if k < 1:
        raise ValueError(f"the number of importance samples k must be at least 1, got {k}")
    xp, rng = model.xp, (rng if rng is not None else model.rng)
    x = xp.asarray(x, dtype=model.dtype)
    mu, logvar = (a.astype(np.float64) for a in model.encode(x))            # (N, J) each
    std = xp.exp(0.5 * logvar)
    (N, J), D = mu.shape, x.shape[1]
    per_chunk = max(1, max_rows // N)
    chunks = []
    for start in range(0, k, per_chunk):
        c = min(per_chunk, k - start)
        eps = rng.standard_normal((c, N, J), dtype=np.float64)             # (c, N, J)
        z = mu + std * eps                                                 # (c, N, J)
        log_q = -0.5 * (eps * eps + logvar + LOG_2PI).sum(axis=2)          # (c, N)
        log_prior = -0.5 * (z * z + LOG_2PI).sum(axis=2)                   # (c, N)
        x_rows = xp.broadcast_to(x, (c, N, D)).reshape(c * N, D)           # image n, once per sample
        log_lik = -model.nll_given_z(x_rows, z.reshape(c * N, J)).reshape(c, N).astype(np.float64)
        chunks.append(log_sum_exp(log_lik + log_prior - log_q, axis=0))    # (N,)
    return log_sum_exp(xp.stack(chunks), axis=0) - math.log(k)


# --- the latent code ------------------------------------------------------------------------------

def kl_per_dimension(mu: Array, logvar: Array) -> np.ndarray:
    """(J,): ½ (mu_j² + e^logvar_j − 1 − logvar_j) averaged over the N rows of mu, logvar (N, J).

    The sum over j is the mean KL term of the ELBO; a dimension with KL ≈ 0 carries no information.
    """
    xp = array_module(mu)
    mu, logvar = mu.astype(np.float64), logvar.astype(np.float64)
    return to_host((0.5 * (mu * mu + xp.exp(logvar) - 1.0 - logvar)).mean(axis=0))


def active_units(mu: Array, threshold: float = ACTIVITY_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """Activity A_u = Var_x(mu_u) of each latent unit (J,), and which are active, A_u > threshold (J,) bool.

    mu: (N, J) posterior means of N data points (the variance is over the data, ddof = 0).
    """
    activity = to_host(mu.astype(np.float64).var(axis=0))
    return activity, activity > threshold


def pca_2d(z: Array) -> tuple[np.ndarray, np.ndarray]:
    """Project z (N, J), J ≥ 2, on its two principal axes: points (N, 2) and the variance ratio (2,).

    C = (z − z̄)ᵀ(z − z̄) / (N − 1) = V Λ Vᵀ (eigh; eigenvalues ascending, so the last two columns
    of V are the axes). Each axis is signed so that its largest coefficient is positive, which makes
    the picture the same on every run. The ratio is λ / Σλ: the share of variance each axis shows.
    """
    z = to_host(z).astype(np.float64)
    if z.ndim != 2 or z.shape[1] < 2 or z.shape[0] < 2:
        raise ValueError(f"pca_2d needs at least 2 points of at least 2 dimensions, got shape {z.shape}")
    centred = z - z.mean(axis=0)
    eigenvalues, vectors = np.linalg.eigh(centred.T @ centred / (z.shape[0] - 1))
    axes = vectors[:, [-1, -2]]                                                # (J, 2), largest first
    axes *= np.sign(axes[np.argmax(np.abs(axes), axis=0), [0, 1]])
    return centred @ axes, eigenvalues[[-1, -2]] / max(eigenvalues.sum(), 1e-300)


# --- sample quality -------------------------------------------------------------------------------

def sqrtm_psd(a: np.ndarray) -> np.ndarray:
    """The symmetric PSD square root of a symmetric PSD matrix a (F, F): S with S S = a.

    a = V diag(λ) Vᵀ (eigh)  ⇒  a^½ = V diag(√λ) Vᵀ. Eigenvalues that rounding pushed slightly
    below 0 are set to 0. (For a non-symmetric matrix this is wrong; see frechet_distance.)
    """
    a = np.asarray(a, dtype=np.float64)
    eigenvalues, vectors = np.linalg.eigh((a + a.T) / 2.0)
    return (vectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ vectors.T


def gaussian_statistics(features: Array) -> tuple[np.ndarray, np.ndarray]:
    """Mean (F,) and covariance (F, F) of feature vectors (N, F), in float64 on the host (ddof = 1)."""
    f = to_host(features).astype(np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"need at least 2 feature vectors as an (N, F) array, got shape {f.shape}")
    mean = f.mean(axis=0)
    centred = f - mean
    return mean, centred.T @ centred / (f.shape[0] - 1)


def frechet_distance(mean1: np.ndarray, cov1: np.ndarray, mean2: np.ndarray, cov2: np.ndarray) -> float:
    """d² = |m₁ − m₂|² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁^½ Σ₂ Σ₁^½)^½, between N(m₁, Σ₁) and N(m₂, Σ₂).

    Σ₁^½ Σ₂ Σ₁^½ is symmetric PSD, so its square root comes from eigh (see the module docstring
    for why its trace equals tr (Σ₁Σ₂)^½). Rounding can make d² of identical inputs a tiny
    negative number; it is returned as 0.
    """
    mean1, mean2 = np.asarray(mean1, dtype=np.float64), np.asarray(mean2, dtype=np.float64)
    cov1, cov2 = np.asarray(cov1, dtype=np.float64), np.asarray(cov2, dtype=np.float64)
    if mean1.shape != mean2.shape or cov1.shape != cov2.shape or cov1.shape != mean1.shape * 2:
        raise ValueError(f"means {mean1.shape}, {mean2.shape} and covariances {cov1.shape}, {cov2.shape} "
                         f"do not describe two Gaussians of the same dimension")
    root1 = sqrtm_psd(cov1)
    cross = np.trace(sqrtm_psd(root1 @ cov2 @ root1))
    diff = mean1 - mean2
    return max(float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * cross), 0.0)


def label_entropy(probs: Array) -> tuple[float, float]:
    """From class probabilities p(y|x) (N, C): mean H[p(y|x)] and H[mean_x p(y|x)], in nats.

    The first is low when the classifier is sure what each image is (recognisable samples);
    the second is high (up to log C) when the images spread over all classes (diverse samples).
    """
    p = to_host(probs).astype(np.float64)
    plogp = p * np.log(np.clip(p, 1e-300, None))                       # 0 log 0 = 0
    marginal = p.mean(axis=0)
    return float(-plogp.sum(axis=1).mean()), float(-(marginal * np.log(np.clip(marginal, 1e-300, None))).sum())
