"""The IWAE objective (tinyvae/models/iwae.py): float64 gradient checks of −L_K w.r.t. every parameter,
the stable self-normalised weights, and K = 1 against the VAE. The planted bugs the check must
catch are in tests/test_planted_bugs.py."""

import numpy as np
import pytest

from tinyvae import VAE
from tinyvae.analysis.metrics import log_mean_exp
from tinyvae.models.iwae import IWAE, importance_weights
from tinyvae.nn.gradcheck import check_model

MODEL_TOL = 1e-6

CONFIGS = {
    "bernoulli-k1": dict(k=1),
    "bernoulli-k4": dict(k=4, activation="tanh"),
    "gaussian-learned-k3": dict(k=3, likelihood="gaussian", sigma=None, activation="softplus"),
    "deep-k5": dict(k=5, hidden=(9, 7), activation="sigmoid"),
}


def iwae(seed=2, **kwargs):
    kwargs.setdefault("hidden", (8,))
    return IWAE(input_dim=12, latent_dim=3, dtype="float64", seed=seed, **kwargs)


def batch(model, rng, n=5):
    return rng.random((n, 12)), model.draw_noise(rng, n)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_iwae_gradient_every_parameter(rng, name):
    model = iwae(**CONFIGS[name])
    x, eps = batch(model, rng)
    assert eps.shape == (model.k * 5, 3)
    errors = check_model(model, x, eps)
    assert len(errors) == len(model.params.names())
    assert max(errors.values()) < MODEL_TOL, errors


def test_loss_is_minus_the_mean_bound_computed_by_hand(rng):
    model = iwae(k=3)
    x, eps = batch(model, rng, n=4)
    mu, logvar = model.encode(x)
    z = np.tile(mu, (3, 1)) + np.exp(0.5 * np.tile(logvar, (3, 1))) * eps
    log_px = -model.nll_given_z(np.tile(x, (3, 1)), z)
    log_pz = (-0.5 * (z ** 2 + np.log(2 * np.pi))).sum(1)
    log_qz = (-0.5 * (eps ** 2 + np.tile(logvar, (3, 1)) + np.log(2 * np.pi))).sum(1)
    log_w = (log_px + log_pz - log_qz).reshape(3, 4)
    expected = -np.mean(np.log(np.exp(log_w).mean(axis=0)))
    assert float(model.loss(x, eps).loss) == pytest.approx(expected, rel=1e-12)
    assert float(model.loss(x, eps).loss) <= -np.mean(log_w) + 1e-12      # Jensen: L_K ≥ mean_k log w_k


def test_weights_are_stable_and_normalised():
    log_w = np.array([[-1000.0, 3.0], [-1001.0, 3.0], [-2000.0, 800.0]])   # (K=3, N=2)
    bound, weights = importance_weights(log_w)
    assert np.all(np.isfinite(bound)) and np.all(np.isfinite(weights))
    np.testing.assert_allclose(weights.sum(axis=0), 1.0, rtol=1e-15)
    e = np.exp(1.0)
    np.testing.assert_allclose(weights[:, 0], [e / (e + 1), 1 / (e + 1), 0.0], rtol=1e-14, atol=1e-300)
    assert bound[0] == pytest.approx(-1000.0 + np.log((1 + np.exp(-1.0)) / 3))
    np.testing.assert_array_equal(bound, log_mean_exp(log_w, axis=0))


def vae_twin(model):
    """A VAE with the same architecture and seed as the IWAE ``model``, hence the same weights."""
    vae = VAE(input_dim=12, hidden=(8,), latent_dim=3, dtype=model.dtype.name, seed=model.seed)
    np.testing.assert_array_equal(vae.params.data, model.params.data)
    return vae


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_k1_decoder_gradient_is_the_vae_s_bit_for_bit(rng, dtype):
    model = IWAE(input_dim=12, hidden=(8,), latent_dim=3, dtype=dtype, seed=2, k=1)
    vae = vae_twin(model)
    x, eps = rng.random((5, 12)).astype(dtype), rng.standard_normal((5, 3)).astype(dtype)
    elbo, bound = vae.loss_and_grads(x, eps), model.loss_and_grads(x, eps)
    assert np.array_equal(elbo.recon, bound.recon)
    for name, (start, shape) in model.params.layout.items():
        if name.startswith("decoder"):
            stop = start + int(np.prod(shape))
            assert np.array_equal(vae.params.grad[start:stop], model.params.grad[start:stop]), name


def test_k1_encoder_gradient_is_the_vae_s_in_expectation(rng):
    """With K = 1 the KL is estimated from the sample: ½Σ(z² − eps² − logvar). Its gradient differs
    from the analytic KL's by σ·eps (mu) and ½σ·mu·eps + ½σ²(eps² − 1) (logvar): zero-mean terms
    of degree ≤ 2 in eps. The two-point average over eps = ±1 has E[eps] = 0 and E[eps²] = 1
    exactly, so over that pair the gradients agree to float64 rounding (the decoder part, the
    same in both, need not be polynomial)."""
    model = iwae(k=1)
    vae = vae_twin(model)
    x = rng.random((5, 12))
    grads = {"iwae": 0.0, "vae": 0.0}
    for sign in (1.0, -1.0):
        eps = sign * np.ones((5, 3))
        model.loss_and_grads(x, eps)
        vae.loss_and_grads(x, eps)
        grads["iwae"] = grads["iwae"] + model.params.grad / 2
        grads["vae"] = grads["vae"] + vae.params.grad / 2
    np.testing.assert_allclose(grads["iwae"], grads["vae"], rtol=0, atol=1e-12)
    model.loss_and_grads(x, np.ones((5, 3)))
    vae.loss_and_grads(x, np.ones((5, 3)))
    assert not np.allclose(model.params.grad, vae.params.grad)    # one sample alone: a different estimator


def test_k_and_kl_options_are_refused():
    with pytest.raises(ValueError, match="k \\(samples per example\\) must be a whole number ≥ 1"):
        IWAE(k=0)
    with pytest.raises(ValueError, match="no KL term to weigh: beta"):
        IWAE(beta=2.0)
    with pytest.raises(ValueError, match="free_bits"):
        IWAE(free_bits=0.5)


def test_config_rebuilds_the_model():
    model = iwae(k=7)
    twin = IWAE(**model.config())
    assert twin.k == 7 and twin.config() == model.config()
    np.testing.assert_array_equal(twin.params.data, model.params.data)
