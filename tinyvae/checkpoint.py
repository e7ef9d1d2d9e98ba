"""Checkpoints: one ``.npz`` file, written atomically, read with ``allow_pickle=False``.

Contents (every entry a plain array; nothing is pickled)::

    params          (P,)  the flat parameter buffer
    optimizer.m     (P,)  Adam's moments (or optimizer.velocity for SGD)
    optimizer.v     (P,)
    meta            a JSON string: format version, model class and config, parameter
                    layout (names, offsets, shapes), optimizer scalars (t, lr, betas...),
                    and the training state (epoch, step, RNG state, history, run config)

``tinyvae.load(path)`` rebuilds a model from it, ready to ``sample`` and ``reconstruct``.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinyvae.backend import Backend, get_backend
from tinyvae.fileio import atomic_write
from tinyvae.models import MODEL_CLASSES, model_from_config

FORMAT_VERSION = 1
CHECKPOINT_NAME = "checkpoint.npz"


class CheckpointError(Exception):
    """A checkpoint is missing, unreadable or does not fit; the message is one sentence."""


@dataclass
class Checkpoint:
    model_class: str
    model_config: dict[str, Any]
    params: np.ndarray                 # (P,)
    optimizer: dict[str, Any]          # what Optimizer.load_state_dict takes
    state: dict[str, Any]              # training state: epoch, step, rng, history, run config
    path: Path


def checkpoint_path(path: str | os.PathLike) -> Path:
    """``path`` itself if it is a file, else ``path/checkpoint.npz`` (a run folder)."""
    path = Path(path)
    return path / CHECKPOINT_NAME if path.is_dir() else path


def save_checkpoint(path: str | os.PathLike, model: Any, optimizer: Any, state: dict[str, Any]) -> None:
    """Write model weights, optimizer state and ``state`` (JSON-friendly) to ``path`` atomically."""
    backend = model.params.backend
    arrays = {"params": backend.to_numpy(model.params.data)}
    scalars = {}
    for key, value in optimizer.state_dict().items():
        if isinstance(value, np.ndarray):
            arrays[f"optimizer.{key}"] = value
        else:
            scalars[key] = value
    meta = {
        "format": FORMAT_VERSION,
        "model_class": type(model).__name__,
        "model_config": model.config(),
        "layout": {name: [offset, list(shape)] for name, (offset, shape) in model.params.layout.items()},
        "optimizer": {"class": type(optimizer).__name__, **scalars},
        "state": state,
    }
    with atomic_write(path) as f:
        np.savez(f, meta=np.array(json.dumps(meta)), **arrays)


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint (a file or a run folder), or raise CheckpointError in one sentence."""
    path = checkpoint_path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint found at {path}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
        meta = json.loads(str(arrays.pop("meta")))
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path} is not a readable tinyvae checkpoint (truncated or corrupt?): {err}") from None
    if meta.get("format") != FORMAT_VERSION or "params" not in arrays:
        raise CheckpointError(f"{path} has checkpoint format {meta.get('format')!r}; "
                              f"this tinyvae reads format {FORMAT_VERSION}")
    optimizer = dict(meta["optimizer"])
    for key, value in arrays.items():
        if key.startswith("optimizer."):
            optimizer[key.removeprefix("optimizer.")] = value
    return Checkpoint(meta["model_class"], meta["model_config"], arrays["params"], optimizer,
                      meta.get("state", {}), path)


def build_model(checkpoint: Checkpoint, backend: Backend | str = "cpu") -> Any:
    """A model with the checkpoint's architecture and weights, on ``backend``."""
    if checkpoint.model_class not in MODEL_CLASSES:
        raise CheckpointError(f"{checkpoint.path} holds a {checkpoint.model_class}, which this tinyvae cannot build")
    try:
        model = model_from_config(checkpoint.model_class, checkpoint.model_config, backend)
        model.params.load(checkpoint.params)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{checkpoint.path} does not fit its own model config: {err}") from None
    return model


def load(path: str | os.PathLike, device: Backend | str = "cpu") -> Any:
    """Load a trained model from a checkpoint file or run folder, ready to sample and reconstruct.

        >>> model = tinyvae.load("runs/digits")
        >>> images = model.sample(16)
    """
    backend = get_backend(device) if isinstance(device, str) else device
    return build_model(load_checkpoint(path), backend)
