"""A2, public tests: the Bernoulli NLL gradient and the Gaussian KL with its gradients.

Run them from the folder that holds tinyvae/:  python -m pytest tinyvae/assignments/a2_likelihood_kl
"""

import numpy as np
import pytest

from tinyvae.nn.gradcheck import numerical_gradient, rel_error
from tinyvae.nn.losses import bernoulli_nll, gaussian_kl

TOL = 1e-8


@pytest.mark.points(3)
def test_bernoulli_gradient_passes_the_gradient_check(rng: np.random.Generator) -> None:
    logits, x = rng.standard_normal((4, 6)) * 3, rng.random((4, 6))      # soft targets in [0, 1] too
    nll, dlogits = bernoulli_nll(logits, x)
    assert nll.shape == (4,) and dlogits.shape == (4, 6)
    assert rel_error(dlogits, numerical_gradient(lambda: float(bernoulli_nll(logits, x)[0].sum()), logits)) < TOL


@pytest.mark.points(1)
def test_bernoulli_gradient_at_logit_zero_is_one_half_minus_x() -> None:
    _, dlogits = bernoulli_nll(np.zeros((1, 3)), np.array([[0.0, 1.0, 0.25]]))
    assert np.allclose(dlogits, [[0.5, -0.5, 0.25]])


@pytest.mark.points(2)
def test_kl_known_values() -> None:
    zero = np.zeros((2, 4))
    kl, _, _ = gaussian_kl(zero, zero)
    assert kl.shape == (2,) and np.allclose(kl, 0.0)                      # q = p
    assert np.allclose(gaussian_kl(np.ones((1, 4)), np.zeros((1, 4)))[0], [2.0])        # ½ Σ mu²
    assert np.allclose(gaussian_kl(np.zeros((1, 1)), np.full((1, 1), np.log(2.0)))[0],
                       [0.5 * (1.0 - np.log(2.0))])                         # ½ (σ² − 1 − log σ²)


@pytest.mark.points(3)
def test_kl_gradients_pass_the_gradient_check(rng: np.random.Generator) -> None:
    mu, logvar = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    kl, dmu, dlogvar = gaussian_kl(mu, logvar)

    def total() -> float:
        return float(gaussian_kl(mu, logvar)[0].sum())

    assert rel_error(dmu, numerical_gradient(total, mu)) < TOL
    assert rel_error(dlogvar, numerical_gradient(total, logvar)) < TOL
