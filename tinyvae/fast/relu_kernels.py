"""ReLU's forward and backward as compiled loops (Numba): the CPU twin of ``activations.ReLU``.

The reference (tinyvae/nn/activations.py) is two NumPy passes forward (the mask ``x > 0``, then
``x * mask``, which casts the boolean mask to floats on the way) and one backward
(``dy * mask``). Backward is slow when dy and the mask lie in memory in different orders: in a
convolutional network the feature maps are NCHW views of channels-last memory (tinyvae.nn.im2col),
while a gradient that comes back through a flatten is plain NCHW, and NumPy then walks one of
the two with large strides. ``CompiledReLU`` does each direction in one compiled pass over
memory; when dy and the mask lie in different orders it first copies them into C order (where
NumPy would put ``dy * mask``). So its outputs lie in memory as the reference's do (y as x; dx
as dy and the mask where they agree, else C order), and the sums and products downstream see
the same layout and give the same bits too.

Same arithmetic as the reference: y = x · [x > 0] and dx = dy · [x > 0], a multiplication by
exactly 1 or 0, so the two give the same bits, −0 for negative x and NaN for NaN included
(``tests/test_conv_twins.py`` checks it). :func:`tinyvae.fast.activation_layer` is the one place that chooses:
the conv networks (tinyvae.nn.conv_nets) ask it for their activations. Without Numba, on CuPy
arrays, and in the student release (which leaves this file out: it spells out A1's ReLU) the
reference runs. Measurements: docs/benchmarks.md.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from functools import cache
from typing import NamedTuple

import numpy as np

from tinyvae.nn.activations import ReLU
from tinyvae.nn.base import Array


def relu_forward(x: np.ndarray, y: np.ndarray, mask: np.ndarray) -> None:
    """mask = [x > 0] and y = x · mask, element by element; all three (P,), written in place."""
    for i in range(x.shape[0]):
        mask[i] = x[i] > 0
        y[i] = x[i] * mask[i]


def relu_backward(dy: np.ndarray, mask: np.ndarray, dx: np.ndarray) -> None:
    """dx = dy · mask, element by element; all three (P,), dx written in place."""
    for i in range(dy.shape[0]):
        dx[i] = dy[i] * mask[i]


class ReluKernels(NamedTuple):
    forward: Callable[[np.ndarray, np.ndarray, np.ndarray], None]
    backward: Callable[[np.ndarray, np.ndarray, np.ndarray], None]


@cache
def compiled_relu() -> ReluKernels | None:
    """The two loops compiled by Numba (cached on disk where a folder can be written), or None without Numba."""
    try:
        import numba
    except ImportError:
        return None
    loops = relu_forward, relu_backward
    with contextlib.suppress(RuntimeError):        # raised where no folder for the cache can be written
        return ReluKernels(*(numba.njit(cache=True, nogil=True)(f) for f in loops))
    return ReluKernels(*(numba.njit(nogil=True)(f) for f in loops))


def in_memory_order(a: Array) -> np.ndarray | None:
    """A NumPy array's numbers as a flat view, in the order they lie in memory; None if they do not fill
    one block (or ``a`` is not a NumPy array)."""
    if not isinstance(a, np.ndarray):
        return None
    order = sorted(range(a.ndim), key=lambda axis: -a.strides[axis])
    t = a.transpose(order)
    return t.reshape(-1) if t.flags.c_contiguous else None


class CompiledReLU(ReLU):
    """:class:`tinyvae.nn.activations.ReLU` with its two passes compiled; the reference where they cannot run."""

    def __init__(self, kernels: ReluKernels) -> None:
        self.kernels = kernels

    def forward(self, x: Array) -> Array:
        flat_x = in_memory_order(x)
        if flat_x is None:
            return super().forward(x)
        y, self.mask = np.empty_like(x), np.empty_like(x, dtype=bool)    # x's memory order (order="K")
        self.kernels.forward(flat_x, in_memory_order(y), in_memory_order(self.mask))
        return y

    def backward(self, dy: Array) -> Array:
        mask = self.mask
        if not isinstance(dy, np.ndarray) or dy.shape != mask.shape or in_memory_order(mask) is None:
            return super().backward(dy)                                  # (a wrong shape: NumPy's own error)
        if element_strides(dy) != element_strides(mask):          # NumPy's dy * mask is then C-ordered:
            dy, mask = np.ascontiguousarray(dy), np.ascontiguousarray(mask)   # so is dx (same sums downstream)
        flat_dy = in_memory_order(dy)
        if flat_dy is None:
            return super().backward(dy)
        dx = np.empty_like(mask, dtype=dy.dtype)                        # the order dy and the mask share
        self.kernels.backward(flat_dy, in_memory_order(mask), in_memory_order(dx))
        return dx


def element_strides(a: np.ndarray) -> tuple[int, ...]:
    """Strides in numbers, not bytes: equal for two arrays of one shape exactly when they lie in one memory order."""
    return tuple(stride // a.itemsize for stride in a.strides)
