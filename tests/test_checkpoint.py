"""Checkpoints under attack: a failed save keeps the old file, and a loader that never unpickles and
answers every foreign, broken or newer file with one sentence.

``bad_checkpoints`` writes one file of each kind; tests/test_cli_errors.py feeds them to every command.
"""

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tinyvae import SGD, VAE, Adam
from tinyvae.training.checkpoint import FORMAT_VERSION, CheckpointError, build_model, load_checkpoint, save_checkpoint


def small_model(seed=0):
    return VAE(input_dim=6, hidden=(4,), latent_dim=2, seed=seed)


def saved(path, seed=0):
    model = small_model(seed)
    save_checkpoint(path, model, Adam(model.params), {"epochs_done": 1, "history": []})
    return model


class Exploit:
    """Unpickling this object creates the file ``path``: what a hostile checkpoint could do."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def rewrite(source, target, **changes):
    """Copy the .npz ``source`` to ``target`` with entries replaced (an ndarray) or the meta JSON edited (a dict)."""
    with np.load(source, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    meta = json.loads(str(arrays["meta"]))
    meta.update(changes.pop("meta", {}))
    arrays.update(changes, meta=np.array(json.dumps(meta)))
    with open(target, "wb") as f:
        np.savez(f, **arrays)
    return target


def bad_checkpoints(folder):
    """{kind: path} of files no loader may accept: each kind has its own sentence."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    good = folder / "good.npz"
    saved(good)
    data = good.read_bytes()
    files = {"random": folder / "random.npz", "truncated": folder / "truncated.npz", "empty": folder / "empty.npz"}
    files["random"].write_bytes(np.random.default_rng(0).bytes(4096))
    files["truncated"].write_bytes(data[: len(data) // 2])
    files["empty"].write_bytes(b"")
    files["pickled"] = rewrite(good, folder / "pickled.npz",
                               params=np.array([Exploit(folder / "PWNED")], dtype=object))
    files["newer"] = rewrite(good, folder / "newer.npz", meta={"format": FORMAT_VERSION + 1})
    files["foreign"] = folder / "foreign.npz"
    np.savez(files["foreign"], weights=np.zeros(3))
    good.unlink()
    return files


SENTENCES = {
    "random": "is not a tinyvae checkpoint (not an .npz file)",
    "empty": "is not a tinyvae checkpoint (not an .npz file)",
    "truncated": "is truncated or corrupt",
    "pickled": "holds Python objects, which a tinyvae checkpoint never does",
    "newer": f"was written by a newer tinyvae (checkpoint format {FORMAT_VERSION + 1}; this one reads format "
             f"{FORMAT_VERSION}): upgrade tinyvae",
    "foreign": "is an .npz file but not a tinyvae checkpoint",
}


@pytest.mark.parametrize("kind", sorted(SENTENCES))
def test_every_bad_file_is_refused_in_one_sentence_that_never_suggests_unpickling(tmp_path, kind):
    path = bad_checkpoints(tmp_path)[kind]
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert SENTENCES[kind] in message and str(path) in message
    assert "\n" not in message and message.count(". ") == 0
    assert "pickle" not in message.replace(str(path), "").lower()   # never advise allow_pickle=True


def test_a_checkpoint_holding_an_object_array_is_never_unpickled(tmp_path):
    """The attack: an object array whose unpickling creates a file. Loading must refuse it unread."""
    path = bad_checkpoints(tmp_path)["pickled"]
    with pytest.raises(CheckpointError, match="holds Python objects"):
        load_checkpoint(path)
    assert not (tmp_path / "PWNED").exists()
    with np.load(path, allow_pickle=True) as npz:                  # the attack is real: unpickling runs it
        npz["params"]
    assert (tmp_path / "PWNED").exists()


def test_the_current_format_loads_and_only_newer_ones_are_refused(tmp_path):
    model = saved(tmp_path / "ok.npz", seed=3)
    checkpoint = load_checkpoint(tmp_path / "ok.npz")
    assert np.array_equal(build_model(checkpoint).params.data, model.params.data)
    older = rewrite(tmp_path / "ok.npz", tmp_path / "older.npz", meta={"format": FORMAT_VERSION - 1})
    with pytest.raises(CheckpointError, match=f"has checkpoint format {FORMAT_VERSION - 1}; this tinyvae reads"):
        load_checkpoint(older)


def test_a_save_that_fails_midway_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    """The write is atomic: bytes go to a temporary file that replaces the checkpoint only when complete."""
    path = tmp_path / "checkpoint.npz"
    old = saved(path, seed=1)
    before = path.read_bytes()
    real_savez = np.savez

    def savez_then_fail(file, **arrays):                            # half the archive, then the disk fills up
        buffer = io.BytesIO()
        real_savez(buffer, **arrays)
        file.write(buffer.getvalue()[: buffer.tell() // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", savez_then_fail)
    model = small_model(seed=2)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(path, model, SGD(model.params), {"epochs_done": 2, "history": []})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert np.array_equal(build_model(load_checkpoint(path)).params.data, old.params.data)
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.npz"]      # and no temporary file is left behind


def test_a_save_never_shows_a_half_written_file_under_the_final_name(tmp_path, monkeypatch):
    """While the archive is being written, the final name still holds the complete previous checkpoint."""
    path = tmp_path / "checkpoint.npz"
    saved(path, seed=1)
    before = path.read_bytes()
    seen = []
    real_savez = np.savez

    def savez_and_look(file, **arrays):
        real_savez(file, **arrays)
        seen.append(path.read_bytes())                              # the archive is written, not yet in place

    monkeypatch.setattr(np, "savez", savez_and_look)
    model = small_model(seed=2)
    save_checkpoint(path, model, Adam(model.params), {"epochs_done": 2, "history": []})
    assert seen == [before]
    assert zipfile.is_zipfile(path) and path.read_bytes() != before
