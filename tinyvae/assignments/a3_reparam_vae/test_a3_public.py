"""A3, public tests: the reparameterization trick and the gradient of the whole negative ELBO.

Run them from the folder that holds tinyvae/:  python -m pytest tinyvae/assignments/a3_reparam_vae
"""

from collections.abc import Callable

import numpy as np
import pytest

from tinyvae.nn.gradcheck import check_model, numerical_gradient, rel_error
from tinyvae.nn.reparam import Reparameterize


@pytest.mark.points(1)
def test_reparameterize_forward_is_mu_plus_std_times_eps() -> None:
    mu, logvar, eps = np.array([[1.0, -2.0]]), np.log(np.array([[4.0, 0.25]])), np.array([[0.5, 2.0]])
    assert np.allclose(Reparameterize().forward(mu, logvar, eps), [[2.0, -1.0]])   # std = exp(½ logvar)


@pytest.mark.points(3)
def test_reparameterize_backward_passes_the_gradient_check(rng: np.random.Generator) -> None:
    mu, logvar, eps, dz = (rng.standard_normal((4, 3)) for _ in range(4))
    r = Reparameterize()

    def f() -> float:
        return float((r.forward(mu, logvar, eps) * dz).sum())

    r.forward(mu, logvar, eps)
    dmu, dlogvar = r.backward(dz)
    assert rel_error(dmu, numerical_gradient(f, mu)) < 1e-8
    assert rel_error(dlogvar, numerical_gradient(f, logvar)) < 1e-8


@pytest.mark.points(3)
def test_negative_elbo_gradient_for_every_parameter(small_vae: Callable) -> None:
    model, x, eps = small_vae()
    errors = check_model(model, x, eps)
    assert len(errors) == 8 and max(errors.values()) < 1e-6, errors
