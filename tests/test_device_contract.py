"""What the GPU path promises, checked on the CPU by the contract (no GPU needed):

* a checkpoint written on either device resumes on either device, mid-epoch included: where
  the noise generator's state cannot be carried over (CuPy keeps it on the device, and its
  ``bit_generator.state`` is a method, not a dict), the rest of the epoch draws its noise from
  (seed, epoch, step), and one line says so;
* the training loop reads nothing back from the device inside a step: only the loss check,
  every ``check_every`` steps, copies to the host.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from test_train import small_trainer

from tinyvae.backend import Backend, cpu_backend, noise_state, restore_noise_state
from tinyvae.data.loading import load_dataset
from tinyvae.training.checkpoint import load_checkpoint
from tinyvae.training.trainer import Trainer


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


class CupyLikeBitGenerator:
    """Like cupy.random's bit generators: ``state`` is a METHOD returning a device pointer."""

    def state(self) -> int:
        return 0xDEAD


class CupyLikeGenerator:
    """Draws like a NumPy generator, but its state cannot be read as data (as CuPy's)."""

    def __init__(self, seed: Any) -> None:
        self._numpy = np.random.default_rng(seed)
        self.bit_generator = CupyLikeBitGenerator()

    def standard_normal(self, *args: Any, **kwargs: Any) -> np.ndarray:
        return self._numpy.standard_normal(*args, **kwargs)

    def random(self, *args: Any, **kwargs: Any) -> np.ndarray:
        return self._numpy.random(*args, **kwargs)


@dataclass(frozen=True)
class CupyLikeBackend(Backend):
    """The CPU backend with CuPy's kind of noise generator: a stand-in for the GPU's contract."""

    def rng(self, seed: Any) -> CupyLikeGenerator:
        return CupyLikeGenerator(seed)


def cupy_like() -> CupyLikeBackend:
    return CupyLikeBackend("cpu", np, "CPU with a CuPy-like generator")


def trainer_on(backend, digits, out, lines):
    trainer = small_trainer(digits, out, epochs=2)
    return Trainer(trainer.config, digits, backend, out, progress=False, log=lines.append)


def interrupted_checkpoint(backend, digits, out):
    """A run on ``backend`` stopped after step 5 of epoch 2; its checkpoint."""
    trainer = trainer_on(backend, digits, out, [])

    def stop(epoch, step):
        if (epoch, step) == (2, 4):
            trainer.request_stop()

    assert trainer.fit(on_step=stop) == "interrupted"
    return load_checkpoint(out)


def test_a_cupy_like_generator_state_is_neither_saved_nor_assigned():
    generator = CupyLikeGenerator(1)
    numpy_state = np.random.default_rng(1).bit_generator.state
    assert noise_state(generator) is None
    assert not restore_noise_state(generator, numpy_state)
    assert callable(generator.bit_generator.state)            # the method was not overwritten
    assert noise_state(np.random.default_rng(1)) == numpy_state
    assert not restore_noise_state(np.random.default_rng(1), {"bit_generator": "MT19937"})


@pytest.mark.parametrize("written_on, resumed_on", [("gpu-like", "cpu"), ("cpu", "gpu-like"),
                                                    ("gpu-like", "gpu-like")])
def test_a_mid_epoch_checkpoint_resumes_across_devices(tmp_path, digits, written_on, resumed_on):
    backends = {"cpu": cpu_backend, "gpu-like": cupy_like}
    checkpoint = interrupted_checkpoint(backends[written_on](), digits, tmp_path / "run")
    assert (checkpoint.state["partial"]["noise_state"] is None) == (written_on == "gpu-like")
    results = []
    for attempt in ("first", "second"):
        lines = []
        resumed = trainer_on(backends[resumed_on](), digits, tmp_path / attempt, lines)
        resumed.restore(checkpoint)
        assert resumed.fit() == "done" and resumed.epochs_done == 2
        notes = [line for line in lines if "(seed, epoch, step) = (1, 2, 5)" in line]
        assert len(notes) == 1, lines                      # said once, in one line
        results.append(resumed.model.params.data.copy())
    assert np.array_equal(*results)                        # the derived noise is deterministic


def test_the_derived_noise_is_the_seed_epoch_step_generator(tmp_path, digits):
    """After a resume without a saved state, the epoch continues with rng([seed, epoch, 1, step])."""
    checkpoint = interrupted_checkpoint(cupy_like(), digits, tmp_path / "run")
    drawn = []
    resumed = trainer_on(cpu_backend(), digits, tmp_path / "resumed", [])
    resumed.restore(checkpoint)
    original = resumed._draw_noise
    resumed._draw_noise = lambda noise, n: drawn.append(noise.bit_generator.state) or original(noise, n)
    resumed.fit()
    assert drawn[0] == np.random.default_rng([1, 2, 1, 5]).bit_generator.state


class DeviceArray(np.ndarray):
    """An ndarray that behaves like a GPU array: reading it on the host (float(), int(),
    bool(), .item(), .tolist()) fails. Reductions stay arrays, as they do on a GPU."""

    def __array_wrap__(self, obj, context=None, return_scalar=False):
        return super().__array_wrap__(obj, context, False)

    def _host_read(self, *args: Any) -> Any:
        raise AssertionError("a device value was read on the host inside the training loop")

    __float__ = __int__ = __bool__ = item = tolist = _host_read


@dataclass(frozen=True)
class CountingBackend(Backend):
    """NumPy whose data arrays are DeviceArrays and whose copies to the host are counted."""

    copies: list = None

    def asarray(self, a: Any, dtype: Any = None) -> Any:
        return np.asarray(a, dtype=dtype).view(DeviceArray)

    def to_numpy(self, a: Any) -> np.ndarray:
        self.copies.append(np.shape(a))
        return np.asarray(a).view(np.ndarray)


@pytest.mark.parametrize("binarize, model", [("none", {}), ("dynamic", {}), ("none", {"iwae_k": 3}),
                                             ("none", {"model": "m2", "labels": 20})])
def test_the_training_loop_reads_the_device_only_at_loss_checks(tmp_path, digits, binarize, model):
    backend = CountingBackend("cpu", np, "counting", copies=[])
    config = small_trainer(digits, tmp_path, epochs=1, binarize=binarize, **model).config
    config.batch_size = 8
    trainer = Trainer(config, digits, backend, tmp_path, progress=False, log=lambda line: None)
    trainer.check_every = 50                                 # as on the GPU
    trainer._end_epoch = lambda epoch, seconds: setattr(trainer, "epochs_done", epoch) or "done"   # evaluation
    trainer.optimizer.fused_update = None                         # Numba does not type ndarray subclasses
    assert isinstance(trainer.train_x, DeviceArray)
    assert trainer.fit() == "done"
    steps = trainer.steps_per_epoch                          # m2: the unlabelled examples only
    assert steps > 150 and backend.copies == [(50,)] * (steps // 50) + [(steps % 50,)] * (steps % 50 > 0)
