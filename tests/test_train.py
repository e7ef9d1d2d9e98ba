"""python -m tinyvae.train end to end on the offline digits dataset; checkpoints, resume, NaN, Ctrl-C."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import tinyvae
from tinyvae.backend import get_backend, gpu_available
from tinyvae.data.loading import load_dataset
from tinyvae.models.vae import ELBO
from tinyvae.train import main
from tinyvae.training.checkpoint import CheckpointError, load_checkpoint
from tinyvae.training.trainer import RunConfig, Trainer

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--dataset", "digits", "--hidden", "32", "--batch-size", "64", "--no-progress"]


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def small_trainer(digits, out, epochs=2, **overrides):
    config = RunConfig(dataset="digits", epochs=epochs, batch_size=64, hidden=[32], latent_dim=4, **overrides)
    return Trainer(config, digits, get_backend("cpu"), out, progress=False, log=lambda line: None)


def test_cli_writes_every_listed_file(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*SMALL, "--epochs", "2", "--latent-dim", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "epoch   1/2" in printed and "epoch   2/2" in printed and "test" in printed
    for name in ["config.json", "history.jsonl", "checkpoint.npz", "reconstructions.png", "samples.png",
                 "loss_curve.png", "latent_scatter.png", "manifold.png"]:
        assert (out / name).stat().st_size > 0, name
    rows = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2]
    for key in ["train_loss", "test_loss", "test_recon", "test_kl", "train_seconds"]:
        assert all(np.isfinite(row[key]) for row in rows), key
    assert rows[1]["test_loss"] == pytest.approx(rows[1]["test_recon"] + rows[1]["test_kl"])
    config = json.loads((out / "config.json").read_text())
    assert config["run"]["latent_dim"] == 2 and config["model"]["hidden"] == [32]
    assert not list(out.glob(".*tmp"))                          # no temporary files left behind


def test_training_on_digits_learns(tmp_path, digits):
    trainer = small_trainer(digits, tmp_path, epochs=5)
    assert trainer.fit() == "done"
    losses = [row["test_loss"] for row in trainer.history]
    assert losses[-1] < losses[0] - 2.0, losses                  # digits test loss falls by several nats


def test_interrupted_and_resumed_run_is_bitwise_identical(tmp_path, digits):
    straight = small_trainer(digits, tmp_path / "a", epochs=3)
    assert straight.fit() == "done"

    first = small_trainer(digits, tmp_path / "b", epochs=3)

    def interrupt(epoch, step):
        if (epoch, step) == (2, 7):
            first.request_stop()

    assert first.fit(on_step=interrupt) == "interrupted"
    checkpoint = load_checkpoint(tmp_path / "b")
    assert checkpoint.state["partial"]["epoch"] == 2 and checkpoint.state["partial"]["step"] == 8

    second = small_trainer(digits, tmp_path / "b", epochs=3)
    second.restore(checkpoint)
    assert second.fit() == "done"
    assert np.array_equal(second.model.params.data, straight.model.params.data)
    assert np.array_equal(second.optimizer.m, straight.optimizer.m)
    assert second.history == [dict(row, train_seconds=b["train_seconds"])
                              for row, b in zip(straight.history, second.history, strict=True)]


def test_cli_resume_continues_to_more_epochs(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*SMALL, "--epochs", "1", "--out", str(out)]) == 0
    assert main(["--resume", str(out), "--epochs", "2", "--no-progress"]) == 0
    assert len((out / "history.jsonl").read_text().splitlines()) == 2
    with pytest.raises(SystemExit) as info:
        main(["--resume", str(out), "--hidden", "64"])
    assert info.value.code == 2 and "cannot change when resuming" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main([*SMALL, "--epochs", "1", "--out", str(out)])     # would overwrite a run
    assert info.value.code == 2 and "--resume" in capsys.readouterr().err


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, digits):
    lines = []
    trainer = small_trainer(digits, tmp_path, epochs=3)
    trainer.log = lines.append
    real = trainer.model.loss_and_grads
    calls = {"n": 0}
    steps_per_epoch = -(-digits.train_images.shape[0] // 64)

    def poisoned(x, eps=None, check_finite=True):
        calls["n"] += 1
        elbo = real(x, eps, check_finite)
        if calls["n"] == steps_per_epoch + 4:                     # epoch 2, step 4
            return ELBO(np.float32("nan"), elbo.recon, elbo.kl)
        return elbo

    trainer.model.loss_and_grads = poisoned
    after_epoch_1 = {}
    assert trainer.fit(on_step=lambda e, s: after_epoch_1.setdefault("w", trainer.model.params.data.copy())
                       if (e, s) == (2, 0) else None) == "nan"
    assert "epoch 2, step 4 of" in lines[-1] and "end of epoch 1" in lines[-1]
    saved = load_checkpoint(tmp_path)
    assert saved.state["epochs_done"] == 1 and saved.state["partial"] is None
    reference = small_trainer(digits, tmp_path / "ref", epochs=1)
    reference.fit()
    assert np.array_equal(saved.params, reference.model.params.data)


def test_checkpoint_loads_without_pickle_and_rebuilds_the_model(tmp_path, digits):
    trainer = small_trainer(digits, tmp_path, epochs=1)
    trainer.fit()
    with np.load(tmp_path / "checkpoint.npz", allow_pickle=False) as npz:
        assert all(npz[key].dtype != object for key in npz.files)
    model = tinyvae.load(tmp_path)
    assert np.array_equal(model.params.data, trainer.model.params.data)
    assert model.sample(5).shape == (5, 64)
    assert model.reconstruct(digits.test_images[:3] / 16).shape == (3, 64)


def test_bad_checkpoints_give_one_sentence(tmp_path, digits):
    with pytest.raises(CheckpointError, match="no checkpoint found"):
        tinyvae.load(tmp_path / "nowhere.npz")
    trainer = small_trainer(digits, tmp_path, epochs=1)
    trainer.fit()
    data = (tmp_path / "checkpoint.npz").read_bytes()
    (tmp_path / "truncated.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt") as info:
        tinyvae.load(tmp_path / "truncated.npz")
    assert "\n" not in str(info.value)
    (tmp_path / "garbage.npz").write_bytes(b"not a zip file at all")
    with pytest.raises(CheckpointError, match="not a tinyvae checkpoint"):
        tinyvae.load(tmp_path / "garbage.npz")


@pytest.mark.parametrize("argv", [["--epochs", "0"], ["--dataset", "cifar"], ["--frobnicate"],
                                  ["--likelihood", "poisson"], ["--lr", "-1"]])
def test_bad_flags_are_argparse_errors(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.skipif(gpu_available(), reason="this machine has a GPU")
def test_device_gpu_without_gpu_is_one_sentence_and_status_2(tmp_path):
    result = subprocess.run([sys.executable, "-m", "tinyvae.train", "--device", "gpu", *SMALL],
                            capture_output=True, text=True, cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "[gpu]" in result.stderr and "Traceback" not in result.stderr


def test_ctrl_c_saves_and_exits_cleanly(tmp_path):
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "tinyvae.train", *SMALL, "--epochs", "1000", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env)
    deadline = time.time() + 60
    for line in proc.stdout:                                     # wait until an epoch has finished
        if line.startswith("epoch") or time.time() > deadline:
            break
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "--resume" in stdout
    state = load_checkpoint(out).state
    assert state["epochs_done"] >= 1
    assert (out / "samples.png").exists()


def test_there_is_no_cuda_graph_flag(capsys):
    """CuPy refuses cuBLAS calls inside a stream capture, so a captured step cannot work (docs/benchmarks.md)."""
    with pytest.raises(SystemExit) as exit_info:
        main([*SMALL, "--cuda-graph"])
    assert exit_info.value.code == 2 and "--cuda-graph" in capsys.readouterr().err


def test_small_models_train_with_one_blas_thread(tmp_path, digits):
    """A second BLAS thread gains nothing on a digits-sized step and can stall a busy machine."""
    assert small_trainer(digits, tmp_path).blas_threads() == 1
    big = Trainer(RunConfig(dataset="digits", hidden=[4000]), digits, get_backend("cpu"), tmp_path / "big",
                  progress=False, log=lambda line: None)
    assert big.blas_threads() is None                                  # 6·128·(64·4000·2 + ...) > 1e8


def test_resume_into_another_folder_copies_the_run_and_never_touches_the_original(tmp_path, capsys):
    """--resume DIR --out OTHER: OTHER gets the whole run, continued; DIR keeps every byte and timestamp."""
    original, other, straight = tmp_path / "original", tmp_path / "other", tmp_path / "straight"
    assert main([*SMALL, "--epochs", "1", "--latent-dim", "2", "--out", str(original)]) == 0
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in original.iterdir()}
    assert main(["--resume", str(original), "--epochs", "2", "--out", str(other), "--no-progress"]) == 0
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in original.iterdir()} == before
    assert load_checkpoint(original).state["epochs_done"] == 1
    resumed = load_checkpoint(other)
    assert resumed.state["epochs_done"] == 2 and [row["epoch"] for row in resumed.state["history"]] == [1, 2]
    assert [json.loads(line)["epoch"] for line in (other / "history.jsonl").read_text().splitlines()] == [1, 2]
    assert main([*SMALL, "--epochs", "2", "--latent-dim", "2", "--out", str(straight)]) == 0
    assert np.array_equal(resumed.params, load_checkpoint(straight).params)      # the same run, bit for bit
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:                                       # never over another run
        main(["--resume", str(original), "--epochs", "3", "--out", str(straight), "--no-progress"])
    assert info.value.code == 2 and "already holds a run" in capsys.readouterr().err
    assert load_checkpoint(straight).state["epochs_done"] == 2
