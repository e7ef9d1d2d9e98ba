"""The fused GPU kernels against their NumPy references (run only where a GPU is usable),
and the CPU side of the same contract."""

import numpy as np
import pytest
from conftest import requires_gpu

from tinyvae import VAE, Adam
from tinyvae.backend import get_backend
from tinyvae.gradcheck import rel_error
from tinyvae.layers import Linear
from tinyvae.losses import bernoulli_nll, gaussian_kl
from tinyvae.params import Parameters
from tinyvae.reparam import Reparameterize

gpu_only = [pytest.mark.gpu, requires_gpu]


def test_cpu_models_use_the_reference_code():
    model = VAE(input_dim=12, hidden=(8,), latent_dim=3)
    assert type(model.reparam) is Reparameterize
    assert model._bernoulli_nll is bernoulli_nll and model._gaussian_kl is gaussian_kl
    assert Adam(model.params)._schedule is None


@pytest.mark.parametrize("dtype, tol", [("float32", 1e-5), ("float64", 1e-12)])
@pytest.mark.parametrize("name", ["bernoulli", "kl", "reparam"])
@pytest.mark.gpu
@requires_gpu
def test_fused_kernels_equal_their_references(name, dtype, tol):
    from tinyvae import ops

    gpu = get_backend("gpu")
    rng = np.random.default_rng(0)
    a = rng.standard_normal((64, 50)).astype(dtype) * 4        # logits / mu
    b = rng.random((64, 50)).astype(dtype)                      # targets / logvar
    c = rng.standard_normal((64, 50)).astype(dtype)             # eps / dz
    if name == "bernoulli":
        pairs = zip(bernoulli_nll(a, b), ops.fused_bernoulli_nll(gpu.asarray(a), gpu.asarray(b)), strict=True)
    elif name == "kl":
        pairs = zip(gaussian_kl(a, b), ops.fused_gaussian_kl(gpu.asarray(a), gpu.asarray(b)), strict=True)
    else:
        ref, fused = Reparameterize(), ops.FusedReparameterize()
        z_ref, z_gpu = ref.forward(a, b, c), fused.forward(gpu.asarray(a), gpu.asarray(b), gpu.asarray(c))
        pairs = [(z_ref, z_gpu), *zip(ref.backward(c), fused.backward(gpu.asarray(c)), strict=True)]
    for expected, got in pairs:
        assert got.dtype == np.dtype(dtype)
        assert rel_error(expected, gpu.to_numpy(got)) < tol


@pytest.mark.parametrize("bias_correction", [True, False])
@pytest.mark.gpu
@requires_gpu
def test_fused_adam_equals_the_cpu_update(bias_correction):
    gpu = get_backend("gpu")
    cpu_params = Parameters({"fc": Linear(30, 20)}, None, "float32", seed=0)
    gpu_params = Parameters({"fc": Linear(30, 20)}, gpu, "float32", seed=0)
    cpu_opt = Adam(cpu_params, lr=0.01, bias_correction=bias_correction)
    gpu_opt = Adam(gpu_params, lr=0.01, bias_correction=bias_correction)
    rng = np.random.default_rng(1)
    for _ in range(5):
        g = rng.standard_normal(cpu_params.size).astype(np.float32)
        cpu_params.grad[...] = g
        gpu_params.grad[...] = gpu.asarray(g)
        cpu_opt.step()
        gpu_opt.step()
    assert gpu_opt.t == cpu_opt.t == 5 and float(gpu_opt._schedule[0]) == 5.0
    assert rel_error(cpu_params.data, gpu_params.data) < 1e-6
    assert rel_error(cpu_opt.v, gpu_opt.v) < 1e-6


@pytest.mark.gpu
@requires_gpu
def test_gpu_models_use_the_fused_kernels():
    from tinyvae import ops

    model = VAE(input_dim=12, hidden=(8,), latent_dim=3, backend="gpu")
    assert isinstance(model.reparam, ops.FusedReparameterize)
    assert model._bernoulli_nll is ops.fused_bernoulli_nll and model._gaussian_kl is ops.fused_gaussian_kl
