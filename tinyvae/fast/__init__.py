"""The fast twins, chosen in ONE place for a backend.

The classes a learner reads (``losses``, ``reparam``, ``optim.Adam._update``, ``im2col``) are
the reference maths. Some of them have faster twins that compute the same numbers:

    backend   twin                                         where
    cpu       Adam's update as one Numba-compiled loop     tinyvae/fast/cpu_kernels.py
    cpu       im2col's copy and col2im's scatter-add,      tinyvae/fast/conv_kernels.py
              one Numba loop each
    cpu       ReLU (in the conv networks), Numba loops     tinyvae/fast/relu_kernels.py
    cpu       Conv2d and ConvTranspose2d (in the conv      tinyvae/fast/conv_blocks.py
              networks), a block of examples at a time
    cpu       a conv model's loss_and_grads, the batch     tinyvae/fast/data_parallel.py
              split over the cores, one thread each
    gpu       Bernoulli NLL, Gaussian KL, the              tinyvae/fast/cuda_kernels.py
              reparameterization and Adam's update, one
              CUDA kernel each

:func:`twins_for` answers "which code computes each of these on this backend?"; the models and
Adam ask it once, when they are built. :func:`conv_twins`, :func:`conv_layer_classes` and
:func:`activation_layer` answer the same for the convolution's im2col and col2im, the conv
networks' convolution layers and their ReLU, which the layers and networks ask when they are
built; :func:`split_step` for a conv model's whole step, which the trainer asks once. Where a
twin is missing (Numba not installed; the student release, which does not ship the twins' files
because they spell out the exercises) the reference runs instead, so every backend always has a
full set. Each twin is tested equal to its reference: tests/test_optim.py, tests/test_conv.py,
tests/test_conv_twins.py and tests/test_conv_blocks.py (Numba), tests/test_data_parallel.py
(threads), tests/test_cuda_kernels.py and tests/test_ops.py (CUDA).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from types import ModuleType
from typing import Any

from tinyvae.backend import Backend
from tinyvae.nn.activations import make_activation
from tinyvae.nn.base import Layer
from tinyvae.nn.losses import bernoulli_nll, gaussian_kl
from tinyvae.nn.reparam import Reparameterize

__all__ = ["REFERENCE", "Twins", "activation_layer", "blas_threads", "conv_layer_classes", "conv_twins", "shipped",
           "split_step", "twins_for", "usable_cores"]

HERE = Path(__file__).resolve().parent                  # tinyvae/fast
MIN_SHARE = 32          # rows: the split step gives each core at least this many of a batch,
MIN_SHARE_PIXELS = 16384  # and at least this many input numbers (rows × pixels): docs/benchmarks.md


def shipped(module: str) -> ModuleType | None:
    """The twin module ``tinyvae.fast.<module>`` if this copy of tinyvae has its file, else None (the
    student release leaves the twins' files out; asking the file, not the import system, also
    keeps an installed tinyvae elsewhere from answering for a missing one)."""
    if not (HERE / f"{module}.py").is_file():
        return None
    return importlib.import_module(f"tinyvae.fast.{module}")


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
        cpu_kernels = shipped("cpu_kernels")
        adam = None if cpu_kernels is None else cpu_kernels.compiled_adam_update()     # None without Numba
        return REFERENCE if adam is None else Twins(bernoulli_nll, gaussian_kl, Reparameterize, adam, "numba")
    cuda_kernels = shipped("cuda_kernels")
    if cuda_kernels is None:
        return REFERENCE
    kernels = cuda_kernels.load_cuda_kernels(backend.xp)
    return Twins(kernels.bernoulli_nll, kernels.gaussian_kl, lambda: cuda_kernels.CudaReparameterize(kernels),
                 kernels.adam_update, "cuda")


def conv_twins() -> Any:
    """im2col's copy and col2im's additions compiled for NumPy arrays (``conv_kernels.ConvKernels``),
    or None: then ``Im2col`` runs its reference code (and always does on the GPU)."""
    conv_kernels = shipped("conv_kernels")
    return None if conv_kernels is None else conv_kernels.compiled_conv_kernels()


def conv_layer_classes() -> tuple[Callable[..., Layer], Callable[..., Layer]]:
    """The constructors of Conv2d and ConvTranspose2d that the conv networks build: the twins that
    work a block of examples at a time (``conv_blocks``), where Numba compiled im2col and col2im;
    else the references themselves."""
    # imported here, not at the top: tinyvae.nn.conv imports this package
    from tinyvae.nn.conv import Conv2d, ConvTranspose2d

    conv_blocks, kernels = shipped("conv_blocks"), conv_twins()
    if conv_blocks is None or kernels is None:
        return Conv2d, ConvTranspose2d
    return (partial(conv_blocks.BlockedConv2d, kernels=kernels),
            partial(conv_blocks.BlockedConvTranspose2d, kernels=kernels))


def activation_layer(name: str) -> Layer:
    """``make_activation(name)``, or its compiled twin where there is one (ReLU, with Numba:
    ``relu_kernels.CompiledReLU``, which runs the reference on CuPy arrays)."""
    relu_kernels = shipped("relu_kernels") if name == "relu" else None
    kernels = None if relu_kernels is None else relu_kernels.compiled_relu()
    return make_activation(name) if kernels is None else relu_kernels.CompiledReLU(kernels)


@cache
def _blas() -> Any:
    """threadpoolctl's handle on the BLAS that NumPy calls, or None (no threadpoolctl: the graders'
    sandbox imports this package without it; or no BLAS it knows)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    controllers = ThreadpoolController().select(user_api="blas").lib_controllers
    return controllers[0] if controllers else None


def blas_threads() -> int:
    """How many threads NumPy's BLAS runs a product on now (1 where that cannot be asked)."""
    blas = _blas()
    return 1 if blas is None else int(blas.get_num_threads())


def usable_cores() -> int:
    """The cores a step may use: those this process may run on (``taskset`` narrows them), and no
    more than the threads BLAS was given (``OPENBLAS_NUM_THREADS=1`` asks for one)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores, blas_threads()))


def split_step(model: Any, batch_size: int, cores: int | None = None) -> Any:
    """``data_parallel.DataParallel``: a convolutional model's training step split over the CPU cores
    (``cores``, by default :func:`usable_cores`), at least ``MIN_SHARE`` rows and ``MIN_SHARE_PIXELS``
    input numbers of a batch each; or None, and the model's own ``loss_and_grads`` runs: on the GPU,
    for a dense model (its products already keep the cores busy: docs/benchmarks.md), for a model
    whose objective does not split over examples (``splits_over_examples``), for small steps (the
    8×8 digits at batch 128), on one core, and in the student release."""
    splits = getattr(model, "splits_over_examples", None)
    if model.backend.is_gpu or getattr(model, "arch", "dense") != "conv" or splits is None or not splits():
        return None
    module = shipped("data_parallel")
    workers = min(usable_cores() if cores is None else cores, batch_size // MIN_SHARE,
                  batch_size * model.input_dim // MIN_SHARE_PIXELS)
    return None if module is None or workers < 2 else module.DataParallel(model, workers)
