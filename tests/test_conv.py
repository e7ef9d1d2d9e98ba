"""Conv2d and ConvTranspose2d: gradient checks (float64, 1e-8), the adjoint identity, a direct
reference (loops over the kernel offsets, no im2col), PyTorch where it is installed, and errors."""

import numpy as np
import pytest

from tinyvae.activations import ReLU
from tinyvae.backend import to_host
from tinyvae.conv import Conv2d, ConvTranspose2d
from tinyvae.gradcheck import check_layer, numerical_gradient, rel_error
from tinyvae.im2col import Im2col, output_size
from tinyvae.layers import Sequential
from tinyvae.params import Parameters

LAYER_TOL = 1e-8

# (C_in, C_out, k, stride, padding, H, W): non-square images, stride 1–3, padding 0–2
CONV_CASES = [
    (1, 2, 3, 1, 0, 5, 4),
    (2, 3, 3, 1, 1, 4, 6),
    (3, 2, 2, 2, 0, 6, 5),
    (2, 2, 4, 2, 1, 7, 6),
    (2, 3, 3, 3, 2, 7, 5),
    (3, 1, 1, 2, 1, 4, 5),
]
# (C_in, C_out, k, stride, padding, output_padding, H, W)
TRANSPOSED_CASES = [
    (1, 2, 3, 1, 0, 0, 3, 4),
    (2, 3, 3, 1, 1, 0, 4, 3),
    (3, 2, 2, 2, 0, 1, 3, 2),
    (2, 2, 4, 2, 1, 1, 3, 4),
    (2, 3, 3, 3, 2, 2, 3, 2),
    (2, 1, 3, 3, 1, 1, 2, 3),
]


def bound(layer, backend=None, seed=0, dtype="float64"):
    Parameters({"layer": layer}, backend, dtype, seed=seed)
    return layer


def conv_case(case, backend=None, dtype="float64", **kwargs):
    c_in, c_out, k, s, p, H, W = case
    return bound(Conv2d(c_in, c_out, k, s, p, **kwargs), backend, dtype=dtype), (2, c_in, H, W)


def transposed_case(case, backend=None, dtype="float64", **kwargs):
    c_in, c_out, k, s, p, op, H, W = case
    return bound(ConvTranspose2d(c_in, c_out, k, s, p, op, **kwargs), backend, dtype=dtype), (2, c_in, H, W)


# --- a direct reference: the definitions, one kernel offset at a time, no im2col -----------------------

def reference_conv2d(x, W, b, stride, padding):
    """y[n, o, u, v] = b[o] + Σ_{c,i,j} W[o, c, i, j] · x_pad[n, c, s·u + i, s·v + j]."""
    s, p, k = stride, padding, W.shape[2]
    x_pad = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    H_out, W_out = output_size(x.shape[2], k, s, p), output_size(x.shape[3], k, s, p)
    y = np.zeros((x.shape[0], W.shape[0], H_out, W_out)) + b[:, None, None]
    for i in range(k):
        for j in range(k):
            window = x_pad[:, :, i:i + s * (H_out - 1) + 1:s, j:j + s * (W_out - 1) + 1:s]
            y += np.einsum("oc,nchw->nohw", W[:, :, i, j], window)
    return y


def reference_conv_transpose2d(x, W, b, stride, padding, output_padding):
    """y_pad[n, o, s·u + i, s·v + j] += Σ_c x[n, c, u, v] · W[c, o, i, j]; crop the padding; add b."""
    s, p, k = stride, padding, W.shape[2]
    N, _, H, Wd = x.shape
    H_full, W_full = (H - 1) * s + k + output_padding, (Wd - 1) * s + k + output_padding
    y_pad = np.zeros((N, W.shape[1], H_full, W_full))
    for i in range(k):
        for j in range(k):
            rows, cols = slice(i, i + s * (H - 1) + 1, s), slice(j, j + s * (Wd - 1) + 1, s)
            y_pad[:, :, rows, cols] += np.einsum("co,nchw->nohw", W[:, :, i, j], x)
    return y_pad[:, :, p:H_full - p, p:W_full - p] + b[:, None, None]


def max_error_against_reference(layer, x):
    W, b = to_host(layer.W), to_host(layer.b)
    if isinstance(layer, ConvTranspose2d):
        expected = reference_conv_transpose2d(x, W, b, layer.stride, layer.padding, layer.output_padding)
    else:
        expected = reference_conv2d(x, W, b, layer.stride, layer.padding)
    return rel_error(layer.forward(x), expected)


# --- gradients --------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_gradients(backend, rng, case):
    layer, shape = conv_case(case, backend)
    errors = check_layer(layer, backend.asarray(rng.standard_normal(shape)))
    assert set(errors) == {"x", "W", "b"}
    assert max(errors.values()) < LAYER_TOL, errors


@pytest.mark.parametrize("case", TRANSPOSED_CASES)
def test_conv_transpose2d_gradients(backend, rng, case):
    layer, shape = transposed_case(case, backend)
    errors = check_layer(layer, backend.asarray(rng.standard_normal(shape)))
    assert set(errors) == {"x", "W", "b"}
    assert max(errors.values()) < LAYER_TOL, errors


@pytest.mark.parametrize("make", [conv_case, transposed_case])
def test_without_input_grad_the_parameter_gradients_are_still_filled(rng, make):
    case = CONV_CASES[3] if make is conv_case else TRANSPOSED_CASES[3]
    layer, shape = make(case, input_grad=False)
    full, _ = make(case)
    x = rng.standard_normal(shape)
    dy = rng.standard_normal(layer.forward(x).shape)
    full.forward(x)
    assert layer.backward(dy) is None and full.backward(dy) is not None
    assert np.array_equal(layer.dW, full.dW) and np.array_equal(layer.db, full.db)


def test_a_conv_stack_with_relu_gradients(rng):
    """Conv → ReLU → Conv → ConvTranspose: the layers compose (through views) and backprop end to end."""
    net = Sequential(Conv2d(2, 3, 3, 2, 1), ReLU(), Conv2d(3, 4, 2, 1, 0), ConvTranspose2d(4, 2, 3, 2, 1, 1))
    Parameters({"net": net}, dtype="float64", seed=3)
    x = rng.standard_normal((2, 2, 7, 6))
    dy = rng.standard_normal(net.forward(x).shape)

    def loss():
        return float((net.forward(x) * dy).sum())

    net.forward(x)
    dx = net.backward(dy)
    grads = {(i, k): g.copy() for i, layer in enumerate(net.layers) for k, g in getattr(layer, "grads", {}).items()}
    assert rel_error(dx, numerical_gradient(loss, x)) < 1e-7
    for i, layer in enumerate(net.layers):
        for k, p in getattr(layer, "params", {}).items():
            assert rel_error(grads[(i, k)], numerical_gradient(loss, p)) < 1e-7, (i, k)


def test_backward_overwrites_gradients_and_a_new_shape_reallocates_buffers(rng):
    layer, shape = conv_case(CONV_CASES[3])
    x, x3 = rng.standard_normal(shape), rng.standard_normal((3, *shape[1:]))
    dy = rng.standard_normal(layer.forward(x).shape)
    layer.backward(dy)
    first = layer.dW.copy(), layer.db.copy()
    layer.forward(x3)                                     # another batch size: new buffers
    layer.forward(x)
    dx = layer.backward(dy)
    assert np.array_equal(layer.dW, first[0]) and np.array_equal(layer.db, first[1])
    fresh, _ = conv_case(CONV_CASES[3])
    fresh.forward(x)
    assert np.array_equal(dx, fresh.backward(dy))


@pytest.mark.parametrize("make", [conv_case, transposed_case])
def test_float32_in_float32_out(rng, make):
    layer, shape = make(CONV_CASES[3] if make is conv_case else TRANSPOSED_CASES[3], dtype="float32")
    x = rng.standard_normal(shape).astype(np.float32)
    y = layer.forward(x)
    dx = layer.backward(np.ones(y.shape, dtype=np.float32))
    assert y.dtype == dx.dtype == layer.dW.dtype == np.float32


# --- the adjoint: ConvTranspose2d IS Conv2d's transpose ------------------------------------------------

@pytest.mark.parametrize("case", TRANSPOSED_CASES)
def test_conv_transpose_is_the_adjoint_of_conv(rng, case):
    """⟨conv(z), x⟩ = ⟨z, conv_transpose(x)⟩ for the same weights (biases zero), every z and x."""
    transposed, x_shape = transposed_case(case)
    c_in, c_out, k, s, p, op, H, W = case
    conv = bound(Conv2d(c_out, c_in, k, s, p))
    conv.W[...] = transposed.W                            # the same (C_in, C_out, k, k) array
    conv.b[...] = 0.0
    transposed.b[...] = 0.0
    x = rng.standard_normal(x_shape)                      # (N, C_in, H, W)
    Tx = transposed.forward(x)                            # (N, C_out, H_out, W_out)
    z = rng.standard_normal(Tx.shape)
    Az = conv.forward(z)
    assert Az.shape == x.shape
    assert np.isclose(np.sum(Az * x), np.sum(z * Tx), rtol=1e-12, atol=1e-12)


GEOMETRIES = [(3, 1, 1, (2, 3, 5, 4)), (4, 2, 1, (1, 2, 7, 6)), (2, 3, 2, (2, 1, 6, 5)), (3, 2, 0, (2, 4, 7, 8))]


@pytest.mark.parametrize("fast", [True, False])
def test_col2im_is_the_adjoint_of_im2col(rng, fast):
    for k, s, p, shape in GEOMETRIES:
        patches = Im2col(k, s, p, fast=fast)
        x = rng.standard_normal(shape)
        cols = patches.im2col(x).copy()
        M = rng.standard_normal(cols.shape)
        assert np.isclose(np.sum(cols * M), np.sum(x * patches.col2im(M, shape)), rtol=1e-12)


# --- against the definitions and against PyTorch ------------------------------------------------------

@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_matches_the_definition(rng, case):
    layer, shape = conv_case(case)
    assert max_error_against_reference(layer, rng.standard_normal(shape)) < 1e-12


@pytest.mark.parametrize("case", TRANSPOSED_CASES)
def test_conv_transpose2d_matches_the_definition(rng, case):
    layer, shape = transposed_case(case)
    assert max_error_against_reference(layer, rng.standard_normal(shape)) < 1e-12


def torch_forward_backward(layer, x, dy):
    """PyTorch's output, dL/dx, dL/dW and dL/db for the same weights and L = Σ y·dy."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    xt = torch.tensor(x, requires_grad=True)
    Wt = torch.tensor(np.array(layer.W), requires_grad=True)
    bt = torch.tensor(np.array(layer.b), requires_grad=True)
    if isinstance(layer, ConvTranspose2d):
        yt = F.conv_transpose2d(xt, Wt, bt, stride=layer.stride, padding=layer.padding,
                                output_padding=layer.output_padding)
    else:
        yt = F.conv2d(xt, Wt, bt, stride=layer.stride, padding=layer.padding)
    (yt * torch.tensor(dy)).sum().backward()
    return [t.detach().numpy() for t in (yt, xt.grad, Wt.grad, bt.grad)]


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-12), ("float32", 1e-5)])
@pytest.mark.parametrize("make, case", [(conv_case, c) for c in CONV_CASES]
                         + [(transposed_case, c) for c in TRANSPOSED_CASES])
def test_forward_and_backward_match_pytorch(rng, make, case, dtype, tol):
    pytest.importorskip("torch")
    layer, shape = make(case, dtype=dtype)
    x = rng.standard_normal(shape).astype(dtype)
    y = layer.forward(x)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = layer.backward(dy)
    y_t, dx_t, dW_t, db_t = torch_forward_backward(layer, x, dy)
    for ours, theirs in [(y, y_t), (dx, dx_t), (layer.dW, dW_t), (layer.db, db_t)]:
        assert ours.shape == theirs.shape
        assert rel_error(ours, theirs) < tol


def test_initialization_is_pytorchs(rng):
    """U(±1/sqrt(fan_in)), with PyTorch's fan_in = W.shape[1]·k·k: C_in·k·k, and C_out·k·k when transposed."""
    for layer, fan_in in [(Conv2d(6, 40, 3), 6 * 9), (ConvTranspose2d(40, 6, 3), 6 * 9)]:
        bound(layer)
        W = np.asarray(layer.W)
        assert np.abs(W).max() <= 1 / np.sqrt(fan_in) and np.abs(W).max() > 0.95 / np.sqrt(fan_in)
        assert np.abs(np.asarray(layer.b)).max() <= 1 / np.sqrt(fan_in)
    for init, std in [("kaiming", np.sqrt(2 / (8 * 9))), ("xavier", np.sqrt(2 / (8 * 9 + 64 * 9)))]:
        layer = bound(Conv2d(8, 64, 3, init=init))       # fan_in = 8·9, fan_out = 64·9
        assert np.std(layer.W) == pytest.approx(std, rel=0.05) and not np.any(layer.b)
    assert Conv2d(2, 3, 4).param_shapes() == {"W": (3, 2, 4, 4), "b": (3,)}
    assert ConvTranspose2d(2, 3, 4).param_shapes() == {"W": (2, 3, 4, 4), "b": (3,)}


# --- errors: one clear sentence each ----------------------------------------------------------------

@pytest.mark.parametrize("make, x_shape, message", [
    (lambda: Conv2d(3, 4, 3), (3, 8, 8),
     r"Conv2d\(3, 4, .*\) expects NCHW input of shape \(N, 3, H, W\), got an array of shape \(3, 8, 8\)"),
    (lambda: Conv2d(3, 4, 3), (2, 1, 8, 8), r"expects 3 input channels, got 1"),
    (lambda: Conv2d(1, 4, 5, padding=1), (2, 1, 2, 8),
     r"input of 2×8 pixels, smaller than its 5×5 kernel even with padding 1"),
    (lambda: ConvTranspose2d(2, 4, 3), (2, 2, 5), r"ConvTranspose2d\(2, 4, .*\) expects NCHW input"),
    (lambda: ConvTranspose2d(2, 4, 3), (2, 3, 5, 5), r"expects 2 input channels, got 3"),
    (lambda: ConvTranspose2d(1, 1, 3, stride=1, padding=2), (1, 1, 1, 4), r"= -1×2: the output would be empty"),
])
def test_bad_input_is_refused_in_one_sentence(make, x_shape, message):
    layer = bound(make())
    with pytest.raises(ValueError, match=message):
        layer.forward(np.zeros(x_shape))


@pytest.mark.parametrize("kwargs, message", [
    (dict(in_channels=0, out_channels=2, kernel_size=3), r"in_channels must be an integer ≥ 1, got 0"),
    (dict(in_channels=1, out_channels=-2, kernel_size=3), r"out_channels must be an integer ≥ 1, got -2"),
    (dict(in_channels=1, out_channels=2, kernel_size=0), r"kernel_size must be an integer ≥ 1, got 0"),
    (dict(in_channels=1, out_channels=2, kernel_size=2.5), r"kernel_size must be an integer ≥ 1, got 2.5"),
    (dict(in_channels=1, out_channels=2, kernel_size=3, stride=0), r"stride must be an integer ≥ 1, got 0"),
    (dict(in_channels=1, out_channels=2, kernel_size=3, padding=-1), r"padding must be an integer ≥ 0, got -1"),
    (dict(in_channels=1, out_channels=2, kernel_size=3, init="he"), r"unknown init 'he'"),
])
@pytest.mark.parametrize("cls", [Conv2d, ConvTranspose2d])
def test_bad_arguments_are_refused(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)


def test_output_padding_must_be_smaller_than_stride():
    with pytest.raises(ValueError, match=r"output_padding must be smaller than stride \(2\), got 2"):
        ConvTranspose2d(1, 1, 3, stride=2, output_padding=2)
    with pytest.raises(ValueError, match=r"output_padding must be an integer ≥ 0, got -1"):
        ConvTranspose2d(1, 1, 3, output_padding=-1)


@pytest.mark.parametrize("make", [conv_case, transposed_case])
def test_backward_refuses_a_gradient_of_the_wrong_shape(rng, make):
    layer, shape = make(CONV_CASES[0] if make is conv_case else TRANSPOSED_CASES[0])
    y = layer.forward(rng.standard_normal(shape))
    with pytest.raises(ValueError, match=r"backward expects dy of the output's shape"):
        layer.backward(np.zeros((y.shape[0], y.shape[1], y.shape[2] + 1, y.shape[3])))


# --- the compiled twins of im2col and col2im (tinyvae/conv_kernels.py) give the references' bits ------

TWIN_GEOMETRIES = [*GEOMETRIES, (4, 2, 1, (3, 5, 14, 14)), (4, 2, 1, (2, 1, 7, 9))]


def twin_max_difference(kernels, rng, dtype):
    """max |twin − reference| of im2col and col2im over TWIN_GEOMETRIES, with ``kernels`` (a
    ConvKernels) as the twins; im2col gets an NCHW image and one that is NHWC in memory."""
    worst = 0.0
    for k, s, p, shape in TWIN_GEOMETRIES:
        reference, twin = Im2col(k, s, p, fast=False), Im2col(k, s, p)
        twin.twins = lambda xp: kernels
        N, C, H, W = shape
        x = rng.standard_normal(shape).astype(dtype)
        x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
        cols = rng.standard_normal((N * output_size(H, k, s, p) * output_size(W, k, s, p), k * k * C)).astype(dtype)
        for image in (x, x_nhwc):
            worst = max(worst, float(np.max(np.abs(twin.im2col(image) - reference.im2col(image)))))
        worst = max(worst, float(np.max(np.abs(twin.col2im(cols, shape) - reference.col2im(cols, shape)))))
    return worst


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_im2col_and_col2im_give_the_references_bits(rng, dtype):
    pytest.importorskip("numba")
    from tinyvae.conv_kernels import compiled_conv_kernels

    kernels = compiled_conv_kernels()
    assert kernels is not None and Im2col(4, 2, 1).twins(np) is kernels
    assert Im2col(4, 2, 1, fast=False).twins(np) is None
    assert twin_max_difference(kernels, rng, dtype) == 0.0


def test_the_twins_loops_uncompiled_give_the_references_bits(rng):
    """The same loops as plain Python (what runs where Numba is missing, and what the
    planted-bug tests mutate) agree with the references too."""
    from tinyvae.conv_kernels import ConvKernels, col2im_add, im2col_copy

    assert twin_max_difference(ConvKernels(im2col_copy, col2im_add), rng, np.float64) == 0.0


def test_the_layer_benchmark_runs_and_refuses_bad_numbers(capsys):
    from tinyvae import conv_benchmark

    assert conv_benchmark.main(["--batch-size", "2", "--repeats", "1", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert "encoder  tinyvae" in out and "decoder  tinyvae" in out
    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    else:
        assert out.count("ratio tinyvae/pytorch") == 2
    with pytest.raises(SystemExit) as exit_info:
        conv_benchmark.main(["--threads", "0"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1 and "--threads" in err and "Traceback" not in err
