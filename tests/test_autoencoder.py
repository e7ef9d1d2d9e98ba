"""Plain, denoising and sparse autoencoders: gradient checks of every objective (fixed noise),
the sparsity penalties on their own, the corruption, and the model contract."""

import numpy as np
import pytest
from conftest import away_from_zero

from tinyvae.backend import get_backend
from tinyvae.models.autoencoder import Autoencoder, corrupt
from tinyvae.nn.gradcheck import check_model, numerical_gradient, rel_error
from tinyvae.nn.losses import kl_sparsity, l1_penalty

MODEL_TOL, FUNCTION_TOL = 1e-6, 1e-8

CONFIGS = {
    "plain": dict(),
    "denoising-gaussian": dict(noise="gaussian", noise_level=0.4),
    "denoising-masking": dict(noise="masking", noise_level=0.3, likelihood="gaussian", sigma=0.5),
    "sparse-l1": dict(sparsity="l1", sparsity_weight=0.3),
    "sparse-kl": dict(sparsity="kl", sparsity_weight=2.0, sparsity_target=0.1, likelihood="gaussian", sigma=None),
    "denoising-sparse": dict(noise="masking", noise_level=0.5, sparsity="kl", sparsity_weight=0.5),
}


def small_ae(backend, rng, **kwargs):
    model = Autoencoder(input_dim=12, hidden=(8,), latent_dim=3, activation="tanh", dtype="float64",
                        backend=backend, seed=2, **kwargs)
    x = backend.asarray(rng.random((6, 12)))
    return model, x, model.draw_noise(backend.rng(5), 6)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_autoencoder_objective_gradient_every_parameter(backend, rng, name):
    model, x, noise = small_ae(backend, rng, **CONFIGS[name])
    errors = check_model(model, x, noise)
    assert len(errors) == len(model.params.names()) and max(errors.values()) < MODEL_TOL, errors


def test_l1_penalty_gradient(rng):
    code = away_from_zero(rng.standard_normal((5, 4)))
    value, dcode = l1_penalty(code)
    assert np.allclose(value, np.abs(code).sum(axis=1))
    assert rel_error(dcode, numerical_gradient(lambda: float(l1_penalty(code)[0].sum()), code)) < FUNCTION_TOL
    assert l1_penalty(np.zeros((1, 2)))[1].tolist() == [[0.0, 0.0]]          # the subgradient chosen at 0


def test_kl_sparsity_gradient_and_value(rng):
    code = 1.0 / (1.0 + np.exp(-rng.standard_normal((7, 4))))                 # activations in (0, 1)
    rho = 0.1
    value, dcode = kl_sparsity(code, rho)
    rho_hat = code.mean(axis=0)
    expected = (rho * np.log(rho / rho_hat) + (1 - rho) * np.log((1 - rho) / (1 - rho_hat))).sum()
    assert value.shape == (7,) and np.allclose(value, expected)              # every row carries the batch's penalty
    assert rel_error(dcode, numerical_gradient(lambda: float(kl_sparsity(code, rho)[0].sum()), code)) < FUNCTION_TOL
    assert kl_sparsity(np.full((3, 2), 0.25), 0.25)[0].tolist() == [0.0, 0.0, 0.0]    # ρ̂ = ρ: no penalty
    with pytest.raises(ValueError, match="rho must lie in"):
        kl_sparsity(code, 1.5)


def test_corruption_and_noise(rng):
    x = rng.random((2000, 12))
    masked = corrupt(x, rng.random(x.shape), "masking", 0.3)
    assert np.mean(masked == 0) == pytest.approx(0.3, abs=0.01) and np.all((masked == 0) | (masked == x))
    xi = rng.standard_normal(x.shape)
    assert np.allclose(corrupt(x, xi, "gaussian", 0.2), x + 0.2 * xi)
    assert corrupt(x, None, "none", 0.3) is x
    model, x, noise = small_ae(get_backend("cpu"), rng, noise="gaussian")
    assert noise.shape == (6, 12) and Autoencoder(input_dim=12).draw_noise(np.random.default_rng(0), 6) is None
    assert float(model.loss(x, noise).loss) == float(model.loss(x, noise).loss)      # fixed noise: deterministic
    assert float(model.loss(x).loss) != float(model.loss(x).loss)                    # else drawn afresh


def test_autoencoder_contract(rng):
    model, x, _ = small_ae(get_backend("cpu"), rng, sparsity="kl", sparsity_weight=0.7)
    code, logvar = model.encode(x)
    assert code.shape == (6, 3) and logvar is None and np.all((code > 0) & (code < 1))   # sigmoid code for "kl"
    assert model.reconstruct(x).shape == (6, 12) and model.beta == 0.7
    elbo = model.loss(x)
    assert float(elbo.loss) == pytest.approx(float(elbo.recon) + 0.7 * float(elbo.kl))
    assert Autoencoder(input_dim=12).beta == 0.0 and not model.generative and not model.conditional
    with pytest.raises(ValueError, match="no prior"):
        model.sample(4)
    twin = Autoencoder(**model.config())
    assert twin.config() == model.config() and np.array_equal(twin.params.data, model.params.data)


@pytest.mark.parametrize("kwargs, message", [
    (dict(noise="salt"), "unknown noise 'salt'"),
    (dict(sparsity="l2"), "unknown sparsity 'l2'"),
    (dict(noise="masking", noise_level=1.0), "noise_level must be"),
    (dict(sparsity="kl", sparsity_target=0.0), "sparsity_target must be a finite number > 0 and < 1"),
])
def test_bad_autoencoder_configuration_is_refused_clearly(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Autoencoder(input_dim=12, hidden=(8,), latent_dim=3, **kwargs)
