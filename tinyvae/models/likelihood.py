"""What every tinyvae model shares: the batch check and the decoder with its likelihood p(x|z).

    z (N, J) ──decoder──▶ out ──▶ p(x | z)
                          (N, D) logits              Bernoulli
                          (N, D) mean                Gaussian, fixed σ
                          (N, 2D) mean | log σ²      Gaussian, learned per-pixel variance

The VAE (tinyvae.models.vae), the conditional VAE (tinyvae.models.cvae) and the autoencoders
(tinyvae.models.autoencoder) differ in their encoders and objectives; they build on
:class:`LikelihoodModel` for the rest. A model's contract, which the trainer, the
checkpoints and the evaluation rely on:

    backend, xp, dtype, input_dim, latent_dim, params, beta
    conditional, generative                    class attributes: takes labels; has a prior to sample
    config()                                   JSON-friendly constructor arguments that rebuild it
    draw_noise(rng, n)                         the step's randomness (VAE: eps (n, J); plain AE: None)
    forward(x, noise, check_finite, labels=None) -> (recon (N,), second term (N,)), and backward()
    loss(x, noise, labels=None), loss_and_grads(x, noise, check_finite, labels=None) -> ELBO
                                               here, once: batch means, recon + kl_term_weight()·term
    encode(x, labels=None), decode(z, labels=None), reconstruct(x, labels=None), nll_given_z(x, z, labels=None)

``labels`` are only for conditional models; an unconditional one refuses them.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from tinyvae.backend import Backend, get_backend
from tinyvae.fast import twins_for
from tinyvae.nn.activations import ACTIVATIONS, sigmoid
from tinyvae.nn.base import Array
from tinyvae.nn.conv import Conv2d
from tinyvae.nn.conv_nets import conv_features, conv_sides, conv_stack, conv_transpose_stack
from tinyvae.nn.layers import Linear, Sequential, mlp
from tinyvae.nn.losses import gaussian_nll, gaussian_nll_learned

LIKELIHOODS = ("bernoulli", "gaussian")
ARCHS = ("dense", "conv")            # the networks: MLPs, or convolutions then MLPs (tinyvae.nn.conv_nets)
DTYPES = ("float32", "float64")      # float32 to train, float64 for gradient checks


class ELBO(NamedTuple):
    """Batch-averaged negative ELBO and its parts, in nats per example.

    ``loss`` is the objective whose gradient ``loss_and_grads`` computes: recon + β·kl, or,
    with KL annealing (weight w) or free bits (λ), recon + β·w·Σ_j max(λ, KL_j). The trainer
    reports recon + β·kl, the true β-weighted objective, either way.
    For an autoencoder ``kl`` holds its second term: the sparsity penalty (0 without one).

    Each is a 0-d array on the model's device: reading it with float() waits for the
    device, so a training loop should add them up on the device and read them rarely.
    """

    loss: Array   # the objective: recon + beta · kl by default
    recon: Array  # −E_q[log p(x|z)], one-sample estimate
    kl: Array     # KL(q(z|x) ‖ p(z)), analytic


def check_number(name: str, value: Any, *, minimum: float | None = None, above: float | None = None,
                 below: float | None = None, integer: bool = False) -> Any:
    """``value`` as a float (or an int with ``integer``), or a ValueError that names the argument and its range.

    NaN and infinity are always refused: ``check_number("beta", -1, minimum=0)`` raises
    "beta must be a finite number ≥ 0, got -1".
    """
    bounds = [f"≥ {minimum:g}" if minimum is not None else "", f"> {above:g}" if above is not None else "",
              f"< {below:g}" if below is not None else ""]
    allowed = f"{'a whole' if integer else 'a finite'} number {' and '.join(b for b in bounds if b)}".rstrip()
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or (integer and not float(value).is_integer()):
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    number = float(value)
    if not (math.isfinite(number) and (minimum is None or number >= minimum) and (above is None or number > above)
            and (below is None or number < below)):
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return int(value) if integer else number


class LikelihoodModel:
    """The shared half of a model: checks, sizes, the decoder and −log p(x|z).

    Subclasses build their encoder with :meth:`_encoder` and bind both networks to one
    Parameters. ``self.ops`` holds the code that computes the hot spots on this backend
    (bernoulli_nll, gaussian_kl, reparameterize): the reference maths of tinyvae.nn.losses and
    tinyvae.nn.reparam, or a faster twin that computes the same numbers, chosen in one place
    (tinyvae.fast.twins_for).

    ``arch`` chooses the networks: "dense" (MLPs with the ``hidden`` sizes) or "conv"
    (tinyvae.nn.conv_nets: convolutions with ``channels`` over images of ``image_shape`` (C, H, W),
    then dense layers of the ``hidden`` sizes). The data stay rows (N, D) either way.
    """

    conditional = False     # True: every network call takes labels (N,)
    generative = False      # True: a prior p(z), so sample(n) draws new images

    def __init__(self, input_dim: int, hidden: tuple[int, ...] | list[int], latent_dim: int, activation: str,
                 likelihood: str, sigma: float | None, dtype: str, backend: Backend | str, seed: int,
                 init: str, arch: str = "dense", image_shape: Sequence[int] | None = None,
                 channels: Sequence[int] = (32, 64)) -> None:
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}: choose one of {', '.join(ACTIVATIONS)}")
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"unknown likelihood {likelihood!r}: choose one of {', '.join(LIKELIHOODS)}")
        input_dim = check_number("input_dim", input_dim, minimum=1, integer=True)
        latent_dim = check_number("latent_dim", latent_dim, minimum=1, integer=True)
        hidden = [check_number("each hidden size", h, minimum=1, integer=True) for h in hidden]
        seed = check_number("seed", seed, minimum=0, integer=True)
        if sigma is not None:
            sigma = check_number("sigma (or None: learned)", sigma, above=0)
        try:
            dtype = np.dtype(dtype).name
        except TypeError:
            dtype = repr(dtype)
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype}")
        self.backend = get_backend(backend) if isinstance(backend, str) else backend
        self.xp = self.backend.xp
        self.input_dim, self.hidden, self.latent_dim = int(input_dim), hidden, int(latent_dim)
        self.activation, self.likelihood, self.seed = activation, likelihood, int(seed)
        self.sigma = None if (likelihood == "gaussian" and sigma is None) else float(sigma or 1.0)
        self.dtype = np.dtype(dtype)
        self.init = init
        self.arch, self.image_shape, self.channels = self._check_arch(arch, image_shape, channels)
        self.decoder = self._decoder()
        self.rng = self.backend.rng([self.seed, 1])
        self.ops = twins_for(self.backend)

    @property
    def learned_variance(self) -> bool:
        return self.likelihood == "gaussian" and self.sigma is None

    def _check_arch(self, arch: str, image_shape: Sequence[int] | None,
                    channels: Sequence[int]) -> tuple[str, tuple[int, ...] | None, tuple[int, ...]]:
        if arch not in ARCHS:
            raise ValueError(f"unknown arch {arch!r}: choose one of {', '.join(ARCHS)}")
        channels = tuple(check_number("each channels entry", c, minimum=1, integer=True) for c in channels)
        if arch == "dense":
            return arch, None, channels
        if image_shape is None or len(image_shape) != 3 or int(np.prod(image_shape)) != self.input_dim:
            raise ValueError(f"arch='conv' needs image_shape (C, H, W) with C·H·W = input_dim = {self.input_dim}, "
                             f"got {image_shape}")
        if not channels:
            raise ValueError("arch='conv' needs at least one channels entry")
        image_shape = tuple(check_number("each image_shape entry", n, minimum=1, integer=True) for n in image_shape)
        conv_sides(image_shape, len(channels))                    # refuses images too small for the stack
        return arch, image_shape, channels

    def _network(self, sizes: list[int]) -> Sequential:
        """An MLP with these layer sizes (the conditional VAE widens the input for the labels)."""
        return mlp(sizes, self.activation, self.init)

    def _encoder(self, out_dim: int) -> Sequential:
        """x (N, D) → (N, out_dim): an MLP, or (arch "conv") convolutions then an MLP over their F features."""
        if self.arch == "conv":
            stack, features = conv_stack(self.image_shape, self.channels, self.activation, self.init)
            return Sequential(*stack.layers, *self._network([features, *self.hidden, out_dim]).layers)
        return self._network([self.input_dim, *self.hidden, out_dim])

    def _decoder(self) -> Sequential:
        """z (N, J) → the decoder's output (N, D), or (N, 2D) with a learned variance; with arch "conv"
        an MLP to the F features of the last feature maps, then transposed convolutions."""
        per_pixel = 2 if self.learned_variance else 1
        if self.arch == "conv":
            head = self._network([self.latent_dim, *self.hidden[::-1], conv_features(self.image_shape, self.channels)])
            tail = conv_transpose_stack(self.image_shape, self.channels, per_pixel * self.image_shape[0],
                                        self.activation, self.init)
            return Sequential(*head.layers, *tail.layers)
        return self._network([self.latent_dim, *self.hidden[::-1], per_pixel * self.input_dim])

    @staticmethod
    def _no_input_gradient(network: Sequential) -> None:
        """Skip dL/dx in the network's first layer with weights: nobody needs the gradient w.r.t. the data."""
        next(layer for layer in network.layers if isinstance(layer, (Linear, Conv2d))).input_grad = False

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
        if check_finite and self.likelihood == "bernoulli":
            low, high = float(x.min()), float(x.max())
            if low < 0 or high > 1:
                raise ValueError(f"a Bernoulli likelihood models pixel values in [0, 1], got values from {low:g} "
                                 f"to {high:g}: scale the images first (uint8 pixels: x / 255) or use "
                                 f"likelihood='gaussian'")
        return x

    def _take_labels(self, labels: Any, n: int, check: bool = True) -> None:
        """Conditional models store the labels of the next n rows here; this one has none to take."""
        if labels is not None:
            raise ValueError(f"{type(self).__name__} is not conditional: labels are only for the ConditionalVAE")

    # --------------------------------------------------------------- decoding
    def decode(self, z: Array, labels: Any = None) -> Array:
        """The mean of p(x|z), (N, D): pixel probabilities (Bernoulli) or the Gaussian mean."""
        z = self.xp.asarray(z, dtype=self.dtype)
        self._take_labels(labels, z.shape[0])
        out = self.decoder.forward(z)
        if self.likelihood == "bernoulli":
            return sigmoid(out)
        return out[:, :self.input_dim]

    def nll_given_z(self, x: Array, z: Array, labels: Any = None) -> Array:
        """−log p(x|z) per row, (N,): row n of x (N, D) scored under the decoder at z[n] (N, J).

        The same likelihood the loss uses; what importance sampling (tinyvae.analysis.metrics) needs.
        """
        z = self.xp.asarray(z, dtype=self.dtype)
        self._take_labels(labels, z.shape[0])
        out = self.decoder.forward(z)                            # (N, D) or (N, 2D)
        return self._recon_nll(out, self._check_batch(x, check_finite=False))[0]

    def _recon_nll(self, out: Array, x: Array) -> tuple[Array, Array]:
        """−log p(x|z) per example (N,) and its gradient w.r.t. the decoder output."""
        if self.likelihood == "bernoulli":
            return self.ops.bernoulli_nll(out, x)
        if self.learned_variance:
            D = self.input_dim
            nll, dmean, dlogvar = gaussian_nll_learned(out[:, :D], out[:, D:], x)
            return nll, self.xp.concatenate([dmean, dlogvar], axis=1)
        return gaussian_nll(out, x, self.sigma)

    # ----------------------------------------------------------- the objective
    def loss(self, x: Array, noise: Array | None = None, labels: Any = None) -> ELBO:
        """The batch-averaged objective and its parts, without gradients."""
        return self._elbo(*self.forward(x, noise, labels=labels))

    def loss_and_grads(self, x: Array, noise: Array | None = None, check_finite: bool = True,
                       labels: Any = None) -> ELBO:
        """Forward and backward on the batch x (N, D): returns the objective (averaged over the
        batch) with its parts, and fills ``self.params.grad``.

        ``noise`` fixes the step's randomness (a VAE's eps (N, J), a denoising autoencoder's
        corruption (N, D): gradient checks, CPU/GPU parity); when None the model draws it from
        ``self.rng``. ``check_finite=False`` skips the NaN scan of x (which reads x back on the
        GPU), for callers whose data cannot hold NaN.
        """
        parts = self.forward(x, noise, check_finite, labels=labels)
        self.backward()
        return self._elbo(*parts)

    def splits_over_examples(self) -> bool:
        """True when the objective is a batch mean of per-example terms, L = 1/N Σ_n ℓ_n, so that a
        batch's gradient is the size-weighted mean of its parts' gradients (what lets
        tinyvae/fast/data_parallel.py give each CPU core a part of the batch). False here; a model
        says True only where no term couples the examples of a batch (free bits' batch-mean KL_j
        and the KL sparsity penalty's mean activation ρ̂ do)."""
        return False

    def kl_term_weight(self) -> float:
        """The weight of the second term in the objective (the VAE's KL, an autoencoder's Ω): β."""
        return self.beta

    def _elbo(self, recon: Array, kl: Array) -> ELBO:
        """Batch means of the two per-example terms (N,), and the objective recon + weight · term."""
        recon, kl = recon.mean(), kl.mean()
        return ELBO(recon + self.kl_term_weight() * self._penalized(kl), recon, kl)

    def _penalized(self, kl: Array) -> Array:
        """The batch mean of the second term as the objective counts it: the reported one by default."""
        return kl

    def _common_config(self) -> dict[str, Any]:
        config = {"input_dim": self.input_dim, "hidden": list(self.hidden), "latent_dim": self.latent_dim,
                  "activation": self.activation, "likelihood": self.likelihood, "sigma": self.sigma}
        if self.arch == "conv":
            config.update(arch="conv", image_shape=list(self.image_shape), channels=list(self.channels))
        return config

    def _describe(self) -> str:
        """The architecture in one phrase, for __repr__."""
        if self.arch == "conv":
            shape = "×".join(map(str, self.image_shape))
            layers = "-".join(map(str, [f"{shape} conv {'-'.join(map(str, self.channels))}", *self.hidden]))
            return f"{layers}-{self.latent_dim}, {self.activation}, {self.likelihood}"
        return (f"{self.input_dim}-{'-'.join(map(str, self.hidden))}-{self.latent_dim}, {self.activation}, "
                f"{self.likelihood}")
