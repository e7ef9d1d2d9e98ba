"""A4, hidden tests (kept by the grader): Algorithm 1 step by step, and a VAE that learns."""

import numpy as np
import pytest

from tinyvae.layers import Linear
from tinyvae.optim import Adam
from tinyvae.params import Parameters
from tinyvae.vae import VAE


def algorithm_1(theta: np.ndarray, grads: list, lr: float, beta1: float, beta2: float, eps: float) -> np.ndarray:
    """Kingma & Ba (2014), Algorithm 1, written out literally."""
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    for t, g in enumerate(grads, start=1):
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        theta = theta - lr * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + eps)
    return theta


@pytest.mark.points(3)
def test_six_steps_match_algorithm_1(rng: np.random.Generator) -> None:
    for hyper in [dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8), dict(lr=0.1, beta1=0.5, beta2=0.9, eps=1e-2)]:
        params = Parameters({"fc": Linear(4, 3)}, dtype="float64", seed=0)
        start = params.data.copy()
        grads = [rng.standard_normal(15) * 10.0 ** rng.integers(-4, 2, 15) for _ in range(6)]
        adam = Adam(params, **hyper, fused=False)
        for g in grads:
            params.grad[...] = g
            adam.step()
        assert np.max(np.abs(params.data - algorithm_1(start, grads, **hyper))) <= 1e-7, hyper


def bars(n: int, rng: np.random.Generator) -> np.ndarray:
    """n binary 8×8 images, each with one full horizontal or vertical bar: (n, 64)."""
    images = np.zeros((n, 8, 8), dtype=np.float32)
    for image, k, vertical in zip(images, rng.integers(0, 8, n), rng.random(n) < 0.5, strict=True):
        image[(slice(None), k) if vertical else (k, slice(None))] = 1.0
    return images.reshape(n, 64)


@pytest.mark.points(2)
def test_adam_trains_a_small_vae(rng: np.random.Generator) -> None:
    data = bars(256, rng)
    model = VAE(input_dim=64, hidden=(32,), latent_dim=4, seed=0)
    adam = Adam(model.params, lr=3e-3, fused=False)
    eps = rng.standard_normal((256, 4)).astype(np.float32)
    before = float(model.loss(data, eps).loss)
    for _ in range(150):
        model.loss_and_grads(data[rng.choice(256, 32, replace=False)])
        adam.step()
    after = float(model.loss(data, eps).loss)
    assert after < 0.5 * before, (before, after)
