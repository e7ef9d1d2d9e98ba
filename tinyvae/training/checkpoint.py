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
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinyvae.backend import Backend, get_backend
from tinyvae.models.registry import MODEL_CLASSES, model_from_config
from tinyvae.training.fileio import atomic_write

FORMAT_VERSION = 1
CHECKPOINT_NAME = "checkpoint.npz"
ZIP_MAGIC = b"PK\x03\x04"       # an .npz file is a zip archive


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
    """Read a checkpoint (a file or a run folder), or raise CheckpointError in one sentence.

    Nothing is ever unpickled: a file holding Python objects is refused, whoever wrote it.
    """
    path = checkpoint_path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint found at {path}")
    try:
        with open(path, "rb") as f:
            is_zip = f.read(4) == ZIP_MAGIC
    except OSError as err:
        raise CheckpointError(f"cannot read {path} ({err.strerror or err})") from None
    if not is_zip:
        raise CheckpointError(f"{path} is not a tinyvae checkpoint (not an .npz file)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except ValueError as err:
        if "pickle" in str(err):
            raise CheckpointError(f"{path} holds Python objects, which a tinyvae checkpoint never does; "
                                  f"it is refused unread") from None
        raise CheckpointError(f"{path} is truncated or corrupt (an array in it cannot be read)") from None
    except (OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error):
        raise CheckpointError(f"{path} is truncated or corrupt (not a complete .npz file)") from None
    meta = _read_meta(arrays.pop("meta", None), path)
    if meta["format"] > FORMAT_VERSION:
        raise CheckpointError(f"{path} was written by a newer tinyvae (checkpoint format {meta['format']}; this one "
                              f"reads format {FORMAT_VERSION}): upgrade tinyvae to load it")
    if meta["format"] != FORMAT_VERSION or "params" not in arrays:
        raise CheckpointError(f"{path} has checkpoint format {meta['format']!r}; "
                              f"this tinyvae reads format {FORMAT_VERSION}")
    optimizer = dict(meta["optimizer"])
    for key, value in arrays.items():
        if key.startswith("optimizer."):
            optimizer[key.removeprefix("optimizer.")] = value
    return Checkpoint(meta["model_class"], meta["model_config"], arrays["params"], optimizer,
                      meta.get("state", {}), path)


def _read_meta(meta: np.ndarray | None, path: Path) -> dict[str, Any]:
    """The checkpoint's JSON description, checked for the entries every reader relies on."""
    not_ours = CheckpointError(f"{path} is an .npz file but not a tinyvae checkpoint (no valid 'meta' entry)")
    if meta is None or meta.dtype.kind != "U" or meta.ndim != 0:
        raise not_ours
    try:
        meta = json.loads(str(meta))
    except json.JSONDecodeError:
        raise not_ours from None
    if not isinstance(meta, dict) or not isinstance(meta.get("format"), int):
        raise not_ours
    if meta["format"] <= FORMAT_VERSION and not (isinstance(meta.get("optimizer"), dict)
                                                 and isinstance(meta.get("model_config"), dict)
                                                 and isinstance(meta.get("model_class"), str)
                                                 and isinstance(meta.get("state", {}), dict)):
        raise not_ours
    return meta


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
