"""Latent tools: lerp and slerp, traversals, and the figures of python -m tinyvae.analysis.latent."""

from types import SimpleNamespace

import numpy as np
import pytest

from tinyvae import VAE
from tinyvae.analysis.latent import interpolate, lerp, main, slerp, traverse
from tinyvae.models.autoencoder import Autoencoder
from tinyvae.models.cvae import ConditionalVAE
from tinyvae.train import main as train


def test_lerp_and_slerp_end_at_the_codes_and_slerp_keeps_the_norm(rng):
    z0, z1, t = rng.standard_normal(6), rng.standard_normal(6), np.linspace(0, 1, 7)
    z1 *= np.linalg.norm(z0) / np.linalg.norm(z1)                           # equal norms
    for path in (lerp(z0, z1, t), slerp(z0, z1, t)):
        assert path.shape == (7, 6) and np.allclose(path[0], z0) and np.allclose(path[-1], z1)
    assert np.allclose(np.linalg.norm(slerp(z0, z1, t), axis=1), np.linalg.norm(z0))
    assert np.linalg.norm(lerp(z0, z1, t)[3]) < np.linalg.norm(z0)         # the chord cuts inside the sphere
    assert np.allclose(lerp(z0, z1, np.array([0.25])), 0.75 * z0 + 0.25 * z1)


def test_slerp_follows_the_great_circle_and_falls_back_to_lerp():
    e0, e1 = np.array([1.0, 0.0]), np.array([0.0, 1.0])                     # Ω = 90°
    assert np.allclose(slerp(e0, e1, np.array([0.5])), [[np.sqrt(0.5), np.sqrt(0.5)]])
    assert np.allclose(slerp(e0, 2 * e0, np.array([0.5])), [[1.5, 0.0]])    # parallel: lerp


def test_traversal_sweeps_one_dimension_at_a_time(rng):
    identity = SimpleNamespace(xp=np, dtype=np.dtype("float64"), latent_dim=4, decode=lambda z, labels=None: z)
    z = rng.standard_normal(4)
    codes = traverse(identity, z, dims=[2, 0], values=np.array([-1.0, 0.0, 1.0]))
    assert codes.shape == (6, 4)
    assert np.allclose(codes[:3, 2], [-1, 0, 1]) and np.allclose(codes[:3, [0, 1, 3]], z[[0, 1, 3]])
    assert np.allclose(codes[3:, 0], [-1, 0, 1]) and np.allclose(codes[3:, 1:], z[1:])
    assert traverse(identity, z).shape == (4 * 9, 4)                        # every dimension, −3..3


@pytest.mark.parametrize("model", [VAE(input_dim=12, hidden=(8,), latent_dim=3),
                                   Autoencoder(input_dim=12, hidden=(8,), latent_dim=3),
                                   ConditionalVAE(input_dim=12, hidden=(8,), latent_dim=3, n_classes=3)])
def test_interpolate_every_model(rng, model):
    x0, x1 = rng.random(12), rng.random(12)
    labels = np.array([1, 2]) if model.conditional else None
    for method in ("lerp", "slerp"):
        images = interpolate(model, x0, x1, 5, method, labels)
        assert images.shape == (5, 12)
        mu = model.encode(np.stack([x0, x1]), labels)[0]
        assert np.allclose(images[0], model.decode(mu[:1], None if labels is None else [1])[0], atol=1e-6)
    with pytest.raises(ValueError, match="unknown interpolation"):
        interpolate(model, x0, x1, 5, "cubic", labels)


@pytest.mark.parametrize("flags", [[], ["--model", "cvae"], ["--model", "ae", "--noise", "gaussian"]])
def test_latent_cli_writes_its_figures(tmp_path, flags, capsys):
    out = tmp_path / "run"
    assert train(["--dataset", "digits", "--epochs", "1", "--hidden", "16", "--latent-dim", "3", "--no-progress",
                  "--out", str(out), *flags]) == 0
    assert main([str(out), "--pairs", "2", "--steps", "5"]) == 0
    for name in ("interpolation_lerp.png", "interpolation_slerp.png", "traversal.png"):
        assert (out / name).stat().st_size > 0
    assert "traversal.png" in capsys.readouterr().out
