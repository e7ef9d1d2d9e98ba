"""Open a finished run folder for the commands that study it (tinyvae.analysis.anomaly, tinyvae.analysis.latent).

    run = open_run("runs/digits")            # run.model, run.dataset, run.test (uint8), run.test_max
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import numpy as np

from tinyvae.backend import Backend, get_backend
from tinyvae.data.loading import Dataset, load_dataset, test_pixels
from tinyvae.training.checkpoint import Checkpoint, build_model, load_checkpoint


class Run(NamedTuple):
    model: Any                 # the trained model, on the requested device
    checkpoint: Checkpoint
    dataset: Dataset
    test: np.ndarray           # (N_test, D) uint8, as the model saw them (binarized if it was trained so)
    test_max: int              # test / test_max ∈ [0, 1]
    config: dict[str, Any]     # the run's flags (tinyvae.training.trainer.RunConfig as a dict)


def open_run(path: str | os.PathLike, device: Backend | str = "cpu", data_dir: str | None = None) -> Run:
    """The model of the run in ``path`` (a folder or its checkpoint.npz) with its test set.

    Raises BackendError, CheckpointError or DataError, each with a one-sentence message.
    """
    backend = get_backend(device, verbose=True) if isinstance(device, str) else device
    checkpoint = load_checkpoint(path)
    model = build_model(checkpoint, backend)
    config = checkpoint.state.get("run", {})
    dataset = load_dataset(config.get("dataset", "mnist"), data_dir, progress=False)
    test, test_max = test_pixels(dataset, config.get("binarize", "none"), int(config.get("seed", model.seed)))
    return Run(model, checkpoint, dataset, test, test_max, config)
