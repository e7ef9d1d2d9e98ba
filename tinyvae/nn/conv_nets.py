"""Convolutional encoders and decoders for the models (``arch="conv"``).

Every model keeps its data as flat rows (N, D), as the dense models do; a convolutional
network reshapes at its ends::

    encoder  (N, D) ─Reshape─▶ (N, C, H, W) ─Conv2d k4 s2 p1─▶ ReLU ─ … ─Flatten─▶ (N, F)
                    ─Linear─▶ (ReLU, Linear …) ─▶ (N, out)
    decoder  (N, J) ─Linear─▶ (… ReLU, Linear) ─▶ ReLU ─Reshape─▶ (N, c_last, h, w)
                    ─ConvTranspose2d k4 s2 p1─▶ ReLU ─ … ─ConvTranspose2d─▶ (N, C_out, H, W) ─Flatten─▶ (N, out)

With ``channels = (32, 64)`` and MNIST's 1×28×28 this is the encoder of the issue and of
TensorFlow's CVAE tutorial: Conv(1→32) → ReLU → Conv(32→64) → ReLU → flatten (64·7·7) →
Linear(→2J), and the decoder its mirror. Each Conv2d with k = 4, s = 2, p = 1 halves a side
(⌊(n + 2 − 4)/2⌋ + 1 = ⌊n/2⌋); the decoder's transposed convolutions give back the exact
sizes with ``output_padding`` 1 where the encoder's side was odd (7 → 3 → 7).
"""

from __future__ import annotations

from collections.abc import Sequence

from tinyvae.fast import activation_layer, conv_layer_classes
from tinyvae.nn.base import Array, Layer
from tinyvae.nn.im2col import output_size
from tinyvae.nn.layers import Sequential, mlp

KERNEL, STRIDE, PADDING = 4, 2, 1


class Reshape(Layer):
    """Rows (N, D) ⇄ images (N, *shape): forward reshapes, backward reshapes the gradient back.

    ``Reshape((1, 28, 28))`` turns (N, 784) into (N, 1, 28, 28); ``Reshape((784,))`` flattens.
    No parameters; the gradient of a reshape is the same numbers in the input's shape.
    """

    def __init__(self, shape: Sequence[int]) -> None:
        self.shape = tuple(int(s) for s in shape)

    def forward(self, x: Array) -> Array:
        self.x_shape = x.shape
        return x.reshape(x.shape[0], *self.shape)

    def backward(self, dy: Array | None) -> Array | None:
        """dL/dx: dy in x's shape (None when the next layer computed no input gradient)."""
        return None if dy is None else dy.reshape(self.x_shape)

    def __repr__(self) -> str:
        return f"Reshape({self.shape})"


def conv_sides(image_shape: Sequence[int], n_layers: int) -> list[tuple[int, int]]:
    """(H, W) before each of ``n_layers`` k4 s2 p1 convolutions, and after the last: n_layers + 1 pairs."""
    sides = [tuple(image_shape[1:])]
    for _ in range(n_layers):
        H, W = sides[-1]
        sides.append((output_size(H, KERNEL, STRIDE, PADDING), output_size(W, KERNEL, STRIDE, PADDING)))
    if min(sides[-1]) < 1:
        raise ValueError(f"{len(image_shape[1:])}-D images of {image_shape[1]}×{image_shape[2]} pixels are too small "
                         f"for {n_layers} convolutions that each halve a side: use fewer channels entries")
    return sides


def conv_features(image_shape: Sequence[int], channels: Sequence[int]) -> int:
    """F: how many numbers the last feature maps of the convolutions hold (channels[-1]·h·w)."""
    h, w = conv_sides(image_shape, len(channels))[-1]
    return channels[-1] * h * w


def conv_stack(image_shape: Sequence[int], channels: Sequence[int], activation: str,
               init: str) -> tuple[Sequential, int]:
    """(N, C·H·W) → (N, F): the encoder's convolutions, each followed by the activation, then
    flattened; returns the stack and F, the number of features it outputs."""
    Conv2d, _ = conv_layer_classes()                         # tinyvae.nn.conv's, or its fast twin's
    layers: list[Layer] = [Reshape(image_shape)]
    for c_in, c_out in zip([image_shape[0], *channels[:-1]], channels, strict=True):
        layers += [Conv2d(c_in, c_out, KERNEL, STRIDE, PADDING, init=init), activation_layer(activation)]
    features = conv_features(image_shape, channels)
    return Sequential(*layers, Reshape((features,))), features


def conv_transpose_stack(image_shape: Sequence[int], channels: Sequence[int], out_channels: int, activation: str,
                         init: str) -> Sequential:
    """(N, F) → (N, out_channels·H·W): the decoder's half, the mirror of :func:`conv_stack`: the
    activation, the feature maps, then transposed convolutions (the last without activation)."""
    sides = conv_sides(image_shape, len(channels))
    h, w = sides[-1]
    _, ConvTranspose2d = conv_layer_classes()                # tinyvae.nn.conv's, or its fast twin's
    layers: list[Layer] = [activation_layer(activation), Reshape((channels[-1], h, w))]
    widths = [*channels[::-1], out_channels]
    for i, (c_in, c_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        (H_in, W_in), (H, W) = sides[-1 - i], sides[-2 - i]
        pad_h, pad_w = H - 2 * H_in, W - 2 * W_in                 # 1 where the encoder's side was odd
        if pad_h != pad_w:
            raise ValueError(f"the convolutional decoder needs square images or sides of the same parity, "
                             f"got {image_shape[1]}×{image_shape[2]}")
        layers.append(ConvTranspose2d(c_in, c_out, KERNEL, STRIDE, PADDING, output_padding=pad_h, init=init))
        if i < len(widths) - 2:
            layers.append(activation_layer(activation))
    layers.append(Reshape((out_channels * image_shape[1] * image_shape[2],)))
    return Sequential(*layers)


def conv_encoder(image_shape: Sequence[int], channels: Sequence[int], hidden: Sequence[int], out_dim: int,
                 activation: str, init: str) -> Sequential:
    """(N, C·H·W) → (N, out_dim): the convolutions, then an MLP over the flattened features."""
    stack, features = conv_stack(image_shape, channels, activation, init)
    return Sequential(*stack.layers, *mlp([features, *hidden, out_dim], activation, init).layers)


def conv_decoder(image_shape: Sequence[int], channels: Sequence[int], hidden: Sequence[int], latent_dim: int,
                 out_channels: int, activation: str, init: str) -> Sequential:
    """(N, J) → (N, out_channels·H·W): an MLP to the last feature maps, then transposed convolutions."""
    head = mlp([latent_dim, *hidden[::-1], conv_features(image_shape, channels)], activation, init)
    return Sequential(*head.layers, *conv_transpose_stack(image_shape, channels, out_channels, activation,
                                                          init).layers)
