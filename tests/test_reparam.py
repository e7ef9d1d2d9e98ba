import numpy as np
import pytest

from tinyvae.nn.gradcheck import numerical_gradient, rel_error
from tinyvae.nn.reparam import Reparameterize


def test_reparameterization_gradients(backend, rng):
    mu = backend.asarray(rng.standard_normal((4, 3)))
    logvar = backend.asarray(rng.standard_normal((4, 3)))
    eps = backend.asarray(rng.standard_normal((4, 3)))        # fixed noise
    dz = backend.asarray(rng.standard_normal((4, 3)))
    r = Reparameterize()

    def f():
        return float((r.forward(mu, logvar, eps) * dz).sum())

    z = r.forward(mu, logvar, eps)
    dmu, dlogvar = r.backward(dz)
    assert rel_error(dmu, numerical_gradient(f, mu)) < 1e-8
    assert rel_error(dlogvar, numerical_gradient(f, logvar)) < 1e-8
    assert np.allclose(backend.to_numpy(dlogvar), 0.5 * backend.to_numpy(dz * (z - mu)))


def test_forward_is_mu_plus_std_times_eps():
    mu, logvar, eps = np.array([[1.0, -2.0]]), np.log(np.array([[4.0, 0.25]])), np.array([[0.5, 2.0]])
    z = Reparameterize().forward(mu, logvar, eps)
    assert np.allclose(z, [[1.0 + 2.0 * 0.5, -2.0 + 0.5 * 2.0]])   # std = exp(½ logvar)


def test_noise_is_drawn_once_and_kept_for_backward(backend):
    r = Reparameterize()
    mu = backend.xp.zeros((2, 3))
    z = r.forward(mu, mu, rng=backend.rng(0))
    assert backend.xp.array_equal(z, r.eps)                   # std = 1, mu = 0
    _, dlogvar = r.backward(backend.xp.ones((2, 3)))
    assert np.allclose(backend.to_numpy(dlogvar), 0.5 * backend.to_numpy(r.eps))


def test_samples_have_the_requested_moments():
    r = Reparameterize()
    n = 100_000
    mu, logvar = np.full((n, 1), 3.0), np.full((n, 1), np.log(0.25))
    z = r.forward(mu, logvar, rng=np.random.default_rng(0))
    assert z.mean() == pytest.approx(3.0, abs=0.01) and z.std() == pytest.approx(0.5, abs=0.01)


def test_bad_noise_is_refused():
    r = Reparameterize()
    with pytest.raises(ValueError, match="eps has shape"):
        r.forward(np.zeros((2, 3)), np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="needs either eps or an rng"):
        r.forward(np.zeros((2, 3)), np.zeros((2, 3)))
