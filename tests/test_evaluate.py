"""python -m tinyvae.evaluate end to end on small digits runs: the report, the files, and one-sentence errors."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinyvae.backend import get_backend
from tinyvae.data.loading import load_dataset
from tinyvae.evaluate import evaluate, main
from tinyvae.models.vae import VAE
from tinyvae.training.checkpoint import build_model, load_checkpoint, save_checkpoint
from tinyvae.training.optim import Adam
from tinyvae.training.trainer import RunConfig, Trainer

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["--iwae-k", "50", "--probe-epochs", "20", "--classifier-epochs", "2", "--no-progress"]


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def train_run(digits, out, epochs, **overrides):
    config = RunConfig(dataset="digits", epochs=epochs, hidden=[64], latent_dim=8, **overrides)
    trainer = Trainer(config, digits, get_backend("cpu"), out, progress=False, log=lambda line: None)
    assert trainer.fit() == "done"
    return trainer


@pytest.fixture(scope="module")
def run(digits, tmp_path_factory):
    """A digits VAE, 64-64-8, trained 40 epochs (about a second)."""
    out = tmp_path_factory.mktemp("digits-run")
    train_run(digits, out, epochs=40)
    return out


def test_cli_prints_the_table_and_writes_eval_json_and_figures(run, tmp_path, capsys):
    assert main([str(run), "--out", str(tmp_path), *QUICK]) == 0
    printed = capsys.readouterr().out
    for label in ["negative ELBO", "−L_50 (IWAE)", "active units", "linear probe accuracy", "Fréchet distance"]:
        assert label in printed, label
    report = json.loads((tmp_path / "eval.json").read_text())
    for name in report["figures"]:
        assert (tmp_path / name).stat().st_size > 0, name
    assert set(report["figures"]) >= {"eval_reconstructions.png", "eval_samples.png", "eval_latent.png",
                                      "eval_interpolation.png", "eval_kl_per_dimension.png"}
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    elbo, iwae = report["elbo"], report["iwae"]
    assert elbo["neg_elbo"] == pytest.approx(history[-1]["test_loss"], rel=1e-12)   # the trainer's own number
    assert elbo["neg_elbo"] == pytest.approx(elbo["recon"] + elbo["kl"])
    assert iwae["k"] == 50 and iwae["neg_L_k"] < elbo["neg_elbo"]           # a tighter bound
    latent = report["latent"]
    assert sum(latent["kl_per_dimension"]) == pytest.approx(elbo["kl"], rel=1e-5)
    assert latent["active_units"] == 8 and latent["inactive"] == []
    assert report["probe"]["test_accuracy"] > 0.75                          # measured: 0.81
    quality = report["sample_quality"]
    assert 0 < quality["frechet_distance_train_vs_test"] < quality["frechet_distance"]
    assert quality["samples"] == 296 and not list(tmp_path.glob(".*tmp"))


def test_dead_dimensions_are_reported_inactive(run, digits):
    model = build_model(load_checkpoint(run))
    head = model.encoder.layers[-1]
    head.W[:, [2, 5]] = 0.0                                                  # mu_2 and mu_5 ignore the input
    report, _ = evaluate(model, digits, {"binarize": "none", "seed": 1}, seed=1, iwae_k=2, probe_epochs=1,
                         classifier_epochs=1, progress=False)
    assert report["latent"]["inactive"] == [2, 5] and report["latent"]["active_units"] == 6


def test_binarized_runs_are_scored_on_the_test_images_they_were_trained_with(digits, tmp_path, capsys):
    train_run(digits, tmp_path, epochs=2, binarize="static")
    out = tmp_path / "eval"
    assert main([str(tmp_path / "checkpoint.npz"), "--out", str(out), *QUICK, "--samples", "100"]) == 0
    report = json.loads((out / "eval.json").read_text())
    history = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert report["binarize"] == "static" and report["sample_quality"]["samples"] == 100
    assert report["elbo"]["neg_elbo"] == pytest.approx(history[-1]["test_loss"], rel=1e-12)
    assert main([str(tmp_path), "--out", str(out), *QUICK, "--seed", "9"]) == 0    # other noise, same images:
    report = json.loads((out / "eval.json").read_text())
    assert report["seed"] == 9 and report["elbo"]["kl"] == pytest.approx(history[-1]["test_kl"], rel=1e-12)


def test_out_defaults_to_the_checkpoint_folder(run, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    assert main([str(copy), "--iwae-k", "1", "--probe-epochs", "1", "--classifier-epochs", "1", "--no-progress",
                 "--seed", "3"]) == 0
    assert json.loads((copy / "eval.json").read_text())["seed"] == 3


def error_of(argv, capsys):
    status = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    return status, err[-1] if err else ""


def test_bad_checkpoints_and_data_are_one_sentence(run, tmp_path, capsys):
    status, line = error_of([str(tmp_path / "nowhere")], capsys)
    assert status == 2 and line.startswith("error: no checkpoint found")
    data = (run / "checkpoint.npz").read_bytes()
    (tmp_path / "truncated.npz").write_bytes(data[: len(data) // 2])
    status, line = error_of([str(tmp_path / "truncated.npz")], capsys)
    assert status == 2 and "truncated or corrupt" in line

    model = VAE(input_dim=10, hidden=(4,), latent_dim=2)                    # 10 pixels: not a digits model
    save_checkpoint(tmp_path / "wrong.npz", model, Adam(model.params), {"run": {"dataset": "digits"}})
    status, line = error_of([str(tmp_path / "wrong.npz")], capsys)
    assert status == 2 and "10-pixel images, but digits has 64-pixel images" in line
    with np.load(tmp_path / "wrong.npz") as npz:
        arrays = dict(npz)
    meta = json.loads(str(arrays["meta"]))
    meta["model_config"]["layers"] = 3                                       # a config this VAE cannot take
    np.savez(tmp_path / "odd.npz", **{**arrays, "meta": np.array(json.dumps(meta))})
    status, line = error_of([str(tmp_path / "odd.npz")], capsys)
    assert status == 2 and "does not fit its own model config" in line
    save_checkpoint(tmp_path / "bare.npz", model, Adam(model.params), {})
    status, line = error_of([str(tmp_path / "bare.npz")], capsys)
    assert status == 2 and "pass --dataset" in line

    status, line = error_of([str(run), "--dataset", "mnist", "--data-dir", str(tmp_path / "absent")], capsys)
    assert status == 1 and "does not exist" in line


@pytest.mark.parametrize("model, says", [("cvae", "holds a conditional VAE"), ("ae", "holds an autoencoder")])
def test_conditional_models_and_autoencoders_are_refused_in_one_sentence(digits, tmp_path, capsys, model, says):
    train_run(digits, tmp_path, epochs=1, model=model)
    status, line = error_of([str(tmp_path)], capsys)
    assert status == 2 and says in line and "docs/family.md" in line


@pytest.mark.parametrize("argv", [["--iwae-k", "0"], ["--samples", "-1"], ["--dataset", "cifar"]])
def test_bad_flags_are_argparse_errors(run, argv, capsys):
    with pytest.raises(SystemExit) as info:
        main([str(run), *argv])
    assert info.value.code == 2 and "error:" in capsys.readouterr().err


def test_the_module_runs_and_errors_without_a_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "tinyvae.evaluate", str(tmp_path / "missing.npz")],
                            capture_output=True, text=True, cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
