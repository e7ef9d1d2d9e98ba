"""The conv networks' compiled ReLU (tinyvae/fast/relu_kernels.py) gives the reference's bits, in every
memory order a conv network hands it, and the conv VAE with its twins computes the reference's gradients.

(The compiled im2col and col2im are checked in tests/test_conv.py; the planted bugs that these
checks must catch are in tests/test_planted_bugs.py.)"""

import numpy as np
import pytest

from tinyvae.activations import ReLU, Tanh, make_activation
from tinyvae.backend import get_backend
from tinyvae.fast import relu_kernels
from tinyvae.fast.relu_kernels import CompiledReLU, ReluKernels, activation, relu_backward, relu_forward
from tinyvae.models import model_for_run
from tinyvae.trainer import RunConfig

SPECIAL = [0.0, -0.0, 1.0, -1.0, np.nan, np.inf, -np.inf]


def images(rng, dtype):
    """(name, x, dy): the memory orders a conv network has: NCHW, channels-last behind an NCHW view,
    a flat batch, and a gradient whose order differs from its activation's (after a flatten)."""
    x = rng.standard_normal((3, 4, 5, 6)).astype(dtype)
    x.flat[:len(SPECIAL)] = SPECIAL                          # exact zeros of both signs, NaN, ±inf
    nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    dy = rng.standard_normal(x.shape).astype(dtype)
    dy_nhwc = np.ascontiguousarray(dy.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    return [("nchw", x, dy), ("nhwc", nhwc, dy_nhwc), ("flat", x.reshape(3, -1), dy.reshape(3, -1)),
            ("nhwc, nchw dy", nhwc, dy), ("nchw, nhwc dy", x, dy_nhwc)]


def bits_differ(a, b):
    """How many numbers of a and b differ in their bits (−0 ≠ 0; NaN = NaN of the same payload)."""
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype
    unsigned = {4: np.uint32, 8: np.uint64, 1: np.uint8}[a.itemsize]
    return int(np.count_nonzero(a.view(unsigned) != b.view(unsigned)))


def twin_mismatches(layer, rng, dtype):
    """Numbers (of y, the mask and dx, over every memory order of ``images``) where ``layer`` and ReLU
    differ, plus one for each output whose memory order differs from the reference's."""
    wrong = 0
    for _, x, dy in images(rng, dtype):
        reference = ReLU()
        with np.errstate(invalid="ignore"):                  # inf · 0 = NaN, in both
            y_ref, y = reference.forward(x), layer.forward(x)
            dx_ref, dx = reference.backward(dy), layer.backward(dy)
        wrong += bits_differ(y, y_ref) + bits_differ(layer.mask, reference.mask) + bits_differ(dx, dx_ref)
        wrong += (y.strides != y_ref.strides) + (dx.strides != dx_ref.strides)    # and NumPy's memory orders
    return wrong


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_relu_gives_the_references_bits(rng, dtype):
    pytest.importorskip("numba")
    kernels = relu_kernels.compiled_relu()
    assert kernels is not None
    assert twin_mismatches(CompiledReLU(kernels), rng, dtype) == 0


def test_the_relu_loops_uncompiled_give_the_references_bits(rng):
    assert twin_mismatches(CompiledReLU(ReluKernels(relu_forward, relu_backward)), rng, np.float64) == 0


def test_compiled_relu_keeps_the_memory_order_and_runs_the_reference_on_other_arrays(rng):
    pytest.importorskip("numba")
    layer = CompiledReLU(relu_kernels.compiled_relu())
    _, x, _ = images(rng, np.float32)[1]                       # NCHW view of channels-last memory
    assert layer.forward(x).strides == x.strides
    strided = rng.standard_normal((4, 10))[:, ::2]            # not one block of memory: the reference runs
    assert np.array_equal(layer.forward(strided), ReLU().forward(strided))
    assert np.array_equal(layer.backward(np.ones((4, 5))), strided > 0)
    layer.forward(np.ones((4, 5), np.float32))
    with pytest.raises(ValueError, match="broadcast"):                # a gradient of the wrong shape: as ReLU,
        layer.backward(np.ones((4, 6), np.float32))                   # never the loop past the mask's end


def test_activation_chooses_the_twin_for_relu_only(monkeypatch):
    assert isinstance(activation("tanh"), Tanh)
    if relu_kernels.compiled_relu() is not None:
        assert isinstance(activation("relu"), CompiledReLU)
    monkeypatch.setattr(relu_kernels, "compiled_relu", lambda: None)     # no Numba (or the release)
    assert type(activation("relu")) is ReLU


def test_conv_vae_with_its_twins_has_the_references_gradients(rng, monkeypatch):
    """One step of the conv VAE, twins on (compiled ReLU, im2col, col2im) and off: the same bits."""
    config = RunConfig(arch="conv", hidden=[], channels=[4, 8], latent_dim=3)
    x = rng.random((5, 64)).astype(np.float32)
    eps = rng.standard_normal((5, 3)).astype(np.float32)

    def gradients():
        model = model_for_run(config, 64, get_backend("cpu"), image_shape=(8, 8))
        loss = model.loss_and_grads(x, eps)
        return model, float(loss.loss), model.params.grad.copy()

    fast_model, fast_loss, fast_grad = gradients()
    monkeypatch.setattr("tinyvae.conv_nets.activation_layer", make_activation)
    monkeypatch.setattr("tinyvae.im2col.compiled_conv_kernels", lambda: None)
    reference_model, reference_loss, reference_grad = gradients()
    if relu_kernels.compiled_relu() is not None:
        assert any(isinstance(layer, CompiledReLU) for layer in fast_model.encoder.layers)
    assert not any(isinstance(layer, CompiledReLU) for layer in reference_model.encoder.layers)
    assert fast_loss == reference_loss and bits_differ(fast_grad, reference_grad) == 0
