"""im2col and col2im: a 2-D convolution as ONE matrix product.

A convolution with a k×k kernel, stride s and zero padding p reads, for every output pixel
(n, u, v), the C·k·k input values of the patch whose top-left corner is (s·u, s·v) in the padded
image. Laid out as rows, those patches form a matrix::

    cols[(n, u, v), (c, i, j)] = x_pad[n, c, s·u + i, s·v + j]          (N·H_out·W_out, C·k·k)

and the convolution is ``cols @ Wᵀ`` with W reshaped to (C_out, C·k·k). ``im2col`` builds
``cols`` from a strided *view* of the padded image (no Python loop over pixels) and one copy;
``col2im`` is its adjoint: it sends every entry of a ``cols``-shaped matrix back to the pixel it
came from and SUMS where patches overlap, one strided addition per kernel offset (i, j)::

    x_pad[n, c, s·u + i, s·v + j] += cols[(n, u, v), (c, i, j)]      for each of the k·k offsets

so ⟨im2col(x), M⟩ = ⟨x, col2im(M)⟩ for every x and M. The derivation is in
docs/derivations.md ("Convolution").

Output size along one axis: H_out = ⌊(H + 2p − k) / s⌋ + 1.
Works on NumPy and CuPy arrays alike: the array module comes from the input.
"""

from __future__ import annotations

from tinyvae.backend import array_module
from tinyvae.base import Array


def output_size(size: int, kernel_size: int, stride: int, padding: int) -> int:
    """Length of a convolution's output along one axis: ⌊(size + 2p − k) / s⌋ + 1 (≤ 0: empty)."""
    return (size + 2 * padding - kernel_size) // stride + 1


def transposed_output_size(size: int, kernel_size: int, stride: int, padding: int, output_padding: int) -> int:
    """Length of a transposed convolution's output along one axis: (size − 1)·s − 2p + k + output_padding."""
    return (size - 1) * stride - 2 * padding + kernel_size + output_padding


class Im2col:
    """im2col and col2im for one geometry (kernel k, stride s, padding p), with reusable buffers.

    Each layer owns one. The padded image and the ``cols`` matrix are kept between calls and
    overwritten by the next call of the same shape, so the ``cols`` a call returns stays valid
    only until the next ``im2col`` (a layer caches it for its backward: one forward in flight).
    """

    def __init__(self, kernel_size: int, stride: int, padding: int) -> None:
        self.k, self.s, self.p = kernel_size, stride, padding
        self._buffers: dict[str, Array] = {}

    def _buffer(self, name: str, shape: tuple[int, ...], like: Array) -> Array:
        """A zero-initialized array kept under ``name``, reallocated only when shape, dtype or device change."""
        buf = self._buffers.get(name)
        if buf is None or buf.shape != shape or buf.dtype != like.dtype or array_module(buf) is not array_module(like):
            buf = array_module(like).zeros(shape, dtype=like.dtype)
            self._buffers[name] = buf
        return buf

    def pad(self, x: Array) -> Array:
        """``x`` (N, C, H, W) inside a border of p zeros: (N, C, H + 2p, W + 2p); ``x`` itself when p = 0."""
        p = self.p
        if not p:
            return x
        N, C, H, W = x.shape
        x_pad = self._buffer("padded", (N, C, H + 2 * p, W + 2 * p), x)       # its border stays 0
        x_pad[:, :, p:p + H, p:p + W] = x
        return x_pad

    def im2col(self, x: Array) -> Array:
        """The patch matrix of ``x`` (N, C, H, W): shape (N·H_out·W_out, C·k·k), rows (n, u, v), columns (c, i, j)."""
        k, s, p = self.k, self.s, self.p
        N, C, H, W = x.shape
        H_out, W_out = output_size(H, k, s, p), output_size(W, k, s, p)
        x_pad = self.pad(x)                                                  # (N, C, H + 2p, W + 2p)
        sN, sC, sH, sW = x_pad.strides                                       # in bytes
        # patches[n, u, v, c, i, j] = x_pad[n, c, s·u + i, s·v + j]: a view, nothing copied yet
        patches = array_module(x).lib.stride_tricks.as_strided(
            x_pad, shape=(N, H_out, W_out, C, k, k), strides=(sN, s * sH, s * sW, sC, sH, sW))
        cols = self._buffer("cols", (N, H_out, W_out, C, k, k), x)
        cols[...] = patches                                                  # the one copy
        return cols.reshape(N * H_out * W_out, C * k * k)

    def col2im(self, cols: Array, shape: tuple[int, int, int, int]) -> Array:
        """The adjoint of :meth:`im2col`: scatter-add ``cols`` (N·H_out·W_out, C·k·k) into an image of ``shape``.

        One strided addition per kernel offset (i, j): the k·k slices of the padded image
        x_pad[:, :, i::s, j::s] (each H_out×W_out) receive the column (c, i, j) of every patch.
        Returns a new (N, C, H, W) array (the padding's share is dropped: it is not part of x).
        """
        k, s, p = self.k, self.s, self.p
        N, C, H, W = shape
        H_out, W_out = output_size(H, k, s, p), output_size(W, k, s, p)
        patches = cols.reshape(N, H_out, W_out, C, k, k)
        x_pad = array_module(cols).zeros((N, C, H + 2 * p, W + 2 * p), dtype=cols.dtype)
        for i in range(k):
            for j in range(k):
                # (N, C, H_out, W_out) += (N, H_out, W_out, C) moved to channels-first
                x_pad[:, :, i:i + s * H_out:s, j:j + s * W_out:s] += patches[:, :, :, :, i, j].transpose(0, 3, 1, 2)
        if p:
            return x_pad[:, :, p:p + H, p:p + W].copy()
        return x_pad


def to_rows(x: Array) -> Array:
    """(N, C, H, W) → (N·H·W, C): one row per pixel, channels along the row (a copy unless NHWC in memory)."""
    N, C, H, W = x.shape
    return x.transpose(0, 2, 3, 1).reshape(N * H * W, C)


def from_rows(rows: Array, N: int, H: int, W: int) -> Array:
    """(N·H·W, C) → (N, C, H, W): the inverse of :func:`to_rows`, a view (NHWC in memory)."""
    return rows.reshape(N, H, W, rows.shape[1]).transpose(0, 3, 1, 2)

