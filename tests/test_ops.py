"""The fast twins are chosen in one place (tinyvae.fast) and equal their references: the CPU's
choice here, the CUDA kernels against their references where a GPU is usable. (The kernels'
source is compiled and their formulas checked without a GPU in tests/test_cuda_kernels.py.)"""

import numpy as np
import pytest
from conftest import requires_gpu

from tinyvae import VAE, Adam
from tinyvae.backend import get_backend
from tinyvae.fast import REFERENCE, twins_for
from tinyvae.fast.cpu_kernels import compiled_adam_update
from tinyvae.models.autoencoder import Autoencoder
from tinyvae.nn.gradcheck import rel_error
from tinyvae.nn.layers import Linear
from tinyvae.nn.losses import bernoulli_nll, gaussian_kl
from tinyvae.nn.params import Parameters
from tinyvae.nn.reparam import Reparameterize


def test_cpu_models_use_the_reference_maths_and_the_numba_adam():
    model = VAE(input_dim=12, hidden=(8,), latent_dim=3)
    assert type(model.reparam) is Reparameterize
    assert model.ops.bernoulli_nll is bernoulli_nll and model.ops.gaussian_kl is gaussian_kl
    assert Autoencoder(input_dim=12, hidden=(8,), latent_dim=3).ops.bernoulli_nll is bernoulli_nll
    expected = "reference" if compiled_adam_update() is None else "numba"
    assert model.ops.name == twins_for(get_backend("cpu")).name == expected
    assert (model.ops.adam_update is None) == (expected == "reference")
    assert Adam(model.params).fused_update is None                      # Adam alone: the reference update


def test_the_reference_set_is_complete():
    assert REFERENCE.adam_update is None and REFERENCE.reparameterize is Reparameterize


@pytest.mark.parametrize("dtype, tol", [("float32", 1e-5), ("float64", 1e-12)])
@pytest.mark.parametrize("name", ["bernoulli", "kl", "reparam"])
@pytest.mark.gpu
@requires_gpu
def test_cuda_kernels_equal_their_references(name, dtype, tol):
    gpu = get_backend("gpu")
    twins = twins_for(gpu)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((64, 50)).astype(dtype) * 4        # logits / mu
    b = rng.random((64, 50)).astype(dtype)                      # targets / logvar
    c = rng.standard_normal((64, 50)).astype(dtype)             # eps / dz
    if name == "bernoulli":
        pairs = zip(bernoulli_nll(a, b), twins.bernoulli_nll(gpu.asarray(a), gpu.asarray(b)), strict=True)
    elif name == "kl":
        pairs = zip(gaussian_kl(a, b), twins.gaussian_kl(gpu.asarray(a), gpu.asarray(b)), strict=True)
    else:
        ref, fused = Reparameterize(), twins.reparameterize()
        z_ref, z_gpu = ref.forward(a, b, c), fused.forward(gpu.asarray(a), gpu.asarray(b), gpu.asarray(c))
        pairs = [(z_ref, z_gpu), *zip(ref.backward(c), fused.backward(gpu.asarray(c)), strict=True)]
    for expected, got in pairs:
        assert got.dtype == np.dtype(dtype)
        assert rel_error(expected, gpu.to_numpy(got)) < tol


@pytest.mark.parametrize("bias_correction", [True, False])
@pytest.mark.gpu
@requires_gpu
def test_cuda_adam_equals_the_cpu_update(bias_correction):
    gpu = get_backend("gpu")
    cpu_params = Parameters({"fc": Linear(30, 20)}, None, "float32", seed=0)
    gpu_params = Parameters({"fc": Linear(30, 20)}, gpu, "float32", seed=0)
    twins = twins_for(gpu)
    cpu_opt = Adam(cpu_params, lr=0.01, bias_correction=bias_correction)
    gpu_opt = Adam(gpu_params, lr=0.01, bias_correction=bias_correction, fused_update=twins.adam_update)
    assert twins.name == "cuda" and gpu_opt.fused_update is not None
    rng = np.random.default_rng(1)
    for _ in range(5):
        g = rng.standard_normal(cpu_params.size).astype(np.float32)
        cpu_params.grad[...] = g
        gpu_params.grad[...] = gpu.asarray(g)
        cpu_opt.step()
        gpu_opt.step()
    assert gpu_opt.t == cpu_opt.t == 5
    assert rel_error(cpu_params.data, gpu_params.data) < 1e-6
    assert rel_error(cpu_opt.v, gpu_opt.v) < 1e-6


@pytest.mark.gpu
@requires_gpu
def test_gpu_models_use_the_cuda_kernels():
    from tinyvae.fast.cuda_kernels import CudaReparameterize

    model = VAE(input_dim=12, hidden=(8,), latent_dim=3, backend="gpu")
    assert isinstance(model.reparam, CudaReparameterize)
    assert model.ops.bernoulli_nll.__self__ is model.ops.gaussian_kl.__self__      # one compiled module


def test_without_numba_everything_runs_the_reference(tmp_path):
    """Numba is optional (the ``fast`` extra): where it cannot be imported, Adam and the
    convolution run their NumPy references, and training works."""
    import subprocess
    import sys

    script = """
import sys
sys.modules["numba"] = None                     # import numba now raises ImportError
import numpy as np
from tinyvae import VAE, Adam
from tinyvae.fast.cpu_kernels import compiled_adam_update
from tinyvae.nn.conv import Conv2d
from tinyvae.nn.params import Parameters
assert compiled_adam_update() is None
model = VAE(input_dim=12, hidden=(8,), latent_dim=3)
optimizer = Adam(model.params, fused_update=model.ops.adam_update)
assert model.ops.name == "reference" and optimizer.fused_update is None
x = (np.random.default_rng(0).random((4, 12)) < 0.5).astype(np.float32)
before = model.params.data.copy()
model.loss_and_grads(x)
optimizer.step()
assert not np.array_equal(before, model.params.data)
conv = Conv2d(1, 2, 3)
Parameters({"conv": conv}, seed=0)
y = conv.forward(np.ones((2, 1, 5, 5), dtype=np.float32))
conv.backward(np.ones_like(y))
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-1500:]
