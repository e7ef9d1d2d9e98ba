"""python -m tinyvae.train with the family's flags: --model, --free-bits, --kl-warmup/--kl-cycles,
the autoencoder's flags, --exclude-classes; exact resume and checkpoints of every model."""

import dataclasses
import json

import numpy as np
import pytest
from test_train import small_trainer

import tinyvae
from tinyvae.data.loading import load_dataset
from tinyvae.models.autoencoder import Autoencoder
from tinyvae.models.cvae import ConditionalVAE
from tinyvae.train import main
from tinyvae.training.checkpoint import load_checkpoint

SMALL = ["--dataset", "digits", "--hidden", "16", "--batch-size", "64", "--latent-dim", "3", "--no-progress"]
FAMILY = {
    "cvae-annealed": dict(model="cvae", kl_warmup=1.5, free_bits=0.1),
    "vae-cyclical": dict(kl_cycles=2, beta=2.0),
    "denoising-sparse-ae": dict(model="ae", noise="masking", sparsity="l1", sparsity_weight=0.01),
    "iwae-k3": dict(iwae_k=3),
    "m2-20-labels": dict(model="m2", labels=20),                        # a labelled batch of 20 every step
    "m2-natural-rate": dict(model="m2", labels=20, labelled_batch=0),  # labels at their natural rate
    "m2-labelled-batch-7": dict(model="m2", labels=20, labelled_batch=7),
}


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.mark.parametrize("name", list(FAMILY))
def test_every_model_resumes_bitwise_and_loads(tmp_path, digits, name):
    straight = small_trainer(digits, tmp_path / "a", **FAMILY[name])
    assert straight.fit() == "done"
    first = small_trainer(digits, tmp_path / "b", **FAMILY[name])
    assert first.fit(on_step=lambda e, s: first.request_stop() if (e, s) == (2, 5) else None) == "interrupted"
    second = small_trainer(digits, tmp_path / "b", **FAMILY[name])
    second.restore(load_checkpoint(tmp_path / "b"))
    assert second.fit() == "done"
    assert np.array_equal(second.model.params.data, straight.model.params.data)
    model = tinyvae.load(tmp_path / "b")
    assert type(model) is type(straight.model) and model.config() == straight.model.config()
    assert np.array_equal(model.params.data, straight.model.params.data)


def test_history_reports_kl_weight_and_active_units(tmp_path, digits):
    trainer = small_trainer(digits, tmp_path, epochs=4, kl_warmup=2.0)
    lines = []
    trainer.log = lines.append
    assert trainer.fit() == "done"
    weights = [row["kl_weight"] for row in trainer.history]
    assert weights == pytest.approx([23 / 48, 47 / 48, 1.0, 1.0])   # 24 steps an epoch: w at t = 23, 47, ...
    for row in trainer.history:
        assert 0 <= row["active_units"] <= 4
        assert row["train_loss"] == pytest.approx(row["train_recon"] + row["train_kl"])  # the true objective
    assert "AU " in lines[0] and " w 0.48" in lines[0]


def test_iwae_run_stores_k_and_evaluates(tmp_path, capsys):
    from tinyvae.evaluate import main as evaluate_main
    from tinyvae.models.iwae import IWAE

    out = tmp_path / "run"
    assert main([*SMALL, "--epochs", "2", "--iwae-k", "4", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["run"]["iwae_k"] == 4 and config["model"]["k"] == 4
    rows = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert all(row["train_neg_L_k"] <= row["train_loss"] + 1e-9 for row in rows)      # L_K ≥ the ELBO
    assert main(["--resume", str(out), "--epochs", "3", "--no-progress"]) == 0
    model = tinyvae.load(out)
    assert isinstance(model, IWAE) and model.k == 4
    assert evaluate_main([str(out), "--iwae-k", "2", "--probe-epochs", "1", "--classifier-epochs", "1",
                          "--samples", "50", "--no-progress"]) == 0
    report = json.loads((out / "eval.json").read_text())
    last = json.loads((out / "history.jsonl").read_text().splitlines()[-1])
    assert last["epoch"] == 3
    assert report["elbo"]["neg_elbo"] == pytest.approx(last["test_loss"], rel=1e-12)    # the same K-sample noise


def test_m2_run_stores_its_labelled_subset_and_reports_the_error(tmp_path, capsys, digits):
    from tinyvae.evaluate import main as evaluate_main
    from tinyvae.models.m2 import M2

    out = tmp_path / "run"
    assert main([*SMALL, "--epochs", "2", "--model", "m2", "--labels", "30", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    labelled = config["labelled"]
    assert config["run"]["labels"] == 30 and len(labelled) == 30
    assert np.bincount(digits.train_labels[labelled], minlength=10).tolist() == [3] * 10     # balanced
    assert config["model"]["alpha"] == pytest.approx(0.1 * len(digits.train_labels) / 30)
    rows = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert all(0 <= row["test_error"] <= 1 for row in rows) and "error " in capsys.readouterr().out
    model = tinyvae.load(out)
    assert isinstance(model, M2)
    assert load_checkpoint(out).state["labelled"] == labelled
    assert evaluate_main([str(out), "--no-progress"]) == 0
    report = json.loads((out / "eval.json").read_text())
    assert report["test_error"] == pytest.approx(rows[-1]["test_error"])
    assert "classification error of q(y|x)" in capsys.readouterr().out
    other = tmp_path / "other-seed"
    assert main([*SMALL, "--epochs", "1", "--model", "m2", "--labels", "30", "--seed", "3", "--out", str(other)]) == 0
    assert json.loads((other / "config.json").read_text())["labelled"] != labelled


def test_m2_steps_hold_a_labelled_batch_and_sweep_the_unlabelled_once(tmp_path, digits):
    trainer = small_trainer(digits, tmp_path / "run", model="m2", labels=20, labelled_batch=7, epochs=2)
    steps: list[np.ndarray] = []
    step = trainer.train_step
    trainer.train_step = lambda idx, *rest: (steps.append(np.asarray(idx)), step(idx, *rest))
    assert trainer.fit() == "done"
    labelled = set(trainer.labelled)
    per_epoch = len(steps) // 2
    assert per_epoch == trainer.steps_per_epoch == -(-(len(digits.train_labels) - 20) // trainer.config.batch_size)
    for epoch in (steps[:per_epoch], steps[per_epoch:]):
        assert all(set(idx[:7].tolist()) <= labelled and not set(idx[7:].tolist()) & labelled for idx in epoch)
        unlabelled = np.concatenate([idx[7:] for idx in epoch])
        assert sorted(unlabelled.tolist()) == sorted(set(range(len(digits.train_labels))) - labelled)
        seen = np.bincount(np.concatenate([idx[:7] for idx in epoch]), minlength=len(digits.train_labels))[
            trainer.labelled]
        assert seen.max() - seen.min() <= 1                  # shuffles one after another: each seen equally often
    assert not np.array_equal(steps[0][:7], steps[per_epoch][:7])          # a new order each epoch
    row = trainer.history[-1]
    assert row["train_loss"] == pytest.approx(row["train_recon"] + row["train_kl"])


def test_m2_labelled_batch_is_capped_and_off_for_other_models(tmp_path, digits):
    assert small_trainer(digits, tmp_path / "a", model="m2", labels=12, labelled_batch=50).labelled_batch == 12
    natural = small_trainer(digits, tmp_path / "b", model="m2", labels=12, labelled_batch=0)
    assert natural.labelled_batch == 0 and len(natural.sweep) == len(digits.train_labels)
    assert small_trainer(digits, tmp_path / "c").labelled_batch == 0
    few = dataclasses.replace(digits, train_images=digits.train_images[:20],
                              train_labels=np.repeat(np.arange(10), 2))
    every = small_trainer(few, tmp_path / "d", model="m2", labels=20, epochs=1)     # nothing left unlabelled
    assert every.labelled_batch == 0 and every.fit() == "done" and every.history[-1]["train_loss"] > 0


def test_an_m2_run_saved_before_the_labelled_batch_resumes_as_it_was_trained(tmp_path, digits):
    from tinyvae.training.checkpoint import save_checkpoint

    old = small_trainer(digits, tmp_path / "old", model="m2", labels=20, labelled_batch=0, epochs=1)
    assert old.fit() == "done"
    state = old.state()
    del state["run"]["labelled_batch"]                       # what a checkpoint from before the setting holds
    save_checkpoint(tmp_path / "old" / "checkpoint.npz", old.model, old.optimizer, state)
    assert main(["--resume", str(tmp_path / "old"), "--epochs", "2", "--no-progress"]) == 0
    assert load_checkpoint(tmp_path / "old").state["run"]["labelled_batch"] == 0


def test_exclude_classes_and_labels(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*SMALL, "--epochs", "1", "--model", "cvae", "--exclude-classes", "0", "9", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["run"]["exclude_classes"] == [0, 9] and config["run"]["model"] == "cvae"
    assert config["model"]["n_classes"] == 10
    assert (out / "samples.png").stat().st_size > 0 and "AU " in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        main(["--resume", str(out), "--model", "vae"])
    assert info.value.code == 2 and "cannot change when resuming" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--noise", "gaussian"], "--noise does not apply to --model vae"),
    (["--model", "ae", "--beta", "2"], "--beta does not apply to --model ae"),
    (["--model", "ae", "--free-bits", "1"], "--free-bits does not apply"),
    (["--kl-warmup", "2", "--kl-cycles", "3"], "choose one"),
    (["--exclude-classes", "12"], "exclude_classes must name some"),
    (["--exclude-classes", *map(str, range(10))], "exclude_classes must name some"),
    (["--free-bits", "-1"], "argument --free-bits: must be a finite number ≥ 0"),
    (["--labelled-batch", "8"], "--labelled-batch does not apply to --model vae"),
    (["--model", "m2", "--labels", "20", "--labelled-batch", "-1"], "argument --labelled-batch: must be a whole"),
])
def test_family_flags_refuse_nonsense(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        main([*SMALL, "--epochs", "1", "--out", str(tmp_path / "x"), *argv])
    assert info.value.code == 2 and message in capsys.readouterr().err


def test_autoencoder_run_writes_no_samples(tmp_path):
    out = tmp_path / "ae"
    assert main([*SMALL, "--epochs", "1", "--model", "ae", "--sparsity", "kl", "--latent-dim", "2",
                 "--out", str(out)]) == 0
    assert not (out / "samples.png").exists() and (out / "latent_scatter.png").exists()
    assert isinstance(tinyvae.load(out), Autoencoder)


def test_the_conditional_model_is_built_by_name(digits, tmp_path):
    assert isinstance(small_trainer(digits, tmp_path, model="cvae").model, ConditionalVAE)


def test_the_trainer_refuses_options_of_another_model(digits, tmp_path):
    with pytest.raises(ValueError, match="not the ae"):
        small_trainer(digits, tmp_path, model="ae", kl_warmup=2.0)
    with pytest.raises(ValueError, match="autoencoder options"):
        small_trainer(digits, tmp_path, model="cvae", noise="gaussian")
