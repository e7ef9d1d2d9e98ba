"""A2 checks, kept by the grader (not in the student release): the Bernoulli NLL gradient and the Gaussian KL.

Outputs are compared with the instructor's losses on the same inputs, except the Monte
Carlo check, whose expected KL is an estimate E_q[log q − log p] made by the grader.
"""

import numpy as np

from tinyvae.assignments.oracle import Case, Check, Inputs


def bernoulli_inputs(rng: np.random.Generator) -> dict:
    return {"logits": rng.standard_normal((4, 6)) * 3, "x": rng.random((4, 6))}      # soft targets too


def at_zero(rng: np.random.Generator) -> dict:
    return {"logits": np.zeros((1, 3)), "x": np.array([[0.0, 1.0, 0.25]])}


def huge_logits(rng: np.random.Generator) -> dict:
    return {"logits": np.array([[1000.0, -1000.0, 60.0, -60.0]], dtype=np.float32),
            "x": np.array([[0.0, 1.0, 1.0, 0.0]], dtype=np.float32)}


def wide_logits(rng: np.random.Generator) -> dict:
    return {"logits": rng.uniform(-30, 30, (3, 5)), "x": (rng.random((3, 5)) < 0.5).astype(float)}


def kl_of(mu: np.ndarray, logvar: np.ndarray) -> Inputs:
    return lambda rng: {"mu": mu, "logvar": logvar}


def kl_random(shape: tuple[int, int], low: float | None = None, high: float | None = None) -> Inputs:
    def inputs(rng: np.random.Generator) -> dict:
        if low is None:
            return {"mu": rng.standard_normal(shape), "logvar": rng.standard_normal(shape)}
        return {"mu": rng.uniform(-3, 3, shape), "logvar": rng.uniform(low, high, shape)}

    return inputs


def monte_carlo_kl(arrays: dict) -> dict:
    """E_q[log q(z) − log p(z)] over 200 000 draws z ~ q = N(mu, σ²): the KL to within about 0.003."""
    mu, logvar = arrays["mu"], arrays["logvar"]
    std = np.exp(0.5 * logvar)
    z = mu + std * np.random.default_rng(0).standard_normal((200_000, mu.shape[1]))
    return {"kl": np.array([(-0.5 * ((z - mu) / std) ** 2 - np.log(std) + 0.5 * z**2).sum(axis=1).mean()])}


CHECKS = (
    Check("test_bernoulli_gradient_passes_the_gradient_check", 3, "public", (Case("bernoulli_nll", bernoulli_inputs),)),
    Check("test_bernoulli_gradient_at_logit_zero_is_one_half_minus_x", 1, "public",
          (Case("bernoulli_nll", at_zero, tolerance=1e-12),)),
    Check("test_kl_known_values", 2, "public",
          tuple(Case("gaussian_kl", kl_of(mu, logvar), tolerance=1e-12)
                for mu, logvar in [(np.zeros((2, 4)), np.zeros((2, 4))), (np.ones((1, 4)), np.zeros((1, 4))),
                                   (np.zeros((1, 1)), np.full((1, 1), np.log(2.0)))])),
    Check("test_kl_gradients_pass_the_gradient_check", 3, "public", (Case("gaussian_kl", kl_random((4, 3))),)),
    Check("bernoulli gradient does not overflow for huge logits", 2, "hidden",
          (Case("bernoulli_nll", huge_logits, {"raise_on_overflow": True}, 1e-6),)),
    Check("kl is one number per example", 1, "hidden", (Case("gaussian_kl", kl_random((5, 3))),)),
    Check("kl agrees with a Monte Carlo estimate", 1, "hidden",
          (Case("gaussian_kl", kl_of(np.array([[0.5, -1.0]]), np.array([[-0.3, 0.4]])), tolerance=0.01,
                absolute=True, expect=monte_carlo_kl),)),
    Check("kl and bernoulli gradients over a wide range", 2, "hidden",
          (Case("gaussian_kl", kl_random((6, 4), -4.0, 4.0)), Case("bernoulli_nll", wide_logits, tolerance=1e-6))),
)
