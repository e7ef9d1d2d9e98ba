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


def _digits_trainer(out, cuda_graph, binarize="none"):
    from tinyvae.data import load_dataset
    from tinyvae.trainer import RunConfig, Trainer

    config = RunConfig(dataset="digits", epochs=2, batch_size=64, hidden=[32], latent_dim=4, binarize=binarize)
    return Trainer(config, load_dataset("digits"), get_backend("gpu"), out, progress=False,
                   log=lambda line: None, cuda_graph=cuda_graph)


@pytest.mark.parametrize("binarize", ["none", "dynamic"])
def test_cuda_graph_run_matches_the_eager_run(tmp_path, binarize):
    eager = _digits_trainer(tmp_path / "eager", cuda_graph=False, binarize=binarize)
    graphed = _digits_trainer(tmp_path / "graph", cuda_graph=True, binarize=binarize)
    assert eager.fit() == "done" and graphed.fit() == "done"
    assert graphed.cuda_graph, "capture fell back to eager: the test would prove nothing"
    assert graphed.optimizer.t == eager.optimizer.t
    assert rel_error(eager.model.params.data, graphed.model.params.data) < 1e-5
    for a, b in zip(eager.history, graphed.history, strict=True):
        assert a["test_loss"] == pytest.approx(b["test_loss"], rel=1e-5)


def test_training_step_reads_nothing_back_from_the_device(tmp_path):
    """No host synchronization inside a step: any read-back (.get(), float(), bool() of a device
    array) or host→device copy is illegal while a CUDA stream is being captured, so a step
    that captures cleanly has none. Eager runs execute exactly the same code."""
    from tinyvae.cuda_graph import CapturedStep

    for binarize in ("none", "dynamic"):
        trainer = _digits_trainer(tmp_path / binarize, cuda_graph=False, binarize=binarize)
        CapturedStep(trainer)                          # raises GraphCaptureError on any sync
