"""A4 checks, kept by the grader (not in the student release): Adam's update, and training with it.

Six steps are compared with Kingma & Ba's Algorithm 1 written out here; the other cases
with the instructor's Adam (its reference ``_update``) run on the same inputs.
"""

from collections.abc import Callable

import numpy as np

from tinyvae.assignments.oracle import Case, Check

SMALL_VAE = {"input_dim": 64, "hidden": [32], "latent_dim": 4, "seed": 0}


def first_step(rng: np.random.Generator) -> dict:
    grads = rng.standard_normal(15) * 10.0 ** rng.integers(-3, 3, 15)           # very different scales
    return {"theta": rng.standard_normal(15), "grads": grads[None]}


def six_steps(rng: np.random.Generator) -> dict:
    return {"theta": rng.standard_normal(15),
            "grads": np.array([rng.standard_normal(15) * 10.0 ** rng.integers(-4, 2, 15) for _ in range(6)])}


def algorithm_1(lr: float, beta1: float, beta2: float, eps: float) -> Callable[[dict], dict]:
    """Kingma & Ba (2014), Algorithm 1, written out literally: θ after each step."""

    def expect(arrays: dict) -> dict:
        theta = arrays["theta"]
        m, v, thetas = np.zeros_like(theta), np.zeros_like(theta), []
        for t, g in enumerate(arrays["grads"], start=1):
            m = beta1 * m + (1 - beta1) * g
            v = beta2 * v + (1 - beta2) * g**2
            theta = theta - lr * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + eps)
            thetas.append(theta)
        return {"thetas": np.array(thetas)}

    return expect


def quadratic(rng: np.random.Generator) -> dict:
    """f(θ) = ½ Σ_i c_i (θ_i − t_i)² with curvatures c_i from 1e-3 to 1e3."""
    return {"theta": rng.standard_normal(15) * 0.1, "target": np.linspace(-1.0, 1.0, 15),
            "curvature": np.logspace(-3, 3, 15)}


def bars(rng: np.random.Generator) -> dict:
    """256 binary 8×8 images with one full bar each, noise, and 150 minibatches of 32."""
    images = np.zeros((256, 8, 8), dtype=np.float32)
    for image, k, vertical in zip(images, rng.integers(0, 8, 256), rng.random(256) < 0.5, strict=True):
        image[(slice(None), k) if vertical else (k, slice(None))] = 1.0
    return {"data": images.reshape(256, 64), "eps": rng.standard_normal((256, 4)).astype(np.float32),
            "batches": np.array([rng.choice(256, 32, replace=False) for _ in range(150)])}


HYPER = [dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8), dict(lr=0.1, beta1=0.5, beta2=0.9, eps=1e-2)]

CHECKS = (
    Check("test_first_step_moves_every_parameter_by_about_lr", 2, "public",
          (Case("adam_steps", first_step, {"lr": 0.01}, 1e-9),)),
    Check("test_adam_minimizes_a_badly_scaled_quadratic", 2, "public",
          (Case("adam_quadratic", quadratic, {"lr": 0.05, "steps": 600}, 1e-6, absolute=True),)),
    Check("six steps match Algorithm 1", 3, "hidden",
          tuple(Case("adam_steps", six_steps, hyper, 1e-7, absolute=True, expect=algorithm_1(**hyper))
                for hyper in HYPER)),
    Check("adam trains a small VAE", 2, "hidden",
          (Case("adam_vae", bars, {"model": SMALL_VAE, "lr": 3e-3}, 1e-3),)),
)
