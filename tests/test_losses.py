"""Gradient tests (float64, central differences) and value tests for every loss."""

import math

import numpy as np
import pytest

from tinyvae.nn.gradcheck import numerical_gradient, rel_error
from tinyvae.nn.losses import bernoulli_nll, gaussian_kl, gaussian_nll, gaussian_nll_learned

TOL = 1e-8


def test_bernoulli_nll_gradient(backend, rng):
    logits = backend.asarray(rng.standard_normal((4, 6)) * 3)
    x = backend.asarray(rng.random((4, 6)))                 # soft targets in [0, 1] too
    nll, dlogits = bernoulli_nll(logits, x)
    assert nll.shape == (4,) and dlogits.shape == (4, 6)
    numeric = numerical_gradient(lambda: float(bernoulli_nll(logits, x)[0].sum()), logits)
    assert rel_error(dlogits, numeric) < TOL


def test_bernoulli_nll_matches_the_naive_formula_where_it_is_safe(rng):
    logits, x = rng.standard_normal((3, 5)), rng.random((3, 5))
    p = 1 / (1 + np.exp(-logits))
    naive = -(x * np.log(p) + (1 - x) * np.log(1 - p)).sum(axis=1)
    assert np.allclose(bernoulli_nll(logits, x)[0], naive, rtol=1e-12)


def test_bernoulli_nll_is_stable_for_huge_logits():
    logits = np.array([[1000.0, -1000.0, 60.0, -60.0]], dtype=np.float32)
    x = np.array([[0.0, 1.0, 1.0, 0.0]], dtype=np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        nll, dlogits = bernoulli_nll(logits, x)
    # −log σ(−1000) = 1000, −log σ(−1000) again, and ≈ e^(−60) twice
    assert float(nll[0]) == pytest.approx(2000.0, rel=1e-6)
    assert np.allclose(dlogits, [[1.0, -1.0, 0.0, 0.0]], atol=1e-6)


def test_gaussian_nll_fixed_sigma_gradient_and_value(backend, rng):
    mean = backend.asarray(rng.standard_normal((3, 5)))
    x = backend.asarray(rng.standard_normal((3, 5)))
    sigma = 0.7
    nll, dmean = gaussian_nll(mean, x, sigma)
    numeric = numerical_gradient(lambda: float(gaussian_nll(mean, x, sigma)[0].sum()), mean)
    assert rel_error(dmean, numeric) < TOL
    m, xx = backend.to_numpy(mean), backend.to_numpy(x)
    log_density = -0.5 * ((xx - m) / sigma) ** 2 - math.log(sigma * math.sqrt(2 * math.pi))
    assert np.allclose(backend.to_numpy(nll), -log_density.sum(axis=1))


def test_gaussian_nll_learned_gradients(backend, rng):
    mean = backend.asarray(rng.standard_normal((3, 5)))
    logvar = backend.asarray(rng.standard_normal((3, 5)))
    x = backend.asarray(rng.standard_normal((3, 5)))
    nll, dmean, dlogvar = gaussian_nll_learned(mean, logvar, x)

    def f():
        return float(gaussian_nll_learned(mean, logvar, x)[0].sum())

    assert rel_error(dmean, numerical_gradient(f, mean)) < TOL
    assert rel_error(dlogvar, numerical_gradient(f, logvar)) < TOL
    # with logvar = log σ² it equals the fixed-σ form
    fixed = gaussian_nll(mean, x, 0.5)[0]
    learned = gaussian_nll_learned(mean, backend.xp.full_like(mean, math.log(0.25)), x)[0]
    assert np.allclose(backend.to_numpy(fixed), backend.to_numpy(learned))


def test_gaussian_kl_gradients(backend, rng):
    mu = backend.asarray(rng.standard_normal((4, 3)))
    logvar = backend.asarray(rng.standard_normal((4, 3)))
    kl, dmu, dlogvar = gaussian_kl(mu, logvar)
    assert kl.shape == (4,)

    def f():
        return float(gaussian_kl(mu, logvar)[0].sum())

    assert rel_error(dmu, numerical_gradient(f, mu)) < TOL
    assert rel_error(dlogvar, numerical_gradient(f, logvar)) < TOL


def test_gaussian_kl_known_values_and_monte_carlo(rng):
    zero = np.zeros((1, 4))
    assert gaussian_kl(zero, zero)[0][0] == 0.0                      # q = p
    assert gaussian_kl(np.ones((1, 4)), zero)[0][0] == pytest.approx(2.0)  # ½ Σ mu²
    # Monte Carlo: KL = E_q[log q(z) − log p(z)]
    mu, logvar = np.array([[0.5, -1.0]]), np.array([[-0.3, 0.4]])
    std = np.exp(0.5 * logvar)
    z = mu + std * rng.standard_normal((200_000, 2))
    log_q = (-0.5 * ((z - mu) / std) ** 2 - np.log(std)).sum(axis=1)
    log_p = (-0.5 * z**2).sum(axis=1)
    assert gaussian_kl(mu, logvar)[0][0] == pytest.approx((log_q - log_p).mean(), abs=0.01)
