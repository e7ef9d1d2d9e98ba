"""The Variational Autoencoder (Kingma & Welling 2014).

    x ──encoder──▶ (mu, logvar) ──reparameterize──▶ z ──decoder──▶ p(x|z)
  (N, D)            (N, J) (N, J)                (N, J)        (N, D) logits or mean

The training objective is the negative ELBO, summed over pixels and latent dimensions
and averaged over the batch (nats per example, the number papers report)::

    loss = 1/N Σ_n [ −log p(x_n | z_n)  +  β · KL( q(z | x_n) ‖ N(0, I) ) ]
                     └── reconstruction ┘     └────── KL, analytic ──────┘

with z_n = mu_n + exp(½·logvar_n) · eps_n and eps_n ~ N(0, I).
β = 1 is the plain VAE; β ≠ 1 is the β-VAE (Higgins et al. 2017).

Two remedies for posterior collapse change the KL term the gradient sees (docs/family.md):

* KL annealing: the trainer sets ``kl_weight`` = w ∈ [0, 1] each step, and the KL term is
  weighted β·w (Bowman et al. 2016; cyclical, Fu et al. 2019);
* free bits (Kingma et al. 2016): ``free_bits`` = λ > 0 replaces Σ_j KL_j by
  Σ_j max(λ, KL_j), KL_j the batch mean of dimension j (tinyvae.nn.losses.free_bits_kl).

The encoder is one MLP whose last layer outputs 2·J numbers: the first J are mu, the
last J are logvar (the same as two separate heads, in one matrix product).
"""

from __future__ import annotations

from typing import Any

from tinyvae.backend import Backend
from tinyvae.models.likelihood import ELBO, LIKELIHOODS, LikelihoodModel, check_number
from tinyvae.nn.base import Array
from tinyvae.nn.losses import free_bits_kl
from tinyvae.nn.params import Parameters

__all__ = ["ELBO", "LIKELIHOODS", "LOGVAR_MAX", "LOGVAR_MIN", "VAE"]

# logvar is clamped to this range before use: exp(½·20) stays far from float32 overflow
# and exp(−30) from underflow. Where the clamp is active the gradient is 0, which is
# the true derivative of clip(); the gradient stays honest.
LOGVAR_MIN, LOGVAR_MAX = -30.0, 20.0


class VAE(LikelihoodModel):
    """A VAE with MLP encoder and decoder and a Bernoulli or Gaussian likelihood.

    input_dim:   D, pixels per example (784 for MNIST)
    hidden:      hidden layer sizes of the encoder; the decoder mirrors them
    latent_dim:  J, size of z
    activation:  one of tinyvae.nn.activations.ACTIVATIONS
    likelihood:  "bernoulli" (decoder outputs logits) or "gaussian" (decoder outputs the mean)
    sigma:       for "gaussian": the fixed standard deviation of p(x|z), or None to learn
                 a per-pixel log-variance (the decoder then outputs 2·D numbers)
    beta:        weight of the KL term
    free_bits:   λ, nats per latent dimension below which the KL is not penalized (0: off)
    dtype:       "float32" to train, "float64" for gradient checks
    init:        weight initialization of every Linear layer (see tinyvae.nn.layers.Linear);
                 "pytorch", the default, matches pytorch/examples
    backend:     a Backend or its name ("cpu", "gpu", "auto")
    arch:        "dense" (MLPs) or "conv": convolutions with ``channels`` over images of
                 ``image_shape`` (C, H, W), then the ``hidden`` dense layers (tinyvae.nn.conv_nets)
    seed:        initial weights come from this seed (on the host, so every device agrees);
                 noise for eps from a generator seeded with [seed, 1] on the device

    ``kl_weight`` (default 1) is training state, not architecture: the trainer's KL
    annealing schedule sets it before each step.

    The default is pytorch/examples' VAE: 784-400-20-400-784, ReLU, Bernoulli.
    """

    generative = True

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
        free_bits: float = 0.0,
        arch: str = "dense",
        image_shape: tuple[int, int, int] | list[int] | None = None,
        channels: tuple[int, ...] | list[int] = (32, 64),
    ) -> None:
        beta = check_number("beta", beta, minimum=0)
        free_bits = check_number("free_bits (nats per dimension)", free_bits, minimum=0)
        super().__init__(input_dim, hidden, latent_dim, activation, likelihood, sigma, dtype, backend, seed, init,
                         arch, image_shape, channels)
        self.beta, self.free_bits, self.kl_weight = float(beta), float(free_bits), 1.0
        self.encoder = self._encoder(2 * self.latent_dim)
        self._no_input_gradient(self.encoder)
        self.reparam = self.ops.reparameterize()                 # z = mu + std·eps (tinyvae.nn.reparam)
        self.params = Parameters({"encoder": self.encoder, "decoder": self.decoder},
                                 self.backend, self.dtype, seed)

    def config(self) -> dict[str, Any]:
        """The constructor arguments (JSON-friendly), enough to rebuild the architecture."""
        return {**self._common_config(), "beta": self.beta, "dtype": self.dtype.name, "seed": self.seed,
                "init": self.init, "free_bits": self.free_bits}

    def draw_noise(self, rng: Any, n: int) -> Array:
        """The step's randomness: eps (n, J) ~ N(0, I), drawn from ``rng`` on the model's device."""
        return rng.standard_normal((n, self.latent_dim), dtype=self.dtype)

    # ------------------------------------------------------------- the parts
    def encode(self, x: Array, labels: Any = None) -> tuple[Array, Array]:
        """q(z|x): mu and logvar, each (N, J)."""
        x = self._check_batch(x)
        self._take_labels(labels, x.shape[0])
        h = self.encoder.forward(x)                              # (N, 2J)
        J = self.latent_dim
        return h[:, :J], self.xp.clip(h[:, J:], LOGVAR_MIN, LOGVAR_MAX)

    def sample(self, n: int, rng: Any = None, labels: Any = None) -> Array:
        """n images decoded from z ~ N(0, I): (n, D)."""
        rng = rng if rng is not None else self.rng
        return self.decode(rng.standard_normal((n, self.latent_dim), dtype=self.dtype), labels)

    def reconstruct(self, x: Array, labels: Any = None) -> Array:
        """Decode the posterior mean: (N, D)."""
        mu, _ = self.encode(x, labels)
        return self.decode(mu, labels)

    # ----------------------------------------------------------- the objective
    def forward(self, x: Array, eps: Array | None = None, check_finite: bool = True,
                labels: Any = None) -> tuple[Array, Array]:
        """Per-example reconstruction NLL and KL, each (N,); caches what backward needs.

        The cached ``_kl_term`` (N,) and its gradients ``_dmu_kl``, ``_dlogvar_kl`` are those of
        the KL term the objective uses: KL, or the free-bits KL when free_bits > 0. Its weight
        β·w is applied by the loss and the gradient alike (:meth:`kl_term_weight`).
        """
        x = self._check_batch(x, check_finite)
        self._take_labels(labels, x.shape[0], check_finite)
        J = self.latent_dim
        h = self.encoder.forward(x)                              # (N, 2J)
        mu, logvar_raw = h[:, :J], h[:, J:]
        logvar = self.xp.clip(logvar_raw, LOGVAR_MIN, LOGVAR_MAX)
        if eps is not None:
            eps = self.xp.asarray(eps, dtype=self.dtype)
        z = self.reparam.forward(mu, logvar, eps, self.rng)      # (N, J)
        out = self.decoder.forward(z)                            # (N, D) or (N, 2D)
        recon, self._dout = self._recon_nll(out, x)
        kl, self._dmu_kl, self._dlogvar_kl = self.ops.gaussian_kl(mu, logvar)
        self._kl_term = kl                                       # (N,) the KL term of the objective
        if self.free_bits > 0:
            self._kl_term, self._dmu_kl, self._dlogvar_kl = free_bits_kl(mu, logvar, self.free_bits)
        self._unclamped = (logvar_raw > LOGVAR_MIN) & (logvar_raw < LOGVAR_MAX)
        return recon, kl

    def backward(self) -> None:
        """Fill params.grad with d(loss)/dθ for the batch cached by forward()."""
        N = self._dout.shape[0]
        ### BEGIN SOLUTION
        dout = self._dout * (1.0 / N)                            # d(mean over batch)
        dz = self.decoder.backward(dout)                         # (N, J)
        dmu, dlogvar = self.reparam.backward(dz)                 # through z = mu + std·eps
        weight = self.kl_term_weight() / N                       # β·w, and the batch mean
        dmu = dmu + weight * self._dmu_kl                        # plus β·w · dKL
        dlogvar = (dlogvar + weight * self._dlogvar_kl) * self._unclamped
        self.encoder.backward(self.xp.concatenate([dmu, dlogvar], axis=1))  # (N, 2J)
        ### END SOLUTION

    def splits_over_examples(self) -> bool:
        """Without free bits the objective is a mean over examples (free bits' KL_j is a batch mean)."""
        return self.free_bits == 0

    def kl_term_weight(self) -> float:
        """The weight of the KL term in the objective, β·w: β (the β-VAE) times w = ``kl_weight``
        (KL annealing; 1 without a schedule). The loss (LikelihoodModel._elbo) and its gradient
        (backward) both use this one number, so they cannot disagree."""
        return self.beta * self.kl_weight

    def _penalized(self, kl: Array) -> Array:
        """The KL term the objective counts: the batch-mean KL, or with free bits Σ_j max(λ, KL_j)."""
        return kl if self.free_bits == 0 else self._kl_term.mean()

    def __repr__(self) -> str:
        extra = f", free_bits={self.free_bits}" if self.free_bits else ""
        return (f"{type(self).__name__}({self._describe()}, beta={self.beta}{extra}, {self.dtype.name}, "
                f"{self.backend.name}, {self.params.size:,} parameters)")
