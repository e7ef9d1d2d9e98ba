"""python -m tinyvae.doctor: every check runs on the CPU, a missing GPU and a failing check each
give one ``not ready`` line and status 1, and a wrong fast twin is caught by the step check."""

import subprocess
import sys

import pytest

import tinyvae.models.likelihood
import tinyvae.training.optim
from tinyvae import doctor
from tinyvae.backend import gpu_available
from tinyvae.fast import Twins, twins_for


def test_the_cpu_is_ready(capsys):
    assert doctor.main(["--device", "cpu"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "ready: python -m tinyvae.train --device cpu will run here"
    for name, _ in doctor.CHECKS:
        assert any(line.strip().startswith(name) for line in out), name


@pytest.mark.skipif(gpu_available(), reason="this machine has a GPU")
def test_a_missing_gpu_is_one_sentence_and_status_1():
    result = subprocess.run([sys.executable, "-m", "tinyvae.doctor", "--device", "gpu"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("not ready: GPU requested") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_a_check_that_crashes_is_named_in_the_verdict(monkeypatch, capsys):
    def broken(backend):
        raise OSError("libcublas.so.13: cannot open shared object file\nmore detail")

    monkeypatch.setattr(doctor, "CHECKS", [("matmul", broken)])
    assert doctor.main(["--device", "cpu"]) == 1
    assert capsys.readouterr().err == ("not ready: matmul failed with OSError: libcublas.so.13: cannot open shared "
                                       "object file\n")


def test_a_wrong_adam_twin_fails_the_step_check(monkeypatch):
    twins = twins_for(doctor.get_backend("cpu"))

    def swapped_betas(theta, g, m, v, lr_t, eps_t, c1, c2):        # BUG: 1 − β₁ and 1 − β₂ swapped
        tinyvae.training.optim.Adam._update(adam, theta, g, m, v, m.copy(), lr_t, eps_t)

    adam = type("A", (), {"xp": __import__("numpy"), "beta1": 0.999, "beta2": 0.9})()
    monkeypatch.setattr(tinyvae.models.likelihood, "twins_for", lambda backend: Twins(
        twins.bernoulli_nll, twins.gaussian_kl, twins.reparameterize, swapped_betas, "planted"))
    ready, verdict = doctor.diagnose("cpu", out=lambda line: None)
    assert not ready and verdict.startswith("not ready: step: a training step differs from the CPU's reference")


def test_bad_flags_are_usage_errors(capsys):
    with pytest.raises(SystemExit) as exit_info:
        doctor.main(["--device", "tpu"])
    assert exit_info.value.code == 2 and capsys.readouterr().err.count("\n") == 1


def test_the_gpu_extra_brings_cudas_libraries_and_the_dev_extra_nvrtc():
    """A lab machine with only the NVIDIA driver needs CUDA's runtime libraries as wheels: CuPy's
    ``ctk`` extra (CuPy's setup.py: cuda-toolkit[cudart,nvrtc,cublas,...]); CI compiles the kernels
    with the NVRTC wheel."""
    import configparser
    from pathlib import Path

    config = configparser.ConfigParser()
    config.read(Path(__file__).resolve().parents[1] / "setup.cfg")
    extras = config["options.extras_require"]
    assert [line for line in extras["gpu"].split("\n") if line.strip()] == ["cupy-cuda13x[ctk]>=14"]
    assert any(line.startswith("nvidia-cuda-nvrtc>=13") for line in extras["dev"].split("\n"))
