"""The student release's GPU path: the CUDA kernels are not shipped there (they spell out the
solutions), so a GPU backend must fall back to the release's own maths and train, not crash.

The release is built by its command, its assignment regions are filled in as a student who
solved them would have them (the grader's ``isolate``, keeping only the withheld regions as
stubs), and a training step runs on a stand-in GPU backend: NumPy arrays behind a backend named
"gpu", so that every GPU branch (the twins' choice, the generator, the loss check every 50 steps)
is taken. With the instructor's package the same backend would try to compile the kernels."""

import os
import shutil
import subprocess
import sys

from tinyvae.assignments import spec
from tinyvae.assignments.build import collect_regions
from tinyvae.assignments.grade import isolate

SCRIPT = r"""
import numpy as np
from dataclasses import dataclass
from tinyvae.backend import Backend
from tinyvae.data.loading import load_dataset
from tinyvae.fast import twins_for
from tinyvae.fast import shipped
from tinyvae.training.trainer import RunConfig, Trainer

@dataclass(frozen=True)
class StandInGPU(Backend):
    def rng(self, seed):
        return np.random.default_rng(seed)

    def synchronize(self):
        pass

gpu = StandInGPU("gpu", np, "stand-in GPU (NumPy)")
assert gpu.is_gpu and shipped("cuda_kernels") is None and shipped("cpu_kernels") is None
assert twins_for(gpu).name == "reference"
config = RunConfig(dataset="digits", epochs=1, batch_size=64, hidden=[16], latent_dim=2)
trainer = Trainer(config, load_dataset("digits"), gpu, OUT, progress=False, log=print)
assert trainer.check_every == 50 and trainer.optimizer.fused_update is None
assert trainer.fit() == "done"
print("trained", trainer.history[-1]["test_loss"])
"""


def test_the_release_trains_on_a_gpu_backend_with_its_own_maths(student_release, tmp_path):
    release = tmp_path / "solved-release"
    shutil.copytree(student_release, release)
    notes = isolate(release / "tinyvae", collect_regions(spec.PACKAGE), keep=set(spec.WITHHELD))
    assert notes == []
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, "PYTHONPATH": str(release)}
    script = SCRIPT.replace("OUT", repr(str(tmp_path / "run")))
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "trained" in result.stdout and "Traceback" not in result.stderr
