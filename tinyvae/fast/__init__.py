"""The fast twins, chosen in ONE place for a backend.

The classes a learner reads (``losses``, ``reparam``, ``optim.Adam._update``) are the
reference maths. Some of them have faster twins that compute the same numbers:

    backend   twin                                         where
    cpu       Adam's update as one Numba-compiled loop     tinyvae/cpu_kernels.py
    gpu       Bernoulli NLL, Gaussian KL, the              tinyvae/fast/cuda_kernels.py
              reparameterization and Adam's update, one
              CUDA kernel each

:func:`twins_for` answers "which code computes each of these on this backend?"; the models
and Adam ask it once, when they are built. Where a twin is missing (Numba not installed, the
student release, where the twins are withheld because they spell out the exercises) the
reference runs instead, so every backend always has a full set. Each twin is tested equal to
its reference: tests/test_optim.py (Numba), tests/test_cuda_kernels.py and tests/test_ops.py
(CUDA).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tinyvae.backend import Backend
from tinyvae.cpu_kernels import compiled_adam_update
from tinyvae.fast.cuda_kernels import CudaReparameterize, load_cuda_kernels
from tinyvae.losses import bernoulli_nll, gaussian_kl
from tinyvae.reparam import Reparameterize

__all__ = ["Twins", "twins_for"]


@dataclass(frozen=True)
class Twins:
    """The code that computes each hot spot on one backend (a reference or its fast twin).

    bernoulli_nll(logits, x) -> (nll (N,), dlogits (N, D))             as losses.bernoulli_nll
    gaussian_kl(mu, logvar) -> (kl (N,), dmu (N, J), dlogvar (N, J))   as losses.gaussian_kl
    reparameterize() -> a new Reparameterize (or its twin)
    adam_update(theta, g, m, v, lr_t, eps_t, c1, c2) in place, or None: Adam runs its _update
    name: "reference", "numba" or "cuda": what runs Adam's update, for reports
    """

    bernoulli_nll: Callable[..., Any]
    gaussian_kl: Callable[..., Any]
    reparameterize: Callable[[], Reparameterize]
    adam_update: Callable[..., None] | None
    name: str


REFERENCE = Twins(bernoulli_nll, gaussian_kl, Reparameterize, None, "reference")


def twins_for(backend: Backend) -> Twins:
    """The fastest code this backend has for each hot spot: twins where they exist, else the reference."""
    if not backend.is_gpu:
        adam = compiled_adam_update()
        return REFERENCE if adam is None else Twins(bernoulli_nll, gaussian_kl, Reparameterize, adam, "numba")
    kernels = load_cuda_kernels(backend.xp)
    if kernels is None:                                  # the student release: the twins are withheld
        return REFERENCE
    return Twins(kernels.bernoulli_nll, kernels.gaussian_kl, lambda: CudaReparameterize(kernels),
                 kernels.adam_update, "cuda")
