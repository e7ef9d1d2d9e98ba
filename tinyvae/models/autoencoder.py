"""Deterministic autoencoders: plain, denoising and sparse — to compare their codes with the VAE's.

    x ──corrupt──▶ x̃ ──encoder──▶ h ──decoder──▶ p(x | h)
  (N, D)        (N, D)          (N, J)          (N, D) logits or mean

The objective, averaged over the batch (nats per example, like the VAE's)::

    loss = 1/N Σ_n [ −log p(x_n | decoder(h_n))  +  β · Ω(h)_n ],     h_n = encoder(x̃_n)

* plain (``noise="none"``, ``sparsity="none"``): x̃ = x, no Ω. The code is a point, not a
  distribution: nothing asks nearby codes to decode to similar images, and there is no prior
  to sample from — which is the contrast with the VAE.
* denoising (Vincent et al. 2008): the input is corrupted, the target is the clean x.
      ``noise="gaussian"``: x̃ = x + s·ξ,          ξ ~ N(0, I)     (s = noise_level)
      ``noise="masking"``:  x̃ = x · [u ≥ p],      u ~ U[0, 1)     (p = noise_level: each pixel
                                                                  is zeroed with probability p)
  The noise (ξ or u, (N, D)) is the model's ``draw_noise``; with it fixed the objective is a
  deterministic function of θ, and the corruption has no parameters, so backprop is the plain
  autoencoder's on x̃.
* sparse: Ω is ``sparsity="l1"``, Σ_j |h_nj| (tinyvae.nn.losses.l1_penalty), or ``sparsity="kl"``,
  Σ_j KL(ρ ‖ ρ̂_j) with ρ̂_j the batch-mean activation of unit j (tinyvae.nn.losses.kl_sparsity);
  for "kl" the code passes through a sigmoid so that activations lie in (0, 1).
  β = ``sparsity_weight``, ρ = ``sparsity_target``.

The model keeps the VAE's contract (tinyvae.models.likelihood): ``encode(x)`` returns (h, None),
``forward`` returns (recon, Ω) per example, and the ELBO's ``kl`` field holds Ω's batch mean.
"""

from __future__ import annotations

from typing import Any

from tinyvae.backend import Backend
from tinyvae.models.likelihood import LikelihoodModel, check_number
from tinyvae.nn.activations import Sigmoid
from tinyvae.nn.base import Array
from tinyvae.nn.layers import Sequential
from tinyvae.nn.losses import kl_sparsity, l1_penalty
from tinyvae.nn.params import Parameters

NOISES = ("none", "gaussian", "masking")
SPARSITIES = ("none", "l1", "kl")


def corrupt(x: Array, noise: Array | None, kind: str, level: float) -> Array:
    """x̃ from x (N, D) and the noise (N, D): x + level·noise ("gaussian"), x·[noise ≥ level] ("masking")."""
    if kind == "none":
        return x
    if kind == "gaussian":
        return x + level * noise
    return x * (noise >= level)


class Autoencoder(LikelihoodModel):
    """A deterministic autoencoder with MLP encoder and decoder; plain, denoising or sparse.

    input_dim, hidden, latent_dim, activation, likelihood, sigma, dtype, backend, seed, init:
                      as for tinyvae.VAE (latent_dim is the size J of the code h)
    noise:            "none", "gaussian" or "masking": the corruption of a denoising autoencoder
    noise_level:      the Gaussian noise's standard deviation s, or the masking probability p
    sparsity:         "none", "l1" or "kl": the sparsity penalty Ω on the code
    sparsity_weight:  β, the weight of Ω (the model's ``beta``; 0 without a penalty)
    sparsity_target:  ρ ∈ (0, 1), the target mean activation for "kl"
    """

    def __init__(self, input_dim: int = 784, hidden: tuple[int, ...] | list[int] = (400,), latent_dim: int = 20,
                 activation: str = "relu", likelihood: str = "bernoulli", sigma: float | None = 1.0,
                 noise: str = "none", noise_level: float = 0.3, sparsity: str = "none",
                 sparsity_weight: float = 0.1, sparsity_target: float = 0.05, dtype: str = "float32",
                 backend: Backend | str = "cpu", seed: int = 1, init: str = "pytorch", arch: str = "dense",
                 image_shape: tuple[int, int, int] | list[int] | None = None,
                 channels: tuple[int, ...] | list[int] = (32, 64)) -> None:
        if noise not in NOISES:
            raise ValueError(f"unknown noise {noise!r}: choose one of {', '.join(NOISES)}")
        if sparsity not in SPARSITIES:
            raise ValueError(f"unknown sparsity {sparsity!r}: choose one of {', '.join(SPARSITIES)}")
        noise_level = check_number("noise_level", noise_level, above=0, below=1 if noise == "masking" else None)
        sparsity_weight = check_number("sparsity_weight", sparsity_weight, minimum=0)
        sparsity_target = check_number("sparsity_target", sparsity_target, above=0, below=1)
        super().__init__(input_dim, hidden, latent_dim, activation, likelihood, sigma, dtype, backend, seed, init,
                         arch, image_shape, channels)
        self.noise, self.noise_level = noise, float(noise_level)
        self.sparsity, self.sparsity_weight, self.sparsity_target = sparsity, float(sparsity_weight), \
            float(sparsity_target)
        self.encoder = self._encoder(self.latent_dim)
        if sparsity == "kl":
            self.encoder = Sequential(*self.encoder.layers, Sigmoid())   # h ∈ (0, 1): ρ̂ is a rate
        self._no_input_gradient(self.encoder)
        self.params = Parameters({"encoder": self.encoder, "decoder": self.decoder}, self.backend, self.dtype, seed)

    @property
    def beta(self) -> float:
        """The weight of the second term: the sparsity weight, or 0 without a penalty."""
        return self.sparsity_weight if self.sparsity != "none" else 0.0

    def splits_over_examples(self) -> bool:
        """True unless the penalty is the KL sparsity one, whose ρ̂ is the code's mean over the batch."""
        return self.sparsity != "kl"

    def config(self) -> dict[str, Any]:
        """The constructor arguments (JSON-friendly), enough to rebuild the architecture."""
        return {**self._common_config(), "noise": self.noise, "noise_level": self.noise_level,
                "sparsity": self.sparsity, "sparsity_weight": self.sparsity_weight,
                "sparsity_target": self.sparsity_target, "dtype": self.dtype.name, "seed": self.seed,
                "init": self.init}

    def draw_noise(self, rng: Any, n: int) -> Array | None:
        """The corruption noise (n, D): ξ ~ N(0, I) ("gaussian") or u ~ U[0, 1) ("masking"); else None."""
        if self.noise == "gaussian":
            return rng.standard_normal((n, self.input_dim), dtype=self.dtype)
        if self.noise == "masking":
            return rng.random((n, self.input_dim), dtype=self.dtype)
        return None

    # ------------------------------------------------------------- the parts
    def encode(self, x: Array, labels: Any = None) -> tuple[Array, None]:
        """The code h (N, J) of the clean x, and None where a VAE returns logvar."""
        x = self._check_batch(x)
        self._take_labels(labels, x.shape[0])
        return self.encoder.forward(x), None

    def reconstruct(self, x: Array, labels: Any = None) -> Array:
        """Decode the code of the clean x: (N, D)."""
        return self.decode(self.encode(x, labels)[0])

    def sample(self, n: int, rng: Any = None, labels: Any = None) -> Array:
        raise ValueError("an autoencoder has no prior p(z) to sample from; train a VAE (--model vae) to sample")

    # ----------------------------------------------------------- the objective
    def forward(self, x: Array, noise: Array | None = None, check_finite: bool = True,
                labels: Any = None) -> tuple[Array, Array]:
        """Per-example reconstruction NLL of the clean x and the penalty Ω, each (N,); caches for backward.

        ``noise`` (N, D) fixes the corruption; a denoising model draws it from ``self.rng`` when None.
        """
        x = self._check_batch(x, check_finite)
        self._take_labels(labels, x.shape[0])
        if noise is None and self.noise != "none":
            noise = self.draw_noise(self.rng, x.shape[0])
        x_tilde = corrupt(x, None if noise is None else self.xp.asarray(noise, dtype=self.dtype), self.noise,
                          self.noise_level)
        code = self.encoder.forward(x_tilde)                     # (N, J)
        out = self.decoder.forward(code)                         # (N, D) or (N, 2D)
        recon, self._dout = self._recon_nll(out, x)              # the target is the clean x
        if self.sparsity == "l1":
            penalty, self._dpenalty = l1_penalty(code)
        elif self.sparsity == "kl":
            penalty, self._dpenalty = kl_sparsity(code, self.sparsity_target)
        else:
            penalty, self._dpenalty = self.xp.zeros(x.shape[0], dtype=self.dtype), None
        return recon, penalty

    def backward(self) -> None:
        """Fill params.grad with d(loss)/dθ for the batch cached by forward()."""
        N = self._dout.shape[0]
        dcode = self.decoder.backward(self._dout / N)            # (N, J): through the decoder
        if self._dpenalty is not None:
            dcode = dcode + (self.kl_term_weight() / N) * self._dpenalty
        self.encoder.backward(dcode)                             # (through the sigmoid, for "kl")

    def __repr__(self) -> str:
        kinds = [f"{self.noise} noise {self.noise_level}"] if self.noise != "none" else []
        kinds += [f"{self.sparsity} sparsity {self.sparsity_weight}"] if self.sparsity != "none" else []
        return (f"Autoencoder({self._describe()}{''.join(', ' + k for k in kinds)}, {self.dtype.name}, "
                f"{self.backend.name}, {self.params.size:,} parameters)")
