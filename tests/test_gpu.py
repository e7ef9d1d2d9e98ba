"""CPU/GPU parity: identical weights and host-drawn noise give the same losses and gradients
(to float32 tolerance) over several optimizer steps. Skipped without a GPU."""

import numpy as np
import pytest
from conftest import requires_gpu

from tinyvae import VAE, Adam
from tinyvae.backend import get_backend
from tinyvae.gradcheck import rel_error

pytestmark = [pytest.mark.gpu, requires_gpu]


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_cpu_and_gpu_agree_over_several_steps(likelihood):
    gpu = get_backend("gpu")
    cpu_model = VAE(likelihood=likelihood, backend="cpu", seed=3)
    gpu_model = VAE(likelihood=likelihood, backend=gpu, seed=3)
    assert np.array_equal(cpu_model.params.data, gpu.to_numpy(gpu_model.params.data))
    cpu_opt, gpu_opt = Adam(cpu_model.params), Adam(gpu_model.params)
    rng = np.random.default_rng(0)
    for _ in range(5):
        x = (rng.random((128, 784)) < 0.3).astype(np.float32)
        eps = rng.standard_normal((128, 20)).astype(np.float32)
        a = cpu_model.loss_and_grads(x, eps)
        b = gpu_model.loss_and_grads(gpu.asarray(x), gpu.asarray(eps))
        for part_cpu, part_gpu in zip(a, b, strict=True):
            assert float(part_gpu) == pytest.approx(float(part_cpu), rel=1e-4, abs=1e-3)
        for name in cpu_model.params.names():
            assert rel_error(cpu_model.params.grad_of(name), gpu_model.params.grad_of(name)) < 1e-4, name
        cpu_opt.step()
        gpu_opt.step()
    assert rel_error(cpu_model.params.data, gpu_model.params.data) < 1e-5
