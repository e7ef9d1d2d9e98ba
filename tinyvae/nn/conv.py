"""Convolution layers with hand-written backprop: ``Conv2d`` and its adjoint, ``ConvTranspose2d``.

Images are NCHW: (N examples, C channels, H rows, W columns). Weights have PyTorch's shapes,
so a tinyvae layer and a ``torch.nn`` layer can be compared weight for weight:

    Conv2d           W (C_out, C_in, k, k)    b (C_out,)
    ConvTranspose2d  W (C_in, C_out, k, k)    b (C_out,)

Both are one matrix product between a weight matrix and a patch matrix built by
:mod:`tinyvae.nn.im2col`; the derivations, with shapes, are in docs/derivations.md ("Convolution").
The transposed convolution is not a separate algorithm: it IS the adjoint (the transpose) of
the convolution with the same weights, so its forward is the convolution's input gradient and
its input gradient is the convolution's forward. The two classes share their pieces to show it.
"""

from __future__ import annotations

import numpy as np

from tinyvae.fast import conv_twins
from tinyvae.nn.base import Array, Layer
from tinyvae.nn.im2col import (
    Im2col,
    from_patch_order,
    from_rows,
    output_size,
    patch_order,
    to_rows,
    transposed_output_size,
)
from tinyvae.nn.layers import INITS


def _check_int(name: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer ≥ {minimum}, got {value!r}")


class _ConvBase(Layer):
    """What Conv2d and ConvTranspose2d share: arguments, checks, initialization, parameter views."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, init: str = "pytorch", input_grad: bool = True) -> None:
        _check_int("in_channels", in_channels, 1)
        _check_int("out_channels", out_channels, 1)
        _check_int("kernel_size", kernel_size, 1)
        _check_int("stride", stride, 1)
        _check_int("padding", padding, 0)
        if init not in INITS:
            raise ValueError(f"unknown init {init!r}: choose one of {', '.join(INITS)}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.k, self.stride, self.padding = int(kernel_size), int(stride), int(padding)
        self.init, self.input_grad = init, input_grad
        self.patches = Im2col(self.k, self.stride, self.padding, conv_twins())

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"W": self.weight_shape(), "b": (self.out_channels,)}

    def weight_shape(self) -> tuple[int, int, int, int]:
        raise NotImplementedError

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        # PyTorch's fans: fan_in = W.shape[1]·k·k, fan_out = W.shape[0]·k·k (for both layers)
        shape = self.weight_shape()
        fan_in, fan_out = shape[1] * self.k * self.k, shape[0] * self.k * self.k
        if self.init == "pytorch":
            bound = 1.0 / np.sqrt(fan_in)
            return {"W": rng.uniform(-bound, bound, size=shape),
                    "b": rng.uniform(-bound, bound, size=self.out_channels)}
        if self.init == "kaiming":
            W = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)
        else:
            bound = np.sqrt(6.0 / (fan_in + fan_out))
            W = rng.uniform(-bound, bound, size=shape)
        return {"W": W, "b": np.zeros(self.out_channels)}

    def bind(self, params: dict[str, Array], grads: dict[str, Array]) -> None:
        super().bind(params, grads)
        self.W, self.b = params["W"], params["b"]      # weight_shape(), (C_out,)
        self.dW, self.db = grads["W"], grads["b"]

    def _check_input(self, x: Array) -> tuple[int, int, int, int]:
        name = repr(self)
        if x.ndim != 4:
            raise ValueError(f"{name} expects NCHW input of shape (N, {self.in_channels}, H, W), "
                             f"got an array of shape {tuple(x.shape)}")
        if x.shape[1] != self.in_channels:
            raise ValueError(f"{name} expects {self.in_channels} input channels, got {x.shape[1]} "
                             f"(input shape {tuple(x.shape)})")
        return tuple(int(d) for d in x.shape)

    def _check_dy(self, dy: Array) -> None:
        if tuple(dy.shape) != self.y_shape:
            raise ValueError(f"{self!r}.backward expects dy of the output's shape {self.y_shape}, "
                             f"got {tuple(dy.shape)}")

    def _arguments(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.k}, stride={self.stride}, " \
               f"padding={self.padding}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._arguments()})"


class Conv2d(_ConvBase):
    """2-D convolution (cross-correlation, as in every deep-learning library), NCHW.

    Shapes: x (N, C_in, H, W), W (C_out, C_in, k, k), b (C_out,), y (N, C_out, H_out, W_out)
    with H_out = ⌊(H + 2p − k)/s⌋ + 1 (likewise W_out)::

        y[n, o, u, v] = b[o] + Σ_{c,i,j} W[o, c, i, j] · x_pad[n, c, s·u + i, s·v + j]

    As matrices, with X = im2col(x) (N·H_out·W_out, k·k·C_in) and W as the matrix
    (C_out, k·k·C_in) whose columns follow X's (i, j, c) order (``patch_order``)::

        Y = X Wᵀ + b                          (N·H_out·W_out, C_out), then back to NCHW

    Backward, given dy = dL/dy as rows dY (N·H_out·W_out, C_out)::

        dL/dW = dYᵀ X                (C_out, k·k·C_in), back to (C_out, C_in, k, k)
        dL/db = Σ_{n,u,v} dy[n, :, u, v]      (C_out,)
        dL/dx = col2im(dY W)         (N, C_in, H, W)      col2im = im2colᵀ

    ``input_grad=False`` skips dL/dx (a network's first layer never needs it); backward then
    returns None. Initialization as for Linear, with fan_in = C_in·k·k; "pytorch" (the default)
    is torch.nn.Conv2d's own: W, b ~ U(±1/sqrt(C_in·k·k)).
    """

    def weight_shape(self) -> tuple[int, int, int, int]:
        return (self.out_channels, self.in_channels, self.k, self.k)

    def output_shape(self, x_shape: tuple[int, ...]) -> tuple[int, int, int, int]:
        N, _, H, W = x_shape
        H_out, W_out = (output_size(n, self.k, self.stride, self.padding) for n in (H, W))
        if H_out < 1 or W_out < 1:
            raise ValueError(f"{self!r} gets an input of {H}×{W} pixels, smaller than its {self.k}×{self.k} "
                             f"kernel even with padding {self.padding}: the output would be empty")
        return (N, self.out_channels, H_out, W_out)

    def forward(self, x: Array) -> Array:
        self.x_shape = self._check_input(x)
        self.y_shape = N, _, H_out, W_out = self.output_shape(self.x_shape)
        self.W_mat = patch_order(self.W)                         # (C_out, k·k·C_in), kept
        self.cols = self.patches.im2col(x)                       # X (N·H_out·W_out, k·k·C_in), kept
        Y = self.cols @ self.W_mat.T                             # (N·H_out·W_out, C_out)
        Y += self.b
        return from_rows(Y, N, H_out, W_out)                     # (N, C_out, H_out, W_out)

    def backward(self, dy: Array) -> Array:
        self._check_dy(dy)
        dY = to_rows(dy)                                         # (N·H_out·W_out, C_out)
        ### BEGIN SOLUTION
        self.dW[...] = from_patch_order(dY.T @ self.cols, self.dW.shape)   # dW = dYᵀ X  (C_out, C_in, k, k)
        dy.sum(axis=(0, 2, 3), out=self.db)                      # db = Σ dy    (C_out,)
        if self.input_grad:                                      # dx = col2im(dY W): (N, C_in, H, W)
            return self.patches.col2im(dY @ self.W_mat, self.x_shape)
        return None                                              # a first layer: nobody needs dx
        ### END SOLUTION


class ConvTranspose2d(_ConvBase):
    """2-D transposed convolution: the ADJOINT of :class:`Conv2d` with the same weights, NCHW.

    Shapes: x (N, C_in, H, W), W (C_in, C_out, k, k), b (C_out,), y (N, C_out, H_out, W_out)
    with H_out = (H − 1)·s − 2p + k + output_padding (likewise W_out).

    Take the convolution A: (N, C_out, H_out, W_out) → (N, C_in, H, W) whose weight is this
    layer's W (for A, C_out are the input channels: W's shape (C_in, C_out, k, k) is A's
    (out, in, k, k)). The transposed convolution is y = Aᵀx + b, the unique linear map with
    ⟨A z, x⟩ = ⟨z, Aᵀ x⟩ for all z and x. As matrices, with x as rows X (N·H·W, C_in) and W as
    (C_in, k·k·C_out) in im2col's column order (``patch_order``)::

        y = col2im(X W) + b          (N, C_out, H_out, W_out)    = Conv2d's dL/dx, with dy := x

    Backward, given dy = dL/dy, with D = im2col(dy) (N·H·W, k·k·C_out)::

        dL/dx = D Wᵀ as NCHW         (N, C_in, H, W)              = Conv2d's forward, on dy
        dL/dW = Xᵀ D                 (C_in, k·k·C_out), back to (C_in, C_out, k, k)
        dL/db = Σ_{n,u,v} dy[n, :, u, v]      (C_out,)

    ``output_padding`` (< stride) adds rows and columns at the bottom and right: several output
    sizes convolve down to the same H, and it picks which one. Initialization as PyTorch
    computes it for this weight shape: fan_in = C_out·k·k ("pytorch": U(±1/sqrt(C_out·k·k))).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, output_padding: int = 0, init: str = "pytorch", input_grad: bool = True) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, init, input_grad)
        _check_int("output_padding", output_padding, 0)
        if output_padding >= stride:
            raise ValueError(f"output_padding must be smaller than stride ({stride}), got {output_padding}")
        self.output_padding = int(output_padding)

    def weight_shape(self) -> tuple[int, int, int, int]:
        return (self.in_channels, self.out_channels, self.k, self.k)

    def output_shape(self, x_shape: tuple[int, ...]) -> tuple[int, int, int, int]:
        N, _, H, W = x_shape
        H_out, W_out = (transposed_output_size(n, self.k, self.stride, self.padding, self.output_padding)
                        for n in (H, W))
        if H_out < 1 or W_out < 1:
            raise ValueError(f"{self!r} gets an input of {H}×{W} pixels, for which (H − 1)·stride − 2·padding "
                             f"+ kernel_size + output_padding = {H_out}×{W_out}: the output would be empty")
        return (N, self.out_channels, H_out, W_out)

    def forward(self, x: Array) -> Array:
        self.x_shape = self._check_input(x)
        self.y_shape = self.output_shape(self.x_shape)
        self.W_mat = patch_order(self.W)                         # (C_in, k·k·C_out), kept
        self.X = to_rows(x)                                      # (N·H·W, C_in), kept
        ### BEGIN SOLUTION
        y = self.patches.col2im(self.X @ self.W_mat, self.y_shape)   # Aᵀx: (N, C_out, H_out, W_out)
        y += self.b[:, None, None]
        return y
        ### END SOLUTION

    def backward(self, dy: Array) -> Array:
        self._check_dy(dy)
        N, _, H, W = self.x_shape
        ### BEGIN SOLUTION
        D = self.patches.im2col(dy)                              # (N·H·W, k·k·C_out): A's own im2col
        self.dW[...] = from_patch_order(self.X.T @ D, self.dW.shape)   # dW = Xᵀ D  (C_in, C_out, k, k)
        dy.sum(axis=(0, 2, 3), out=self.db)                      # db = Σ dy    (C_out,)
        if self.input_grad:                                      # dx = A dy: (N, C_in, H, W)
            return from_rows(D @ self.W_mat.T, N, H, W)
        return None                                              # a first layer: nobody needs dx
        ### END SOLUTION

    def _arguments(self) -> str:
        return super()._arguments() + f", output_padding={self.output_padding}"
