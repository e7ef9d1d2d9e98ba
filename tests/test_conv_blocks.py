"""The blocked twins of Conv2d and ConvTranspose2d (tinyvae/fast/conv_blocks.py) compute the references.

Float64, the shapes of tests/test_conv.py (non-square images, stride 1–3, padding 0–2, output
padding), 5 examples in blocks of 1, 2 and 3 (so the last block is a short one): y, dx and db as
the reference's, dW to rounding, central differences on the twin itself, and the cases where the
twin hands over to the reference. Planted bugs in the twins are in tests/mutation.py ("blocked").
"""

import numpy as np
import pytest
from conftest import run_doc_script
from test_conv import CONV_CASES, TRANSPOSED_CASES, bound

from tinyvae.nn.conv import Conv2d, ConvTranspose2d
from tinyvae.nn.gradcheck import check_layer

numba = pytest.importorskip("numba")

from tinyvae.fast import conv_blocks, conv_layer_classes  # noqa: E402
from tinyvae.fast.conv_blocks import BlockedConv2d, BlockedConvTranspose2d  # noqa: E402
from tinyvae.fast.conv_kernels import compiled_conv_kernels  # noqa: E402

N = 5


def pair(case, transposed, examples_per_block, input_grad=True):
    """(reference layer, twin with the same weights, x (N, C_in, H, W), dy): the twin cut into blocks
    of ``examples_per_block`` examples."""
    if transposed:
        c_in, c_out, k, s, p, op, H, W = case
        args, kinds = (c_in, c_out, k, s, p, op), (ConvTranspose2d, BlockedConvTranspose2d)
    else:
        c_in, c_out, k, s, p, H, W = case
        args, kinds = (c_in, c_out, k, s, p), (Conv2d, BlockedConv2d)
    reference = bound(kinds[0](*args, input_grad=input_grad), seed=3)
    twin = bound(kinds[1](*args, input_grad=input_grad, kernels=compiled_conv_kernels()), seed=3)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((N, c_in, H, W))
    y_shape = reference.output_shape(x.shape)
    per_example = (y_shape[2] * y_shape[3] * c_in if not transposed else H * W * c_out) * k * k
    twin.block_bytes = examples_per_block * per_example * 8                   # float64
    return reference, twin, x, rng.standard_normal(y_shape)


@pytest.mark.parametrize("examples_per_block", [1, 2, 3])
@pytest.mark.parametrize("transposed, case", [(False, c) for c in CONV_CASES] + [(True, c) for c in TRANSPOSED_CASES])
def test_the_blocked_layer_computes_the_reference(transposed, case, examples_per_block):
    reference, twin, x, dy = pair(case, transposed, examples_per_block)
    y_ref, y = reference.forward(x), twin.forward(x)
    assert twin.blocks == examples_per_block                                   # it did run in blocks
    np.testing.assert_allclose(y, y_ref, rtol=1e-13, atol=1e-13)
    dx_ref, dx = reference.backward(dy), twin.backward(dy)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(twin.dW, reference.dW, rtol=1e-12, atol=1e-13)  # summed block by block
    np.testing.assert_allclose(twin.db, reference.db, rtol=1e-12, atol=1e-13)  # 1ᵀ dY, not NumPy's sum
    assert np.abs(reference.dW).max() > 0.1


@pytest.mark.parametrize("transposed, case", [(False, CONV_CASES[3]), (True, TRANSPOSED_CASES[3])])
def test_without_an_input_gradient(transposed, case):
    reference, twin, x, dy = pair(case, transposed, 2, input_grad=False)
    reference.forward(x), twin.forward(x)
    assert reference.backward(dy) is None and twin.backward(dy) is None
    np.testing.assert_allclose(twin.dW, reference.dW, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("transposed, case", [(False, CONV_CASES[4]), (True, TRANSPOSED_CASES[4])])
def test_the_blocked_layer_passes_the_gradient_check(transposed, case):
    _, twin, x, _ = pair(case, transposed, 2)
    errors = check_layer(twin, x)
    assert twin.blocks == 2
    assert set(errors) == {"x", "W", "b"} and max(errors.values()) < 1e-7, errors


@pytest.mark.parametrize("transposed, case", [(False, CONV_CASES[3]), (True, TRANSPOSED_CASES[3])])
def test_one_block_keeps_its_patches_and_several_blas_threads_run_the_reference(transposed, case, monkeypatch):
    reference, twin, x, dy = pair(case, transposed, N)                        # all 5 in one block
    np.testing.assert_allclose(twin.forward(x), reference.forward(x), rtol=1e-13, atol=1e-13)
    assert twin.blocks == N
    np.testing.assert_allclose(twin.backward(dy), reference.backward(dy), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(twin.dW, reference.dW, rtol=1e-12, atol=1e-13)
    monkeypatch.setattr(conv_blocks, "blas_threads", lambda: 2)               # a product BLAS spreads itself
    np.testing.assert_array_equal(twin.forward(x), reference.forward(x))      # the reference's own code
    np.testing.assert_array_equal(twin.backward(dy), reference.backward(dy))
    np.testing.assert_array_equal(twin.dW, reference.dW)
    np.testing.assert_array_equal(twin.db, reference.db)


def test_errors_and_names_are_the_references():
    _, twin, _, _ = pair(CONV_CASES[0], False, 1)
    assert repr(twin).startswith("Conv2d(")
    with pytest.raises(ValueError, match=r"^Conv2d\(1, 2, .* expects 1 input channels"):
        twin.forward(np.zeros((2, 3, 5, 5)))


def test_the_conv_networks_are_built_from_the_twins():
    conv, transposed = conv_layer_classes()
    layer = conv(2, 3, 4, 2, 1)
    assert isinstance(layer, BlockedConv2d) and isinstance(transposed(3, 2, 4, 2, 1), BlockedConvTranspose2d)


def test_the_ab_script_runs(tmp_path):
    """docs/scripts/conv_blocks_ab.py, whose table is in docs/benchmarks.md."""
    result = run_doc_script("conv_blocks_ab.py", "--rounds", "1", "--steps", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-1500:]
    assert "one thread" in result.stdout and "2 shares on 2 threads" in result.stdout
