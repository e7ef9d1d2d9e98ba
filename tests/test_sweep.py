"""python -m tinyvae.analysis.sweep: one run per β, the JSON and the rate–distortion plot; rate falls as β grows."""

import json

import pytest

from tinyvae.analysis.sweep import main


def test_sweep_trains_one_run_per_beta(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(["--betas", "0.5", "4", "--dataset", "digits", "--epochs", "5", "--hidden", "32", "--latent-dim", "4",
                 "--batch-size", "64", "--no-progress", "--out", str(out)]) == 0
    runs = json.loads((out / "sweep.json").read_text())["runs"]
    assert [run["beta"] for run in runs] == [0.5, 4.0]
    assert runs[0]["rate"] > runs[1]["rate"] and runs[0]["distortion"] < runs[1]["distortion"]
    assert (out / "rate_distortion.png").stat().st_size > 0
    assert (out / "beta-4" / "checkpoint.npz").exists() and (out / "beta-0.5" / "samples.png").exists()
    assert "β = 4" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:                                    # runs are never overwritten
        main(["--betas", "4", "--dataset", "digits", "--epochs", "1", "--no-progress", "--out", str(out)])
    assert info.value.code == 2 and "already holds a run" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [(["--betas", "1", "--beta", "2"], "sets β itself"),
                                           (["--betas", "0"], "argument --betas: must be a finite number > 0"),
                                           (["--betas", "1", "1"], "names a β twice"),
                                           (["--betas", "1", "--model", "ae"], "needs a model with a KL term")])
def test_sweep_refuses_what_it_cannot_do(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        main([*argv, "--dataset", "digits", "--out", str(tmp_path)])
    assert info.value.code == 2 and message in capsys.readouterr().err
