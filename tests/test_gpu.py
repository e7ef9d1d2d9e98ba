"""CPU/GPU parity: identical weights and host-drawn noise give the same losses, gradients and
trained weights. Skipped without a GPU.

How close is "the same"? cuBLAS and OpenBLAS add the K products of a dot product in different
orders, and a sum of K terms in floating point is exact only to about K·u relative to the sum of
the terms' magnitudes (u = the unit roundoff, eps/2; Higham, Accuracy and Stability of Numerical
Algorithms, §3.1). The deepest sum here is over K = 784 pixels, and a gradient passes through
L = 4 such products (two layers each way) before it reaches the first layer's weights. So:

* float32, one step: |Δgrad| ≲ L·K·u·max|grad| = 4·784·6e-8 ≈ 1.9e-4 relative to the largest
  entry, which is what ``rel_error`` measures; we allow 2·L·K·eps32 ≈ 7.5e-4. (Comparing float32
  over several Adam steps is not meaningful: Adam divides by √v, so a gradient that differs in
  its last bits near zero moves its weight by up to ±lr either way, then the trajectories part.)
* float64, five Adam steps: the same bound with eps64 is ≈ 1e-12 per step; we allow
  5 · 2·L·K·eps64 ≈ 7e-12 and compare the whole trajectory.
"""

import numpy as np
import pytest
from conftest import requires_gpu

from tinyvae import VAE, Adam
from tinyvae.backend import get_backend
from tinyvae.nn.gradcheck import rel_error

pytestmark = [pytest.mark.gpu, requires_gpu]

K, L = 784, 4                                    # the deepest sum, and products on a gradient's path


def tolerance(dtype: str, steps: int = 1) -> float:
    return steps * 2 * L * K * float(np.finfo(dtype).eps)


def pair(likelihood, dtype):
    gpu = get_backend("gpu")
    cpu_model = VAE(likelihood=likelihood, backend="cpu", seed=3, dtype=dtype)
    gpu_model = VAE(likelihood=likelihood, backend=gpu, seed=3, dtype=dtype)
    assert np.array_equal(cpu_model.params.data, gpu.to_numpy(gpu_model.params.data))
    return gpu, cpu_model, gpu_model


def batch(rng, dtype):
    x = (rng.random((128, 784)) < 0.3).astype(dtype)
    return x, rng.standard_normal((128, 20)).astype(dtype)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_float32_gradients_agree_to_summation_order(likelihood):
    gpu, cpu_model, gpu_model = pair(likelihood, "float32")
    x, eps = batch(np.random.default_rng(0), np.float32)
    a = cpu_model.loss_and_grads(x, eps)
    b = gpu_model.loss_and_grads(gpu.asarray(x), gpu.asarray(eps))
    for part_cpu, part_gpu in zip(a, b, strict=True):
        assert float(part_gpu) == pytest.approx(float(part_cpu), rel=tolerance("float32"))
    for name in cpu_model.params.names():
        assert rel_error(cpu_model.params.grad_of(name), gpu_model.params.grad_of(name)) < tolerance("float32"), name


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_float64_training_agrees_over_five_steps(likelihood):
    gpu, cpu_model, gpu_model = pair(likelihood, "float64")
    cpu_opt, gpu_opt = (Adam(m.params, fused_update=m.ops.adam_update) for m in (cpu_model, gpu_model))   # as trained
    rng = np.random.default_rng(0)
    for _ in range(5):
        x, eps = batch(rng, np.float64)
        a = cpu_model.loss_and_grads(x, eps)
        b = gpu_model.loss_and_grads(gpu.asarray(x), gpu.asarray(eps))
        assert float(b.loss) == pytest.approx(float(a.loss), rel=tolerance("float64"))
        cpu_opt.step()
        gpu_opt.step()
    assert rel_error(cpu_model.params.data, gpu_model.params.data) < tolerance("float64", steps=5)


def test_a_gpu_run_trains_and_resumes_on_the_cpu(tmp_path):
    """A checkpoint written on the GPU mid-epoch resumes on the CPU (and says how its noise continues)."""
    from tinyvae.data.loading import load_dataset
    from tinyvae.training.checkpoint import load_checkpoint
    from tinyvae.training.trainer import RunConfig, Trainer

    digits = load_dataset("digits")
    config = RunConfig(dataset="digits", epochs=2, batch_size=64, hidden=[32], latent_dim=4)
    trainer = Trainer(config, digits, get_backend("gpu"), tmp_path, progress=False, log=lambda line: None)
    trainer.fit(on_step=lambda epoch, step: trainer.request_stop() if (epoch, step) == (2, 3) else None)
    lines = []
    resumed = Trainer(config, digits, get_backend("cpu"), tmp_path, progress=False, log=lines.append)
    resumed.restore(load_checkpoint(tmp_path))
    assert resumed.fit() == "done" and np.isfinite(resumed.history[-1]["test_loss"])
    assert any("(seed, epoch, step) = (1, 2, 4)" in line for line in lines)
