"""The Importance Weighted Autoencoder's training objective (Burda, Grosse & Salakhutdinov 2015).

The same networks as the VAE; only the objective changes. For each example x_n draw K latents
from the encoder's q(z|x_n), score each, and average the importance weights inside the log::

    eps_kn ~ N(0, I),   z_kn = mu_n + exp(½·logvar_n) · eps_kn           k = 1..K
    log w_kn = log p(x_n|z_kn) + log p(z_kn) − log q(z_kn|x_n)
    L_K(x_n) = log (1/K Σ_k w_kn)                                     ≤ log p(x_n)
    loss     = −1/N Σ_n L_K(x_n)

The KL cannot be taken analytically inside the log, so both Gaussian log-densities appear in
full. With the reparameterization, (z − mu)/σ is just eps, and the log 2π terms cancel::

    log p(z) − log q(z|x) = ½ Σ_j (eps_j² + logvar_j − z_j²)

The gradient (docs/derivations.md): with the self-normalised weights w̃_kn = w_kn / Σ_k' w_k'n
= softmax_k(log w_kn), computed from the log-weights (log-sum-exp, never exp of a log-weight)::

    ∇ L_K(x_n) = Σ_k w̃_kn ∇ log w_kn

so each of the K samples is back-propagated like a VAE sample, scaled by w̃_kn / N instead of
1/N. Through the reparameterization, for row r = (k, n) and the scale s_r = w̃_r / N::

    d loss/d out_r    = s_r · d(−log p(x|z))/d out                     (decoder output)
    d loss/d z_r      = decoder.backward(...) + s_r · z_r                (−log p(z) = ½ z² + c)
    d loss/d mu_n     = Σ_k d loss/d z_kn
    d loss/d logvar_n = Σ_k [ ½ · d loss/d z_kn · σ_n · eps_kn − ½ s_kn ]  (the last: log q's log-det)

K = 1 gives w̃ = 1 and loss = −log p(x|z) + ½Σ_j(z² − eps² − logvar): the ELBO with the KL
estimated from the sample, whose mean over eps is the VAE's analytic KL (tests/test_iwae.py).

Rows of the expanded batch are k-major: row k·N + n holds sample k of example n, so
``reshape(K, N)`` puts the samples of one example in one column.
"""

from __future__ import annotations

from typing import Any

from tinyvae.analysis.metrics import log_mean_exp
from tinyvae.backend import array_module
from tinyvae.models.likelihood import ELBO, check_number
from tinyvae.models.vae import LOGVAR_MAX, LOGVAR_MIN, VAE
from tinyvae.nn.base import Array

__all__ = ["IWAE", "importance_weights"]


def importance_weights(log_w: Array) -> tuple[Array, Array]:
    """L_K per example and the self-normalised weights, from log-weights (K, N).

    Returns bound (N,) = log (1/K Σ_k e^(log w_kn)) and w̃ (K, N) = softmax over k, each column
    summing to 1. Both divide by the largest weight first (log-sum-exp's shift), so no weight is
    ever exponentiated on its own (log-weights of −500 nats are ordinary for 784 pixels, and
    e^−500 is 0 in float32).
    """
    xp = array_module(log_w)
    shifted = xp.exp(log_w - log_w.max(axis=0))                  # w_kn / max_k w_kn ∈ (0, 1], (K, N)
    return log_mean_exp(log_w, axis=0), shifted / shifted.sum(axis=0)


def log_prior_ratio(z: Array, eps: Array, logvar: Array) -> tuple[Array, Array, Array]:
    """log p(z) − log q(z|x) per row, for z = mu + σ·eps, with its two explicit gradients.

    z, eps, logvar: (R, J). Returns value (R,) = ½ Σ_j (eps² + logvar − z²), d/dz = −z (R, J) and
    d/dlogvar = ½ (R, J) at fixed z and eps. The ½ is log q's log-determinant, −Σ_j log σ_j: the
    change of variables from eps to z. (The reparameterization's own path, z's dependence on mu
    and logvar, is Reparameterize.backward's.)
    """
    xp = array_module(z)
    value = 0.5 * (eps * eps + logvar - z * z).sum(axis=1)
    return value, -z, xp.full_like(logvar, 0.5)


class IWAE(VAE):
    """A VAE trained on the importance-weighted bound L_K (``k`` samples per example).

    Takes the VAE's arguments except β and free bits (they weigh an analytic KL term that L_K
    does not have), plus ``k`` ≥ 1. ``draw_noise(rng, n)`` gives eps (k·n, J); ``forward``
    returns, per example, the mean reconstruction NLL over the k samples and the analytic KL
    (so the trainer's report, recon + KL, stays the ELBO), and ``loss`` is −L_K.
    """

    def __init__(self, *args: Any, k: int = 5, **kwargs: Any) -> None:
        for name in ("beta", "free_bits"):
            default = 1.0 if name == "beta" else 0.0
            if kwargs.get(name, default) != default:
                raise ValueError(f"the IWAE bound has no KL term to weigh: {name} must stay {default:g}")
        self.k = check_number("k (samples per example)", k, minimum=1, integer=True)
        super().__init__(*args, **kwargs)

    def config(self) -> dict[str, Any]:
        config = super().config()
        del config["beta"], config["free_bits"]
        return {**config, "k": self.k}

    def splits_over_examples(self) -> bool:
        """Not offered: its noise is k-major (k·n, J), not one row per example."""
        return False

    def draw_noise(self, rng: Any, n: int) -> Array:
        """eps (k·n, J) ~ N(0, I): k samples for each of the n examples, k-major."""
        return rng.standard_normal((self.k * n, self.latent_dim), dtype=self.dtype)

    def forward(self, x: Array, eps: Array | None = None, check_finite: bool = True,
                labels: Any = None) -> tuple[Array, Array]:
        """Per-example mean reconstruction NLL and analytic KL, each (N,); caches L_K and
        what backward needs."""
        xp, K, J = self.xp, self.k, self.latent_dim
        x = self._check_batch(x, check_finite)
        self._take_labels(labels, x.shape[0], check_finite)
        N = x.shape[0]
        h = self.encoder.forward(x)                              # (N, 2J)
        mu, logvar_raw = h[:, :J], h[:, J:]
        logvar = xp.clip(logvar_raw, LOGVAR_MIN, LOGVAR_MAX)
        if eps is not None:
            eps = xp.asarray(eps, dtype=self.dtype)
        mu_k, logvar_k = xp.tile(mu, (K, 1)), xp.tile(logvar, (K, 1))   # (K·N, J): the batch expanded K times
        z = self.reparam.forward(mu_k, logvar_k, eps, self.rng)  # (K·N, J)
        out = self.decoder.forward(z)                            # (K·N, D) or (K·N, 2D)
        recon, self._dout = self._recon_nll(out, xp.tile(x, (K, 1)))   # (K·N,)
        ratio, self._dratio_dz, self._dratio_dlogvar = log_prior_ratio(z, self.reparam.eps, logvar_k)
        log_w = (ratio - recon).reshape(K, N)                    # log p(x|z) + log p(z) − log q(z|x), (K, N)
        self._bound, weights = importance_weights(log_w)         # (N,), (K, N)
        self._scale = (weights * (1.0 / N)).reshape(K * N, 1)    # s_r = w̃_r / N, (K·N, 1)
        self._unclamped = (logvar_raw > LOGVAR_MIN) & (logvar_raw < LOGVAR_MAX)
        kl = self.ops.gaussian_kl(mu, logvar)[0]                    # (N,), reported only
        return recon.reshape(K, N).mean(axis=0), kl

    def backward(self) -> None:
        """Fill params.grad with d(−1/N Σ_n L_K(x_n))/dθ for the batch cached by forward()."""
        ### BEGIN SOLUTION
        K, s = self.k, self._scale                               # s: (K·N, 1)
        dz = self.decoder.backward(self._dout * s)               # (K·N, J), through −log p(x|z)
        dz = dz - s * self._dratio_dz                            # through −log p(z)
        dmu, dlogvar = self.reparam.backward(dz)                 # through z = mu + σ·eps
        dlogvar = dlogvar - s * self._dratio_dlogvar             # through +log q(z|x): its log-det
        N = dmu.shape[0] // K
        dmu = dmu.reshape(K, N, -1).sum(axis=0)                  # (N, J): the K copies share mu
        dlogvar = dlogvar.reshape(K, N, -1).sum(axis=0) * self._unclamped
        self.encoder.backward(self.xp.concatenate([dmu, dlogvar], axis=1))
        ### END SOLUTION

    def _elbo(self, recon: Array, kl: Array) -> ELBO:
        """The objective −mean L_K, with the mean reconstruction NLL and KL beside it."""
        return ELBO(-self._bound.mean(), recon.mean(), kl.mean())

    def __repr__(self) -> str:
        return (f"IWAE({self._describe()}, k={self.k}, {self.dtype.name}, {self.backend.name}, "
                f"{self.params.size:,} parameters)")
