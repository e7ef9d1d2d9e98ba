"""The VAE and the autoencoders with convolutional networks (arch="conv", tinyvae.nn.conv_nets):
whole-model float64 gradient checks, shapes, the architecture kept in config(), clear errors,
and a planted bug in the reshape between the convolutions and the dense layers."""

import numpy as np
import pytest

from tinyvae import VAE, Autoencoder
from tinyvae.models.registry import model_from_config
from tinyvae.nn.conv import ConvTranspose2d
from tinyvae.nn.conv_nets import Reshape, conv_decoder, conv_encoder
from tinyvae.nn.gradcheck import check_model

SMALL = dict(input_dim=64, hidden=[5], latent_dim=2, arch="conv", image_shape=(1, 8, 8), channels=(2, 3),
             dtype="float64", seed=4)


def batch(likelihood="bernoulli", n=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 64))
    return (x < 0.5).astype(np.float64) if likelihood == "bernoulli" else x, rng.standard_normal((n, 2))


@pytest.mark.parametrize("likelihood, sigma", [("bernoulli", 1.0), ("gaussian", 1.0), ("gaussian", None)])
def test_the_conv_vae_passes_the_whole_model_gradient_check(likelihood, sigma):
    model = VAE(**SMALL, likelihood=likelihood, sigma=sigma, beta=0.7)
    x, eps = batch(likelihood)
    errors = check_model(model, x, eps)
    assert max(errors.values()) < 1e-6, errors
    assert any(".W" in name for name in errors) and len(errors) >= 8      # every conv and dense weight checked


def test_the_conv_conditional_vae_passes_the_gradient_check():
    """Its labels join the features after the convolutions, and z before the decoder's dense layers."""
    from tinyvae.models.cvae import AppendLabels, ConditionalVAE

    model = ConditionalVAE(**SMALL, n_classes=3)
    x, eps = batch()
    labels = np.array([0, 2, 1])
    assert max(check_model(model, x, eps, labels=labels).values()) < 1e-6
    names = [type(layer).__name__ for layer in model.encoder.layers]
    assert names.index("AppendLabels") == names.index("Reshape", 1) + 1
    assert isinstance(model.decoder.layers[0], AppendLabels)
    assert model_from_config("ConditionalVAE", model.config()).params.size == model.params.size


@pytest.mark.parametrize("kwargs", [{}, {"noise": "gaussian"}, {"sparsity": "kl"}])
def test_the_conv_autoencoders_pass_the_gradient_check(kwargs):
    model = Autoencoder(**SMALL, **kwargs)
    x, _ = batch()
    noise = model.draw_noise(np.random.default_rng(1), x.shape[0]) if kwargs.get("noise") else None
    assert max(check_model(model, x, noise).values()) < 1e-6


def test_mnist_shapes_and_the_issues_architecture():
    model = VAE(input_dim=784, hidden=[], latent_dim=20, arch="conv", image_shape=(1, 28, 28))
    names = [type(layer).__name__.removeprefix("Compiled").removeprefix("Blocked")          # a twin: its reference
             for layer in model.encoder.layers]
    assert names == ["Reshape", "Conv2d", "ReLU", "Conv2d", "ReLU", "Reshape", "Linear"]
    assert model.encoder.layers[-1].W.shape == (64 * 7 * 7, 40)
    x = (np.random.default_rng(0).random((4, 784)) < 0.3).astype(np.float32)
    elbo = model.loss_and_grads(x)
    assert np.isfinite(float(elbo.loss)) and model.decode(np.zeros((2, 20), np.float32)).shape == (2, 784)
    assert model.encoder.layers[1].input_grad is False                     # nobody needs dL/dx of the data


def test_odd_sides_come_back_to_their_size():
    decoder = conv_decoder((1, 14, 14), (4, 4), [], 2, 1, "relu", "pytorch")        # 14 → 7 → 3 and back
    assert [layer.output_padding for layer in decoder.layers if isinstance(layer, ConvTranspose2d)] == [1, 0]
    encoder = conv_encoder((1, 14, 14), (4, 4), [], 4, "relu", "pytorch")
    from tinyvae.nn.params import Parameters
    Parameters({"e": encoder, "d": decoder}, seed=0)
    assert decoder.forward(encoder.forward(np.ones((2, 196)))[:, :2]).shape == (2, 196)


def test_the_architecture_is_kept_in_the_config():
    model = VAE(**SMALL)
    config = model.config()
    assert config["arch"] == "conv" and config["image_shape"] == [1, 8, 8] and config["channels"] == [2, 3]
    rebuilt = model_from_config("VAE", config)
    rebuilt.params.load(model.params.data)
    x, eps = batch()
    assert np.array_equal(model.loss(x, eps).loss, rebuilt.loss(x, eps).loss)
    assert "arch" not in VAE(input_dim=64, hidden=[5], latent_dim=2).config()     # dense configs unchanged
    assert "8×8 conv 2-3" in repr(model)


@pytest.mark.parametrize("kwargs, says", [
    ({"arch": "resnet"}, "unknown arch 'resnet': choose one of dense, conv"),
    ({"image_shape": (1, 8, 7)}, "C·H·W = input_dim = 64"),
    ({"image_shape": None}, "needs image_shape (C, H, W)"),
    ({"channels": ()}, "at least one channels entry"),
    ({"channels": (2, 0)}, "each channels entry must be a whole number ≥ 1, got 0"),
    ({"channels": (2, 2, 2, 2, 2)}, "too small for 5 convolutions"),
])
def test_bad_conv_configurations_are_refused_in_one_sentence(kwargs, says):
    with pytest.raises(ValueError, match=None) as err:
        VAE(**{**SMALL, **kwargs})
    assert says in str(err.value) and "\n" not in str(err.value)


def test_a_reshape_that_scrambles_its_gradient_is_caught(monkeypatch):
    """Planted bug: the gradient goes back through the reshape in the wrong (transposed) order."""
    def scrambled(self, dy):
        return None if dy is None else dy.reshape(self.x_shape[0], -1)[:, ::-1].reshape(self.x_shape)

    monkeypatch.setattr(Reshape, "backward", scrambled)
    model = VAE(**SMALL)
    x, eps = batch()
    assert max(check_model(model, x, eps).values()) > 1e-3


SMALL_RUN = ["--dataset", "digits", "--arch", "conv", "--channels", "4", "8", "--latent-dim", "2", "--batch-size",
             "64", "--no-progress"]


def test_a_conv_iwae_run_trains(tmp_path):
    from tinyvae.train import main as train
    from tinyvae.training.checkpoint import load

    assert train([*SMALL_RUN, "--iwae-k", "3", "--epochs", "1", "--out", str(tmp_path / "iwae")]) == 0
    model = load(tmp_path / "iwae")
    assert type(model).__name__ == "IWAE" and model.arch == "conv" and model.k == 3


def test_a_conv_conditional_run_trains(tmp_path):
    from tinyvae.train import main as train
    from tinyvae.training.checkpoint import load

    assert train([*SMALL_RUN, "--model", "cvae", "--epochs", "1", "--out", str(tmp_path / "cvae")]) == 0
    model = load(tmp_path / "cvae")
    assert model.arch == "conv" and model.sample(4, labels=3).shape == (4, 64)


def test_train_resume_and_evaluate_a_conv_run(tmp_path, capsys):
    from tinyvae.evaluate import main as evaluate
    from tinyvae.train import main as train
    from tinyvae.training.checkpoint import load

    out = tmp_path / "conv"
    assert train([*SMALL_RUN, "--epochs", "1", "--out", str(out)]) == 0
    assert train(["--resume", str(out), "--epochs", "2", "--no-progress"]) == 0
    model = load(out)
    assert model.arch == "conv" and model.channels == (4, 8) and model.hidden == []
    assert evaluate([str(out), "--iwae-k", "5", "--probe-epochs", "1", "--classifier-epochs", "1"]) == 0
    assert "epoch   2/2" in capsys.readouterr().out


@pytest.mark.parametrize("argv, says", [
    (["--channels", "4"], "--channels applies to --arch conv"),
    (["--arch", "conv", "--model", "m2", "--labels", "50"], "the m2 model has dense networks only"),
    (["--arch", "conv", "--channels", "4", "4", "4", "4"], "too small for 4 convolutions"),
])
def test_conv_flags_that_do_not_fit_are_one_sentence(tmp_path, capsys, argv, says):
    from tinyvae.train import main as train

    with pytest.raises(SystemExit) as exit_info:
        train(["--dataset", "digits", "--no-progress", "--out", str(tmp_path / "run"), *argv])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and says in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_the_benchmarks_pytorch_twin_has_the_same_conv_networks():
    torch = pytest.importorskip("torch")
    from tinyvae.backend import get_backend
    from tinyvae.benchmark import TorchVAE
    from tinyvae.data.loading import load_dataset
    from tinyvae.models.registry import model_for_run
    from tinyvae.training.trainer import RunConfig

    digits = load_dataset("digits")
    config = RunConfig(dataset="digits", arch="conv", hidden=[6], channels=[3, 5], latent_dim=2)
    ours = model_for_run(config, digits.input_dim, get_backend("cpu"), image_shape=digits.image_shape)
    theirs = TorchVAE(config, digits, "cpu")
    shapes = [tuple(p.shape) for net in (theirs.encoder, theirs.decoder) for p in net.parameters()]
    shapes = [shape[::-1] if len(shape) == 2 else shape for shape in shapes]      # Linear: torch keeps Wᵀ
    assert shapes == [tuple(shape) for _, shape in ours.params.layout.values()]
    x = torch.zeros(4, 64)
    assert tuple(theirs.decoder(theirs.encoder(x)[:, :2]).shape) == (4, 64)


def test_the_benchmark_runs_a_conv_model(capsys):
    from tinyvae.benchmark import main as benchmark

    assert benchmark(["--arch", "conv", "--channels", "4", "--dataset", "digits", "--epochs", "1", "--no-torch",
                      "--no-memory"]) == 0
    assert "conv 4-20" in capsys.readouterr().out


def test_the_dense_vs_conv_table_script_runs(tmp_path):
    """docs/scripts/dense_vs_conv.py, which made the table in docs/family.md, on two tiny digits runs."""
    import subprocess
    import sys
    from pathlib import Path

    from tinyvae.train import main as train

    for arch, extra in (("dense", ["--hidden", "16"]), ("conv", ["--channels", "4"])):
        assert train(["--dataset", "digits", "--epochs", "1", "--latent-dim", "2", "--arch", arch, *extra,
                      "--no-progress", "--out", str(tmp_path / arch)]) == 0
    script = Path(__file__).resolve().parents[1] / "docs" / "scripts" / "dense_vs_conv.py"
    result = subprocess.run([sys.executable, str(script), str(tmp_path / "dense"), str(tmp_path / "conv")],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-1500:]
    rows = result.stdout.strip().splitlines()
    assert len(rows) == 4 and rows[2].startswith("| dense |") and rows[3].startswith("| conv |")


def _gemm_floor(tmp_path, *args):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "docs" / "scripts" / "gemm_floor.py"
    return subprocess.run([sys.executable, str(script), "--repeats", "1", "--steps", "1", *args],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)


def test_the_gemm_floor_script_times_every_product_of_a_step(tmp_path):
    """docs/scripts/gemm_floor.py (docs/benchmarks.md, "The GEMM floor") finds the 17 products of a step of the
    benchmark's conv VAE and their 2.739 GFLOP, counted by hand (2 flops per multiply-add, batch 128):
    Conv(1→32) Y and dW 2·(2·25088·16·32), Conv(32→64) 3·(2·6272·512·64), Linear(3136→40) 3·(2·128·3136·40),
    Linear(20→3136) 3·(2·128·20·3136), ConvT(64→32) 3·(2·6272·64·512), ConvT(32→1) 3·(2·25088·32·16)."""
    flops = 2 * (2 * 25088 * 16 * 32) + 3 * 2 * (6272 * 512 * 64 + 128 * 3136 * 40 + 128 * 20 * 3136
                                                   + 6272 * 64 * 512 + 25088 * 32 * 16)
    result = _gemm_floor(tmp_path)
    assert result.returncode == 0, result.stderr[-1500:]
    lines = result.stdout.splitlines()
    assert sum(" ms " in line and "GFLOP/s" in line and "floor" not in line for line in lines) == 17
    assert f"{flops / 1e9:.3f} GFLOP," in result.stdout and "training step" in result.stdout


def test_the_gemm_floor_script_times_the_same_products_in_pytorch(tmp_path):
    """``--torch``: every product line gets a second time, PyTorch's BLAS on the same operands, and the floor a
    second sum (docs/benchmarks.md compares the two libraries with it)."""
    pytest.importorskip("torch")
    result = _gemm_floor(tmp_path, "--torch")
    assert result.returncode == 0, result.stderr[-1500:]
    products = [line for line in result.stdout.splitlines() if line.count(" ms ") == 2 and "floor" not in line]
    assert len(products) == 17 and all(line.count("GFLOP/s") == 2 for line in products)
    assert "the same products in PyTorch's BLAS:" in result.stdout


def test_the_gemm_floor_script_without_pytorch_says_how_to_install_it(tmp_path):
    import importlib.util

    if importlib.util.find_spec("torch") is not None:
        pytest.skip("PyTorch is installed here")
    result = _gemm_floor(tmp_path, "--torch")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--torch needs PyTorch: pip install torch==2.13.0" in result.stderr


def test_the_benchmark_can_train_the_conv_model_in_one_share(capsys):
    from tinyvae.benchmark import main as benchmark

    assert benchmark(["--arch", "conv", "--channels", "4", "--dataset", "digits", "--epochs", "1", "--no-torch",
                      "--no-memory", "--one-share"]) == 0
    assert "the step in 1 share(s)" in capsys.readouterr().out
