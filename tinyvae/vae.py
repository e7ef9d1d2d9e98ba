"""The Variational Autoencoder (Kingma & Welling 2014).

    x ──encoder──▶ (mu, logvar) ──reparameterize──▶ z ──decoder──▶ p(x|z)
  (N, D)            (N, J) (N, J)                (N, J)        (N, D) logits or mean

The training objective is the negative ELBO, summed over pixels and latent dimensions
and averaged over the batch (nats per example, the number papers report)::

    loss = 1/N Σ_n [ −log p(x_n | z_n)  +  β · KL( q(z | x_n) ‖ N(0, I) ) ]
                     └── reconstruction ┘     └────── KL, analytic ──────┘

with z_n = mu_n + exp(½·logvar_n) · eps_n and eps_n ~ N(0, I).
β = 1 is the plain VAE; β ≠ 1 is the β-VAE (Higgins et al. 2017).

The encoder is one MLP whose last layer outputs 2·J numbers: the first J are mu, the
last J are logvar (the same as two separate heads, in one matrix product).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from tinyvae.activations import ACTIVATIONS, sigmoid
from tinyvae.backend import Backend, get_backend
from tinyvae.base import Array
from tinyvae.layers import mlp
from tinyvae.losses import bernoulli_nll, gaussian_kl, gaussian_nll, gaussian_nll_learned
from tinyvae.ops import FusedReparameterize, fused_bernoulli_nll, fused_gaussian_kl
from tinyvae.params import Parameters
from tinyvae.reparam import Reparameterize

LIKELIHOODS = ("bernoulli", "gaussian")

# logvar is clamped to this range before use: exp(½·20) stays far from float32 overflow
# and exp(−30) from underflow. Where the clamp is active the gradient is 0, which is
# the true derivative of clip(); the gradient stays honest.
LOGVAR_MIN, LOGVAR_MAX = -30.0, 20.0


class ELBO(NamedTuple):
    """Batch-averaged negative ELBO and its parts, in nats per example.

    Each is a 0-d array on the model's device: reading it with float() waits for the
    device, so a training loop should add them up on the device and read them rarely.
    """

    loss: Array   # recon + beta · kl
    recon: Array  # −E_q[log p(x|z)], one-sample estimate
    kl: Array     # KL(q(z|x) ‖ p(z)), analytic


class VAE:
    """A VAE with MLP encoder and decoder and a Bernoulli or Gaussian likelihood.

    input_dim:   D, pixels per example (784 for MNIST)
    hidden:      hidden layer sizes of the encoder; the decoder mirrors them
    latent_dim:  J, size of z
    activation:  one of tinyvae.activations.ACTIVATIONS
    likelihood:  "bernoulli" (decoder outputs logits) or "gaussian" (decoder outputs the mean)
    sigma:       for "gaussian": the fixed standard deviation of p(x|z), or None to learn
                 a per-pixel log-variance (the decoder then outputs 2·D numbers)
    beta:        weight of the KL term
    dtype:       "float32" to train, "float64" for gradient checks
    init:        weight initialization of every Linear layer (see tinyvae.layers.Linear);
                 "pytorch", the default, matches pytorch/examples
    backend:     a Backend or its name ("cpu", "gpu", "auto")
    seed:        initial weights come from this seed (on the host, so every device agrees);
                 noise for eps from a generator seeded with [seed, 1] on the device

    The default is pytorch/examples' VAE: 784-400-20-400-784, ReLU, Bernoulli.
    """

    def __init__(
        self,
        input_dim: int = 784,
        hidden: tuple[int, ...] | list[int] = (400,),
        latent_dim: int = 20,
        activation: str = "relu",
        likelihood: str = "bernoulli",
        sigma: float | None = 1.0,
        beta: float = 1.0,
        dtype: str = "float32",
        backend: Backend | str = "cpu",
        seed: int = 1,
        init: str = "pytorch",
    ) -> None:
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}: choose one of {', '.join(ACTIVATIONS)}")
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"unknown likelihood {likelihood!r}: choose one of {', '.join(LIKELIHOODS)}")
        hidden = [int(h) for h in hidden]
        if input_dim < 1 or latent_dim < 1 or any(h < 1 for h in hidden):
            raise ValueError(f"sizes must be positive: input_dim={input_dim}, hidden={hidden}, latent_dim={latent_dim}")
        if sigma is not None and not sigma > 0:
            raise ValueError(f"sigma must be positive or None (learned), got {sigma}")
        self.backend = get_backend(backend) if isinstance(backend, str) else backend
        self.xp = self.backend.xp
        self.input_dim, self.hidden, self.latent_dim = int(input_dim), hidden, int(latent_dim)
        self.activation, self.likelihood, self.beta, self.seed = activation, likelihood, float(beta), int(seed)
        self.sigma = None if (likelihood == "gaussian" and sigma is None) else float(sigma or 1.0)
        self.dtype = np.dtype(dtype)

        decoder_out = 2 * input_dim if self.learned_variance else input_dim
        self.init = init
        self.encoder = mlp([input_dim, *hidden, 2 * latent_dim], activation, init)
        self.decoder = mlp([latent_dim, *hidden[::-1], decoder_out], activation, init)
        self.encoder.layers[0].input_grad = False  # nobody needs dL/dx
        self.reparam = Reparameterize()
        self._bernoulli_nll, self._gaussian_kl = bernoulli_nll, gaussian_kl
        if self.backend.is_gpu:   # the same maths as fused kernels, one launch each (tinyvae/ops.py)
            self.reparam = FusedReparameterize()
            self._bernoulli_nll, self._gaussian_kl = fused_bernoulli_nll, fused_gaussian_kl
        self.params = Parameters({"encoder": self.encoder, "decoder": self.decoder},
                                 self.backend, self.dtype, seed)
        self.rng = self.backend.rng([self.seed, 1])

    @property
    def learned_variance(self) -> bool:
        return self.likelihood == "gaussian" and self.sigma is None

    def config(self) -> dict[str, Any]:
        """The constructor arguments (JSON-friendly), enough to rebuild the architecture."""
        return {"input_dim": self.input_dim, "hidden": list(self.hidden), "latent_dim": self.latent_dim,
                "activation": self.activation, "likelihood": self.likelihood, "sigma": self.sigma,
                "beta": self.beta, "dtype": self.dtype.name, "seed": self.seed, "init": self.init}

    # ------------------------------------------------------------------ checks
    def _check_batch(self, x: Array, check_finite: bool = True) -> Array:
        """Return x as a (N, D) array of the model's dtype on its device, or raise."""
        x = self.xp.asarray(x, dtype=self.dtype)
        if x.ndim != 2:
            raise ValueError(f"expected a 2-D batch of shape (N, {self.input_dim}), got shape {tuple(x.shape)}")
        if x.shape[1] != self.input_dim:
            raise ValueError(f"expected {self.input_dim} values per example, got shape {tuple(x.shape)}")
        if x.shape[0] == 0:
            raise ValueError("the batch is empty")
        if check_finite and not bool(self.xp.isfinite(x.sum())) and not bool(self.xp.isfinite(x).all()):
            raise ValueError("the batch contains NaN or infinite values")
        return x

    # ------------------------------------------------------------- the parts
    def encode(self, x: Array) -> tuple[Array, Array]:
        """q(z|x): mu and logvar, each (N, J)."""
        h = self.encoder.forward(self._check_batch(x))           # (N, 2J)
        J = self.latent_dim
        return h[:, :J], self.xp.clip(h[:, J:], LOGVAR_MIN, LOGVAR_MAX)

    def decode(self, z: Array) -> Array:
        """The mean of p(x|z), (N, D): pixel probabilities (Bernoulli) or the Gaussian mean."""
        out = self.decoder.forward(self.xp.asarray(z, dtype=self.dtype))
        if self.likelihood == "bernoulli":
            return sigmoid(out)
        return out[:, :self.input_dim]

    def sample(self, n: int, rng: Any = None) -> Array:
        """n images decoded from z ~ N(0, I): (n, D)."""
        rng = rng if rng is not None else self.rng
        return self.decode(rng.standard_normal((n, self.latent_dim), dtype=self.dtype))

    def reconstruct(self, x: Array) -> Array:
        """Decode the posterior mean: (N, D)."""
        mu, _ = self.encode(x)
        return self.decode(mu)

    def nll_given_z(self, x: Array, z: Array) -> Array:
        """−log p(x|z) per row, (N,): row n of x (N, D) scored under the decoder at z[n] (N, J).

        The same likelihood the loss uses; what importance sampling (tinyvae.metrics) needs.
        """
        out = self.decoder.forward(self.xp.asarray(z, dtype=self.dtype))   # (N, D) or (N, 2D)
        return self._recon_nll(out, self._check_batch(x, check_finite=False))[0]

    # ----------------------------------------------------------- the objective
    def _recon_nll(self, out: Array, x: Array) -> tuple[Array, Array]:
        """−log p(x|z) per example (N,) and its gradient w.r.t. the decoder output."""
        if self.likelihood == "bernoulli":
            return self._bernoulli_nll(out, x)
        if self.learned_variance:
            D = self.input_dim
            nll, dmean, dlogvar = gaussian_nll_learned(out[:, :D], out[:, D:], x)
            return nll, self.xp.concatenate([dmean, dlogvar], axis=1)
        return gaussian_nll(out, x, self.sigma)

    def forward(self, x: Array, eps: Array | None = None, check_finite: bool = True) -> tuple[Array, Array]:
        """Per-example reconstruction NLL and KL, each (N,); caches what backward needs."""
        x = self._check_batch(x, check_finite)
        J = self.latent_dim
        h = self.encoder.forward(x)                              # (N, 2J)
        mu, logvar_raw = h[:, :J], h[:, J:]
        logvar = self.xp.clip(logvar_raw, LOGVAR_MIN, LOGVAR_MAX)
        if eps is not None:
            eps = self.xp.asarray(eps, dtype=self.dtype)
        z = self.reparam.forward(mu, logvar, eps, self.rng)      # (N, J)
        out = self.decoder.forward(z)                            # (N, D) or (N, 2D)
        recon, self._dout = self._recon_nll(out, x)
        kl, self._dmu_kl, self._dlogvar_kl = self._gaussian_kl(mu, logvar)
        self._unclamped = (logvar_raw > LOGVAR_MIN) & (logvar_raw < LOGVAR_MAX)
        return recon, kl

    def backward(self) -> None:
        """Fill params.grad with d(loss)/dθ for the batch cached by forward()."""
        N = self._dout.shape[0]
        ### BEGIN SOLUTION
        dout = self._dout * (1.0 / N)                            # d(mean over batch)
        dz = self.decoder.backward(dout)                         # (N, J)
        dmu, dlogvar = self.reparam.backward(dz)                 # through z = mu + std·eps
        dmu = dmu + (self.beta / N) * self._dmu_kl               # plus β · dKL
        dlogvar = (dlogvar + (self.beta / N) * self._dlogvar_kl) * self._unclamped
        self.encoder.backward(self.xp.concatenate([dmu, dlogvar], axis=1))  # (N, 2J)
        ### END SOLUTION

    def loss(self, x: Array, eps: Array | None = None) -> ELBO:
        """The batch-averaged negative ELBO and its parts, without gradients."""
        recon, kl = self.forward(x, eps)
        recon, kl = recon.mean(), kl.mean()
        return ELBO(recon + self.beta * kl, recon, kl)

    def loss_and_grads(self, x: Array, eps: Array | None = None, check_finite: bool = True) -> ELBO:
        """Forward and backward on the batch x (N, D): returns the negative ELBO (averaged
        over the batch) with its parts, and fills ``self.params.grad``.

        eps (N, J) fixes the noise (gradient checks, CPU/GPU parity); otherwise it is drawn
        from ``self.rng``. ``check_finite=False`` skips the NaN scan of x (which reads x
        back on the GPU), for callers whose data cannot hold NaN.
        """
        recon, kl = self.forward(x, eps, check_finite)
        self.backward()
        recon, kl = recon.mean(), kl.mean()
        return ELBO(recon + self.beta * kl, recon, kl)

    def __repr__(self) -> str:
        return (f"VAE({self.input_dim}-{'-'.join(map(str, self.hidden))}-{self.latent_dim}, {self.activation}, "
                f"{self.likelihood}, beta={self.beta}, {self.dtype.name}, {self.backend.name}, "
                f"{self.params.size:,} parameters)")
