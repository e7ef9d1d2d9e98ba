"""im2col and col2im: a 2-D convolution as ONE matrix product.

A convolution with a k×k kernel, stride s and zero padding p reads, for every output pixel
(n, u, v), the C·k·k input values of the patch whose top-left corner is (s·u, s·v) in the padded
image. Laid out as rows, those patches form a matrix::

    cols[(n, u, v), (i, j, c)] = x_pad[n, c, s·u + i, s·v + j]          (N·H_out·W_out, k·k·C)

and the convolution is ``cols @ Wᵀ`` with W as the matrix (C_out, k·k·C) whose columns follow
the same (i, j, c) order (:func:`patch_order`). ``im2col`` builds
``cols`` from a strided *view* of the padded image (no Python loop over pixels) and one copy;
``col2im`` is its adjoint: it sends every entry of a ``cols``-shaped matrix back to the pixel it
came from and SUMS where patches overlap, one strided addition per kernel offset (i, j)::

    x_pad[n, c, s·u + i, s·v + j] += cols[(n, u, v), (i, j, c)]      for each of the k·k offsets

so ⟨im2col(x), M⟩ = ⟨x, col2im(M)⟩ for every x and M. The derivation is in
docs/derivations.md ("Convolution").

Output size along one axis: H_out = ⌊(H + 2p − k) / s⌋ + 1.
Works on NumPy and CuPy arrays alike: the array module comes from the input.
"""

from __future__ import annotations

import numpy as np

from tinyvae.backend import array_module
from tinyvae.base import Array
from tinyvae.conv_kernels import ConvKernels, compiled_conv_kernels


def output_size(size: int, kernel_size: int, stride: int, padding: int) -> int:
    """Length of a convolution's output along one axis: ⌊(size + 2p − k) / s⌋ + 1 (≤ 0: empty)."""
    return (size + 2 * padding - kernel_size) // stride + 1


def transposed_output_size(size: int, kernel_size: int, stride: int, padding: int, output_padding: int) -> int:
    """Length of a transposed convolution's output along one axis: (size − 1)·s − 2p + k + output_padding."""
    return (size - 1) * stride - 2 * padding + kernel_size + output_padding


class Im2col:
    """im2col and col2im for one geometry (kernel k, stride s, padding p), with reusable buffers.

    Inside, images are CHANNELS-LAST (NHWC) and a patch's columns run (i, j, c): every copy
    and every addition then moves runs of C neighbouring values, where channels-first would
    jump through memory one value at a time. The arrays handed in and out are NCHW like
    everywhere else (an output is an NCHW view of NHWC memory); :func:`patch_order` puts a
    weight's columns in the same (i, j, c) order.

    ``fast=True`` (the default) lets :meth:`im2col` and :meth:`col2im` run their compiled CPU
    twins (:mod:`tinyvae.conv_kernels`, the same bits) on NumPy arrays where Numba is installed;
    :meth:`twins` is the one place that chooses.

    Each layer owns one. The padded image and the ``cols`` matrix are kept between calls and
    overwritten by the next call of the same shape, so the ``cols`` a call returns stays valid
    only until the next ``im2col`` (a layer caches it for its backward: one forward in flight).
    """

    def __init__(self, kernel_size: int, stride: int, padding: int, fast: bool = True) -> None:
        self.k, self.s, self.p, self.fast = kernel_size, stride, padding, fast
        self._buffers: dict[str, Array] = {}

    def twins(self, xp: object) -> ConvKernels | None:
        """The compiled twins of im2col's copy and col2im's additions for arrays of module ``xp``, or None:
        run the references below (``fast=False``, CuPy arrays, or no Numba)."""
        return compiled_conv_kernels() if self.fast and xp is np else None

    def _buffer(self, name: str, shape: tuple[int, ...], like: Array) -> Array:
        """A zero-initialized array kept under ``name``, reallocated only when shape, dtype or device change."""
        buf = self._buffers.get(name)
        if buf is None or buf.shape != shape or buf.dtype != like.dtype or array_module(buf) is not array_module(like):
            buf = array_module(like).zeros(shape, dtype=like.dtype)
            self._buffers[name] = buf
        return buf

    def pad(self, x: Array) -> Array:
        """``x`` (N, C, H, W) channels-last inside a border of p zeros: (N, H + 2p, W + 2p, C).

        With p = 0 this is a view of ``x`` (no copy); otherwise a reused buffer whose border stays 0.
        """
        p = self.p
        x_nhwc = x.transpose(0, 2, 3, 1)                                    # (N, H, W, C), a view
        if not p:
            return x_nhwc
        N, H, W, C = x_nhwc.shape
        x_pad = self._buffer("padded", (N, H + 2 * p, W + 2 * p, C), x)
        x_pad[:, p:p + H, p:p + W, :] = x_nhwc
        return x_pad

    def im2col(self, x: Array) -> Array:
        """The patch matrix of ``x`` (N, C, H, W): shape (N·H_out·W_out, k·k·C), rows (n, u, v), columns (i, j, c)."""
        k, s, p = self.k, self.s, self.p
        N, C, H, W = x.shape
        H_out, W_out = output_size(H, k, s, p), output_size(W, k, s, p)
        cols = self._buffer("cols", (N, H_out, W_out, k, k, C), x)
        twins = self.twins(array_module(x))
        if twins is not None:                                                # the copy below, compiled
            rows = x.transpose(0, 2, 3, 1).reshape(N, H, W * C)              # (N, H, W·C), NHWC rows
            twins.im2col_copy(rows, cols.reshape(N, H_out, W_out, k, k * C), k, s, p)
            return cols.reshape(N * H_out * W_out, k * k * C)
        x_pad = self.pad(x)                                                  # (N, H + 2p, W + 2p, C)
        sN, sH, sW, sC = x_pad.strides                                       # in bytes
        # patches[n, u, v, i, j, c] = x_pad[n, s·u + i, s·v + j, c]: a view, nothing copied yet
        patches = array_module(x).lib.stride_tricks.as_strided(
            x_pad, shape=(N, H_out, W_out, k, k, C), strides=(sN, s * sH, s * sW, sH, sW, sC))
        cols[...] = patches                                                  # the one copy
        return cols.reshape(N * H_out * W_out, k * k * C)

    def col2im(self, cols: Array, shape: tuple[int, int, int, int]) -> Array:
        """The adjoint of :meth:`im2col`: scatter-add ``cols`` (N·H_out·W_out, k·k·C) into an image of ``shape``.

        One strided addition per kernel offset (i, j): the k·k slices x_pad[:, i::s, j::s, :] of the
        padded image (each N×H_out×W_out×C) receive the columns (i, j, :) of every patch.
        Returns a new (N, C, H, W) array, NHWC in memory (the padding's share is dropped: it is not part of x).
        """
        k, s, p = self.k, self.s, self.p
        N, C, H, W = shape
        H_out, W_out = output_size(H, k, s, p), output_size(W, k, s, p)
        xp = array_module(cols)
        patches = cols.reshape(N, H_out, W_out, k, k, C)
        twins = self.twins(xp)
        if twins is not None:                                                # the loop below, compiled,
            x_nhwc = xp.zeros((N, H, W, C), dtype=cols.dtype)                # straight into x (no border)
            twins.col2im_add(patches, x_nhwc, s, p)
            return x_nhwc.transpose(0, 3, 1, 2)                              # (N, C, H, W), a view
        x_pad = xp.zeros((N, H + 2 * p, W + 2 * p, C), dtype=cols.dtype)
        for i in range(k):
            for j in range(k):
                # (N, H_out, W_out, C) slice of the padded image += the offset (i, j) of every patch
                x_pad[:, i:i + s * H_out:s, j:j + s * W_out:s, :] += patches[:, :, :, i, j, :]
        if p:
            x_pad = x_pad[:, p:p + H, p:p + W, :].copy()                     # (N, H, W, C)
        return x_pad.transpose(0, 3, 1, 2)                                   # (N, C, H, W), a view


def patch_order(W: Array) -> Array:
    """A weight (A, B, k, k) as the matrix (A, k·k·B) whose columns run (i, j, b), like a patch's (a copy)."""
    A, B, k, _ = W.shape
    return W.transpose(0, 2, 3, 1).reshape(A, k * k * B)


def from_patch_order(M: Array, shape: tuple[int, ...]) -> Array:
    """The inverse of :func:`patch_order`: (A, k·k·B) → (A, B, k, k), a view."""
    A, B, k, _ = shape
    return M.reshape(A, k, k, B).transpose(0, 3, 1, 2)


def to_rows(x: Array) -> Array:
    """(N, C, H, W) → (N·H·W, C): one row per pixel, channels along the row (a copy unless NHWC in memory)."""
    N, C, H, W = x.shape
    return x.transpose(0, 2, 3, 1).reshape(N * H * W, C)


def from_rows(rows: Array, N: int, H: int, W: int) -> Array:
    """(N·H·W, C) → (N, C, H, W): the inverse of :func:`to_rows`, a view (NHWC in memory)."""
    return rows.reshape(N, H, W, rows.shape[1]).transpose(0, 3, 1, 2)

