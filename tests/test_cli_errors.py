"""Every command against bad input, as a user would hit it: status 2 for a usage error, 1 for a
runtime failure, exactly one line on stderr, never a traceback, and nothing on disk touched.

The battery runs each command's ``main(argv)`` in-process (fast); a few cases run as real
``python -m`` processes end to end. docs/cli.md lists what each command refuses and why.
"""

import errno
import hashlib
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from test_checkpoint import bad_checkpoints

from tinyvae import benchmark, evaluate, train
from tinyvae.analysis import anomaly, latent, sweep

ROOT = Path(__file__).resolve().parents[1]
MAINS = {"train": train.main, "evaluate": evaluate.main, "benchmark": benchmark.main, "sweep": sweep.main,
         "anomaly": anomaly.main, "latent": latent.main}
SMALL = ["--dataset", "digits", "--hidden", "16", "--batch-size", "64", "--epochs", "1", "--no-progress"]
QUICK_EVAL = ["--iwae-k", "2", "--probe-epochs", "1", "--classifier-epochs", "1", "--samples", "100", "--no-progress"]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A folder with a trained digits run (run/), a bad checkpoint of every kind (bad/KIND.npz and,
    as run folders, bad/KIND/checkpoint.npz) and a plain file (a-file.txt)."""
    root = tmp_path_factory.mktemp("workspace")
    assert train.main([*SMALL, "--latent-dim", "2", "--out", str(root / "run")]) == 0
    for kind, path in bad_checkpoints(root / "bad").items():
        (root / "bad" / kind).mkdir()
        (root / "bad" / kind / "checkpoint.npz").write_bytes(path.read_bytes())
    (root / "a-file.txt").write_text("precious\n")
    return root


def snapshot(folder):
    """{relative path: SHA-256 of its bytes, or 'folder'} of everything under ``folder``."""
    found = {}
    for path in sorted(Path(folder).rglob("*")):
        found[str(path.relative_to(folder))] = ("folder" if path.is_dir()
                                                else hashlib.sha256(path.read_bytes()).hexdigest())
    return found


@pytest.fixture
def read_only(monkeypatch):
    """Mark folders read-only the way a read-only file system would answer: creating a file in one fails
    with EROFS. (Permissions cannot show it: the tests may run as root, who writes anywhere.)"""
    folders = []
    real_mkstemp = tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):  # noqa: A002 — tempfile's own name
        if dir is not None and any(Path(dir).resolve().is_relative_to(f) for f in folders):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(dir))
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    return lambda folder: folders.append(Path(folder).resolve())


def call(command, argv, capsys):
    """Run ``python -m tinyvae.COMMAND ARGV`` in-process: (status, stdout, stderr)."""
    try:
        status = MAINS[command](argv)
    except SystemExit as exit_:
        status = exit_.code
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_sentence(err, status, expected_status, fragment):
    assert status == expected_status, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert fragment in err, err


# (command, argv with {placeholders}, status, a fragment of the one line on stderr)
CASES = [
    # train: values out of range, named with their flag and range
    ("train", [*SMALL, "--beta", "-1"], 2, "argument --beta: must be a finite number ≥ 0, got -1"),
    ("train", [*SMALL, "--beta", "nan"], 2, "argument --beta: must be a finite number ≥ 0, got nan"),
    ("train", [*SMALL, "--seed", "-1"], 2, "argument --seed: must be a whole number ≥ 0, got -1"),
    ("train", [*SMALL, "--lr", "inf"], 2, "argument --lr: must be a finite number > 0, got inf"),
    ("train", [*SMALL, "--epochs", "1e3"], 2, "argument --epochs: must be a whole number ≥ 1, got '1e3'"),
    ("train", [*SMALL, "--hidden", "0"], 2, "argument --hidden: must be a whole number ≥ 1"),
    ("train", [*SMALL, "--kl-warmup", "inf"], 2, "argument --kl-warmup: must be a finite number ≥ 0"),
    ("train", [*SMALL, "--epoch", "1"], 2, "unrecognized arguments: --epoch 1"),           # no abbreviations
    ("train", [*SMALL, "--dataset", "cifar"], 2, "argument --dataset: invalid choice: 'cifar'"),
    ("train", [*SMALL, "--model", "ae", "--noise", "masking", "--noise-level", "1.5"], 2,
     "noise_level must be a finite number > 0 and < 1, got 1.5"),
    ("train", [*SMALL, "--model", "ae", "--free-bits", "1"], 2, "--free-bits does not apply to --model ae"),
    ("train", [*SMALL, "--iwae-k", "0"], 2, "argument --iwae-k: must be a whole number ≥ 1, got 0"),
    ("train", [*SMALL, "--iwae-k", "2.5"], 2, "argument --iwae-k: must be a whole number ≥ 1, got '2.5'"),
    ("train", [*SMALL, "--model", "ae", "--iwae-k", "5"], 2, "--iwae-k does not apply to --model ae"),
    ("train", [*SMALL, "--model", "cvae", "--iwae-k", "5"], 2, "iwae_k trains the plain vae"),
    ("train", [*SMALL, "--iwae-k", "5", "--beta", "2"], 2, "iwae_k trains the plain vae"),
    ("train", [*SMALL, "--model", "m2"], 2, "--model m2 needs --labels N"),
    ("train", [*SMALL, "--model", "m2", "--labels", "0"], 2, "argument --labels: must be a whole number ≥ 1, got 0"),
    ("train", [*SMALL, "--model", "m2", "--labels", "9"], 2, "at least the number of classes (10)"),
    ("train", [*SMALL, "--model", "m2", "--labels", "5000"], 2, "--labels 5000 is more than the 1,501 training"),
    ("train", [*SMALL, "--labels", "50"], 2, "--labels does not apply to --model vae"),
    ("train", [*SMALL, "--model", "m2", "--labels", "50", "--free-bits", "1"], 2, "does not combine with beta"),
    ("train", [*SMALL, "--exclude-classes", "12"], 2, "exclude_classes must name some, not all"),
    ("train", [*SMALL, "--kl-warmup", "2", "--kl-cycles", "2"], 2, "error: "),
    # train: where it would write, checked before any training
    ("train", [*SMALL, "--out", "{workspace}/a-file.txt"], 2, "a-file.txt is a file, not a folder"),
    ("train", [*SMALL, "--out", "{workspace}/a-file.txt/run"], 2, "a-file.txt is a file, not a folder"),
    ("train", [*SMALL, "--out", "{workspace}/run"], 2, "already holds a run; continue it with --resume"),
    ("train", [*SMALL, "--out", "{read_only}/run"], 2, "Read-only file system"),
    ("train", ["--resume", "{workspace}/run", "--epochs", "3", "--out", "{read_only}/copy"], 2,
     "Read-only file system"),
    ("train", ["--resume", "{workspace}/run", "--out", "{workspace}/bad/random"], 2, "already holds a run"),
    # train --resume: a missing, foreign or changed run
    ("train", ["--resume", "{workspace}/nowhere"], 2, "no checkpoint found"),
    ("train", ["--resume", "{workspace}/bad/random"], 2, "is not a tinyvae checkpoint"),
    ("train", ["--resume", "{workspace}/bad/pickled"], 2, "holds Python objects"),
    ("train", ["--resume", "{workspace}/bad/newer"], 2, "written by a newer tinyvae"),
    ("train", ["--resume", "{workspace}/run", "--latent-dim", "3"], 2, "--latent-dim cannot change when resuming"),
    # train: runtime failures
    ("train", [*SMALL, "--dataset", "mnist", "--data-dir", "{workspace}/nowhere", "--out", "{scratch}/m"], 1,
     "does not exist"),
    # evaluate
    ("evaluate", ["{workspace}/nowhere"], 2, "no checkpoint found"),
    ("evaluate", ["{workspace}/bad/random.npz"], 2, "is not a tinyvae checkpoint (not an .npz file)"),
    ("evaluate", ["{workspace}/bad/empty.npz"], 2, "is not a tinyvae checkpoint"),
    ("evaluate", ["{workspace}/bad/truncated.npz"], 2, "is truncated or corrupt"),
    ("evaluate", ["{workspace}/bad/pickled.npz"], 2, "holds Python objects"),
    ("evaluate", ["{workspace}/bad/newer.npz"], 2, "written by a newer tinyvae"),
    ("evaluate", ["{workspace}/bad/foreign.npz"], 2, "not a tinyvae checkpoint"),
    ("evaluate", ["{workspace}/run", "--iwae-k", "0"], 2, "argument --iwae-k: must be a whole number ≥ 1"),
    ("evaluate", ["{workspace}/run", "--seed", "-1"], 2, "argument --seed: must be a whole number ≥ 0"),
    ("evaluate", ["{workspace}/run", "--iwae", "5"], 2, "unrecognized arguments: --iwae"),
    ("evaluate", ["{workspace}/run", "--out", "{workspace}/a-file.txt", *QUICK_EVAL], 2, "is a file, not a folder"),
    ("evaluate", ["{workspace}/run", "--out", "{read_only}", *QUICK_EVAL], 2, "--out: cannot write in"),
    ("evaluate", ["{workspace}/run", "--dataset", "mnist", "--data-dir", "{workspace}/nowhere"], 1, "does not exist"),
    # benchmark
    ("benchmark", ["--dataset", "nonsense"], 2, "argument --dataset: invalid choice: 'nonsense'"),
    ("benchmark", ["--epochs", "0"], 2, "argument --epochs: must be a whole number ≥ 1, got 0"),
    ("benchmark", ["--batch-size", "-3"], 2, "argument --batch-size: must be a whole number ≥ 1"),
    ("benchmark", ["--epoch", "1"], 2, "unrecognized arguments: --epoch"),
    ("benchmark", ["--dataset", "digits", "--json", "{workspace}/a-file.txt/out.json"], 2, "is a file, not a folder"),
    ("benchmark", ["--dataset", "digits", "--json", "{workspace}/run"], 2, "is a folder"),
    ("benchmark", ["--dataset", "mnist", "--data-dir", "{workspace}/nowhere", "--no-torch"], 1, "does not exist"),
    # sweep
    ("sweep", [*SMALL, "--betas", "nan"], 2, "argument --betas: must be a finite number > 0, got nan"),
    ("sweep", [*SMALL, "--betas", "1", "1"], 2, "names a β twice"),
    ("sweep", [*SMALL, "--betas", "1", "--resume", "{workspace}/run"], 2, "always starts new runs"),
    ("sweep", [*SMALL, "--betas", "1", "--model", "ae"], 2, "needs a model with a KL term"),
    ("sweep", [*SMALL, "--betas", "1", "--seed", "-1"], 2, "argument --seed"),
    ("sweep", [*SMALL, "--betas", "1", "--bet", "1"], 2, "unrecognized arguments: --bet 1"),
    ("sweep", [*SMALL, "--betas", "1", "--out", "{workspace}/a-file.txt"], 2, "is a file, not a folder"),
    ("sweep", [*SMALL, "--betas", "1", "--exclude-classes", "12", "--out", "{scratch}/s"], 2,
     "exclude_classes must name some"),
    # anomaly
    ("anomaly", ["{workspace}/run"], 2, "the following arguments are required: --anomaly-classes"),
    ("anomaly", ["{workspace}/nowhere", "--anomaly-classes", "7"], 2, "no checkpoint found"),
    ("anomaly", ["{workspace}/bad/truncated.npz", "--anomaly-classes", "7"], 2, "is truncated or corrupt"),
    ("anomaly", ["{workspace}/bad/pickled.npz", "--anomaly-classes", "7"], 2, "holds Python objects"),
    ("anomaly", ["{workspace}/run", "--anomaly-classes", "-1"], 2, "argument --anomaly-classes: must be a class"),
    ("anomaly", ["{workspace}/run", "--anomaly-classes", "99"], 2, "needs both anomalies and normal examples"),
    ("anomaly", ["{workspace}/run", "--anomaly-classes", "7", "--seed", "-1"], 2, "argument --seed"),
    ("anomaly", ["{workspace}/run", "--anomaly-classes", "7", "--anomaly", "7"], 2,
     "unrecognized arguments: --anomaly 7"),
    ("anomaly", ["{workspace}/run", "--anomaly-classes", "7", "--out", "{workspace}/a-file.txt"], 2,
     "is a file, not a folder"),
    # latent
    ("latent", ["{workspace}/nowhere"], 2, "no checkpoint found"),
    ("latent", ["{workspace}/bad/newer.npz"], 2, "written by a newer tinyvae"),
    ("latent", ["{workspace}/bad/random"], 2, "is not a tinyvae checkpoint"),
    ("latent", ["{workspace}/run", "--pairs", "0"], 2, "argument --pairs: must be a whole number ≥ 1"),
    ("latent", ["{workspace}/run", "--pairs", "100000"], 2, "--pairs 100000 needs 200000 test images"),
    ("latent", ["{workspace}/run", "--step", "3"], 2, "unrecognized arguments: --step"),
    ("latent", ["{workspace}/run", "--out", "{workspace}/a-file.txt"], 2, "is a file, not a folder"),
    ("latent", ["{workspace}/run"], 2, "the figures are all this command makes: pass --out DIR"),    # run read-only
]


def case_id(case):
    command, argv, status, _ = case
    return f"{command}-{status}-" + "_".join(a.replace("{workspace}/", "").replace("/", "~") for a in argv
                                             if a not in SMALL)[:60]


@pytest.mark.parametrize("command, argv, status, fragment", CASES, ids=[case_id(c) for c in CASES])
def test_bad_input_gets_one_sentence_the_right_status_and_loses_nothing(workspace, tmp_path, read_only, capsys,
                                                                       command, argv, status, fragment):
    read_only(tmp_path / "read-only")
    if command == "latent" and argv == ["{workspace}/run"]:
        read_only(workspace / "run")
    (tmp_path / "read-only").mkdir()
    places = {"workspace": workspace, "read_only": tmp_path / "read-only", "scratch": tmp_path / "scratch"}
    argv = [a.format(**places) for a in argv]
    before = snapshot(workspace)
    status_, out, err = call(command, argv, capsys)
    assert_one_sentence(err, status_, status, fragment)
    assert "Traceback" not in out
    assert snapshot(workspace) == before                    # nothing lost, changed or added
    assert not list((tmp_path / "read-only").iterdir())
    assert not (tmp_path / "scratch").exists() or not any(p.is_file() for p in (tmp_path / "scratch").rglob("*"))


@pytest.mark.parametrize("command, argv, status, fragment", [
    ("train", ["--dataset", "digits", "--beta", "nan"], 2, "argument --beta"),
    ("train", ["--dataset", "digits", "--epoch", "1"], 2, "unrecognized arguments: --epoch"),
    ("evaluate", ["{workspace}/bad/random.npz"], 2, "is not a tinyvae checkpoint"),
    ("evaluate", ["{workspace}/bad/pickled.npz"], 2, "holds Python objects"),
    ("benchmark", ["--dataset", "nonsense"], 2, "invalid choice: 'nonsense'"),
    ("benchmark", ["--epochs", "0"], 2, "argument --epochs"),
    ("sweep", ["--betas", "-1"], 2, "argument --betas"),
    ("anomaly", ["{workspace}/bad/newer.npz", "--anomaly-classes", "7"], 2, "written by a newer tinyvae"),
    ("latent", ["{workspace}/bad/truncated.npz"], 2, "is truncated or corrupt"),
], ids=lambda value: value if isinstance(value, str) and " " not in value and "{" not in value else None)
def test_end_to_end_as_a_process(workspace, tmp_path, command, argv, status, fragment):
    argv = [a.format(workspace=workspace) for a in argv]
    before = snapshot(workspace)
    module = f"tinyvae.analysis.{command}" if command in ("sweep", "anomaly", "latent") else f"tinyvae.{command}"
    result = subprocess.run([sys.executable, "-m", module, *argv], capture_output=True, text=True,
                            cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert_one_sentence(result.stderr, result.returncode, status, fragment)
    assert "Traceback" not in result.stdout
    assert snapshot(workspace) == before and not list(tmp_path.iterdir())


@pytest.mark.parametrize("command", sorted(MAINS))
def test_help_names_each_default_once(command, capsys):
    with pytest.raises(SystemExit) as info:
        MAINS[command](["--help"])
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())          # undo argparse's line wrapping
    assert "default: None" not in text
    assert not re.search(r"\(default[^()]*\)\s*\(default", text), text


def test_train_help_says_each_default_once_and_readably(capsys):
    with pytest.raises(SystemExit):
        train.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "examples per step (default 128)" in text and text.count("(default 128)") == 1


# ------------------------------------------------------------------ read-only run folders
def test_evaluate_on_a_read_only_run_prints_the_report_and_says_nothing_was_saved(workspace, read_only, capsys):
    read_only(workspace / "run")
    before = snapshot(workspace)
    status, out, err = call("evaluate", [str(workspace / "run"), *QUICK_EVAL], capsys)
    assert status == 0 and err == "", err
    assert "negative ELBO" in out and "linear probe accuracy" in out
    assert re.search(r"note: cannot write in .*run \(Read-only file system\), so eval.json and the figures will "
                     r"not be saved \(pass --out DIR to save them\)", out), out
    assert snapshot(workspace) == before


def test_evaluate_on_a_read_only_run_writes_where_out_says(workspace, read_only, tmp_path, capsys):
    read_only(workspace / "run")
    before = snapshot(workspace)
    status, out, err = call("evaluate", [str(workspace / "run"), *QUICK_EVAL, "--out", str(tmp_path / "eval")], capsys)
    assert status == 0 and err == "", err
    assert (tmp_path / "eval" / "eval.json").stat().st_size > 0 and (tmp_path / "eval" / "eval_samples.png").exists()
    assert snapshot(workspace) == before


def test_anomaly_on_a_read_only_run_prints_the_auc_and_says_nothing_was_saved(workspace, read_only, capsys):
    read_only(workspace / "run")
    before = snapshot(workspace)
    status, out, err = call("anomaly", [str(workspace / "run"), "--anomaly-classes", "7"], capsys)
    assert status == 0 and err == "", err
    assert re.search(r"ROC-AUC 0\.\d+; note: cannot write in .*Read-only file system", out), out
    assert snapshot(workspace) == before


def test_a_write_that_fails_during_training_is_one_sentence_and_status_1(tmp_path, monkeypatch, capsys):
    """The disk fills up in the middle of a run: one sentence, status 1, and the last good files stay."""
    out = tmp_path / "run"
    assert train.main([*SMALL, "--out", str(out)]) == 0
    before = snapshot(out)
    real_mkstemp = tempfile.mkstemp

    def disk_full(*args, dir=None, **kwargs):  # noqa: A002
        if dir is not None and Path(dir).resolve() == out.resolve() and kwargs.get("prefix", "").startswith(
                ".checkpoint"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", disk_full)
    status, _, err = call("train", ["--resume", str(out), "--epochs", "2", "--no-progress"], capsys)
    assert_one_sentence(err, status, 1, "No space left on device")
    now = snapshot(out)
    assert now["checkpoint.npz"] == before["checkpoint.npz"]
