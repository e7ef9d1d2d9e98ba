"""Conv2d and ConvTranspose2d a block of examples at a time: the CPU twins of tinyvae.nn.conv's layers.

The references build ONE patch matrix for the whole batch and hand it to one matrix product. For
the 32→64 layer of the 28×28 conv VAE that matrix holds 49·512 numbers per example, 12.8 MB at
batch 128: written by im2col, then read by the product (and by the backward's), it streams through
memory each time, far beyond a core's L2 cache, and two shares of a split step
(tinyvae/fast/data_parallel.py) stream it at once. The twins do the same maths in blocks of
examples, each block's patch matrix at most ``BLOCK_BYTES``, so it is still in the cache when the
product reads it::

    Conv2d            forward   Y_b = X_b Wᵀ                 X_b = im2col(x_b), for each block b
                      backward  dW = Σ_b dY_bᵀ X_b,          dx_b = col2im(dY_b W)
    ConvTranspose2d   forward   y_b = col2im(X_b W)
                      backward  D_b = im2col(dy_b),  dW = Σ_b X_bᵀ D_b,  dX_b = D_b Wᵀ

(X_b, rows of the block's examples only.) The backward rebuilds each block's patch matrix instead
of keeping the forward's: building it is cheap, keeping it is what fills the cache (a batch that
fits in one block keeps its one matrix, as the reference does). Every output
row is the same product over the same numbers as in the reference, so y and dx are the
reference's; dW is summed block by block instead of in one product, so it equals the reference's
to rounding (tests/test_conv_blocks.py). So does db, the sum of dY's rows, computed as the
product 1ᵀ dY (a BLAS matrix-vector product, where NumPy's sum down the rows is slow).

Blocks help a product that runs on one BLAS thread (one core, or a share of a split step); with
several BLAS threads the whole batch's product spreads better, and the reference runs. So it
does on an array that is not NumPy's (CuPy), and a copy without Numba builds the references
(:func:`tinyvae.fast.conv_layer_classes` chooses; the student release leaves this file out: it
spells out A5's backward). Measurements: docs/benchmarks.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinyvae.fast import blas_threads
from tinyvae.fast.conv_kernels import ConvKernels
from tinyvae.nn.base import Array
from tinyvae.nn.conv import Conv2d, ConvTranspose2d
from tinyvae.nn.im2col import from_patch_order, from_rows, patch_order, to_rows

BLOCK_BYTES = 1 << 20   # a block's patch matrix: at most 1 MiB, half a core's L2 on the machine measured


class _Blocks:
    """What both twins share: the block size, the kept buffers, the compiled im2col and col2im.
    ``kernels`` (tinyvae.fast.conv_kernels) joins the layer's own arguments."""

    k: int
    stride: int
    padding: int
    block_bytes: int = BLOCK_BYTES

    def __init__(self, *args: Any, kernels: ConvKernels, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kernels = kernels
        self._block_buffers: dict[str, np.ndarray] = {}

    def __repr__(self) -> str:
        return super().__repr__().removeprefix("Blocked")             # the layer it computes

    def _block_size(self, n: int, patch_numbers: int, itemsize: int) -> int:
        """Examples per block: as many as keep a block's patch matrix (``patch_numbers`` per example)
        within ``block_bytes``, at least 1 and at most n; 0 when BLAS runs on several threads (then
        the reference runs)."""
        if blas_threads() > 1:
            return 0
        return min(n, max(1, self.block_bytes // (patch_numbers * itemsize)))

    def _bias_grad(self, dY: np.ndarray) -> None:
        """db = Σ over the rows of dY (M, C_out), the reference's sum as a product with a vector of
        ones: BLAS's matrix-vector product instead of NumPy's sum down the rows."""
        ones = self._block_buffers.get("ones")
        if ones is None or ones.shape[0] != dY.shape[0] or ones.dtype != dY.dtype:
            ones = self._block_buffers["ones"] = np.ones(dY.shape[0], dtype=dY.dtype)
        np.matmul(ones, dY, out=self.db)

    def _kept(self, name: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """A buffer kept between calls under ``name``, reallocated only when shape or dtype change."""
        buf = self._block_buffers.get(name)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = self._block_buffers[name] = np.empty(shape, dtype=dtype)
        return buf

    def _im2col(self, x: np.ndarray, start: int, stop: int, out_hw: tuple[int, int], B: int) -> np.ndarray:
        """The patch matrix of examples start..stop-1 of x (N, C, H, W): ((stop − start)·H_out·W_out, k·k·C)."""
        N, C, H, W = x.shape
        H_out, W_out, k = *out_hw, self.k
        cols = self._kept("cols", (B, H_out, W_out, k, k * C), x.dtype)[:stop - start]
        rows = x[start:stop].transpose(0, 2, 3, 1).reshape(stop - start, H, W * C)   # NHWC rows
        self.kernels.im2col_copy(rows, cols, k, self.stride, self.padding)
        return cols.reshape(-1, k * k * C)

    def _col2im(self, M: np.ndarray, out: np.ndarray, in_hw: tuple[int, int]) -> None:
        """Add the patch matrix M (b·H_in·W_in, k·k·C) of b examples into ``out`` (b, H, W, C), as col2im does."""
        b, C, k = out.shape[0], out.shape[3], self.k
        self.kernels.col2im_add(M.reshape(b, *in_hw, k, k, C), out, self.stride, self.padding)


class BlockedConv2d(_Blocks, Conv2d):
    """:class:`tinyvae.nn.conv.Conv2d`, a block of examples at a time (see the module docstring)."""

    def forward(self, x: Array) -> Array:
        if not isinstance(x, np.ndarray):
            return super().forward(x)
        x_shape = self._check_input(x)
        N, C_out, H_out, W_out = self.output_shape(x_shape)
        B = self._block_size(N, H_out * W_out * self.k * self.k * self.in_channels, x.dtype.itemsize)
        if not B:
            return super().forward(x)
        self.x_shape, self.y_shape, self.blocks = x_shape, (N, C_out, H_out, W_out), B
        self.W_mat = patch_order(self.W)                                 # (C_out, k·k·C_in)
        self.x, self.cols = x, None                                      # kept: backward rebuilds the patches
        P = H_out * W_out                                                # rows per example
        Y = np.empty((N * P, C_out), dtype=x.dtype)
        for start in range(0, N, B):
            stop = min(N, start + B)
            cols = self._im2col(x, start, stop, (H_out, W_out), B)
            Y_b = np.matmul(cols, self.W_mat.T, out=Y[start * P:stop * P])
            Y_b += self.b                                                # while the block is in the cache
        self.whole = cols if B == N else None                            # one block: backward reuses it
        return from_rows(Y, N, H_out, W_out)                             # (N, C_out, H_out, W_out)

    def backward(self, dy: Array) -> Array:
        if self.cols is not None or not isinstance(dy, np.ndarray):      # forward ran the reference
            return super().backward(dy)
        self._check_dy(dy)
        N, C_in, H, W = self.x_shape
        _, _, H_out, W_out = self.y_shape
        B, P = self.blocks, H_out * W_out
        dY = to_rows(dy)                                                 # (N·H_out·W_out, C_out)
        dW_mat = np.zeros_like(self.W_mat)                               # Σ_b dY_bᵀ X_b
        dx = np.empty((N, H, W, C_in), dtype=dy.dtype) if self.input_grad else None
        for start in range(0, N, B):
            stop = min(N, start + B)
            cols = self.whole if B == N else self._im2col(self.x, start, stop, (H_out, W_out), B)
            dY_b = dY[start * P:stop * P]
            dW_mat += dY_b.T @ cols
            if dx is not None:
                D = self._kept("D", (B * P, cols.shape[1]), dy.dtype)[:(stop - start) * P]
                dx[start:stop] = 0                                       # col2im adds into zeros
                self._col2im(np.matmul(dY_b, self.W_mat, out=D), dx[start:stop], (H_out, W_out))
        self.dW[...] = from_patch_order(dW_mat, self.dW.shape)
        self._bias_grad(dY)
        return None if dx is None else dx.transpose(0, 3, 1, 2)          # (N, C_in, H, W)


class BlockedConvTranspose2d(_Blocks, ConvTranspose2d):
    """:class:`tinyvae.nn.conv.ConvTranspose2d`, a block of examples at a time (see the module docstring)."""

    def forward(self, x: Array) -> Array:
        self.blocks = None
        if not isinstance(x, np.ndarray):
            return super().forward(x)
        x_shape = self._check_input(x)
        N, C_out, H_out, W_out = self.output_shape(x_shape)
        _, _, H, W = x_shape
        B = self._block_size(N, H * W * self.k * self.k * C_out, x.dtype.itemsize)
        if not B:
            return super().forward(x)
        self.x_shape, self.y_shape, self.blocks = x_shape, (N, C_out, H_out, W_out), B
        self.W_mat = patch_order(self.W)                                 # (C_in, k·k·C_out)
        self.X = to_rows(x)                                              # (N·H·W, C_in), kept
        P = H * W
        y = np.empty((N, H_out, W_out, C_out), dtype=x.dtype)            # NHWC, as the reference's col2im
        for start in range(0, N, B):
            stop = min(N, start + B)
            M = self._kept("M", (B * P, self.W_mat.shape[1]), x.dtype)[:(stop - start) * P]
            y_b = y[start:stop]
            y_b[...] = 0                                                 # col2im adds into zeros,
            self._col2im(np.matmul(self.X[start * P:stop * P], self.W_mat, out=M), y_b, (H, W))
            y_b += self.b                                                # then the bias, while in the cache
        return y.transpose(0, 3, 1, 2)                                   # (N, C_out, H_out, W_out), a view

    def backward(self, dy: Array) -> Array:
        if self.blocks is None or not isinstance(dy, np.ndarray):        # forward ran the reference
            return super().backward(dy)
        self._check_dy(dy)
        N, C_in, H, W = self.x_shape
        B, P = self.blocks, H * W
        dW_mat = np.zeros_like(self.W_mat)                               # Σ_b X_bᵀ D_b
        dX = np.empty((N * P, C_in), dtype=dy.dtype) if self.input_grad else None
        for start in range(0, N, B):
            stop = min(N, start + B)
            D = self._im2col(dy, start, stop, (H, W), B)                 # (b·H·W, k·k·C_out)
            dW_mat += self.X[start * P:stop * P].T @ D
            if dX is not None:
                np.matmul(D, self.W_mat.T, out=dX[start * P:stop * P])
        self.dW[...] = from_patch_order(dW_mat, self.dW.shape)
        self._bias_grad(to_rows(dy))                                     # (N·H_out·W_out, C_out)
        return None if dX is None else from_rows(dX, N, H, W)            # (N, C_in, H, W)
