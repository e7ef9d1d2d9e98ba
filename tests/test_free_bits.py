"""β-weighted ELBO, KL annealing and free bits: gradient checks (the free-bits kink included),
the schedules, and free bits keeping latent units active where the plain β-VAE collapses."""

import numpy as np
import pytest

from tinyvae import VAE
from tinyvae.backend import get_backend
from tinyvae.data.loading import load_dataset
from tinyvae.nn.gradcheck import check_model, numerical_gradient, rel_error
from tinyvae.nn.losses import free_bits_kl, gaussian_kl
from tinyvae.training.annealing import cyclical, kl_weight, linear_warmup
from tinyvae.training.trainer import RunConfig, Trainer

MODEL_TOL, FUNCTION_TOL = 1e-6, 1e-8


def kl_per_dimension(mu, logvar):
    """KL_j, the batch means (J,), computed exactly as free_bits_kl computes them."""
    N, J = mu.shape
    return gaussian_kl(mu.reshape(-1, 1), logvar.reshape(-1, 1))[0].reshape(N, J).mean(axis=0)


def small_vae(rng, **kwargs):
    model = VAE(input_dim=12, hidden=(8,), latent_dim=4, activation="tanh", dtype="float64", seed=2, **kwargs)
    return model, rng.random((6, 12)), rng.standard_normal((6, 4))


def test_free_bits_value_is_the_sum_of_clamped_batch_kls_and_mean_of_rows(rng):
    mu, logvar = rng.standard_normal((7, 5)), rng.standard_normal((7, 5))
    lam = float(np.median(kl_per_dimension(mu, logvar)))
    value, _, _ = free_bits_kl(mu, logvar, lam)
    assert value.shape == (7,)
    assert value.mean() == pytest.approx(np.maximum(lam, kl_per_dimension(mu, logvar)).sum())
    full, dmu, dlogvar = gaussian_kl(mu, logvar)
    same, dmu0, dlogvar0 = free_bits_kl(mu, logvar, 0.0)                # λ = 0 and every KL_j > 0: plain KL
    assert np.allclose(same, full) and np.allclose(dmu0, dmu) and np.allclose(dlogvar0, dlogvar)


def test_free_bits_gradients_away_from_the_kink(rng):
    mu, logvar = rng.standard_normal((6, 5)), rng.standard_normal((6, 5))
    kl = np.sort(kl_per_dimension(mu, logvar))
    lam = float(kl[1] + kl[2]) / 2                                       # 2 dimensions below λ, 3 above
    assert min(abs(kl - lam)) > 1e-3

    def f():
        return float(free_bits_kl(mu, logvar, lam)[0].sum())

    _, dmu, dlogvar = free_bits_kl(mu, logvar, lam)
    assert rel_error(dmu, numerical_gradient(f, mu)) < FUNCTION_TOL
    assert rel_error(dlogvar, numerical_gradient(f, logvar)) < FUNCTION_TOL
    assert np.count_nonzero(dmu.any(axis=0)) == 3                        # the 2 free dimensions get no gradient


def test_free_bits_subgradient_at_the_kink_is_the_left_derivative(rng):
    """At KL_j = λ exactly, max(λ, KL_j) has one-sided derivatives 0 (towards smaller KL_j) and
    dKL_j (towards larger). The gradient returned is the first, 0, and lies between the two."""
    mu, logvar = rng.standard_normal((6, 4)), rng.standard_normal((6, 4))
    lam = float(kl_per_dimension(mu, logvar)[1])                        # dimension 1 sits on the kink
    _, dmu, dlogvar = free_bits_kl(mu, logvar, lam)
    assert np.all(dmu[:, 1] == 0) and np.all(dlogvar[:, 1] == 0)
    active_dmu, active_dlogvar = mu[:, 1], 0.5 * (np.exp(logvar[:, 1]) - 1)   # d KL_n1, the other side
    h = 1e-7
    for array, active in ((mu, active_dmu), (logvar, active_dlogvar)):
        for n in range(6):
            old = array[n, 1]
            base = free_bits_kl(mu, logvar, lam)[0].sum()
            array[n, 1] = old + h
            right = (free_bits_kl(mu, logvar, lam)[0].sum() - base) / h
            array[n, 1] = old - h
            left = (base - free_bits_kl(mu, logvar, lam)[0].sum()) / h
            array[n, 1] = old
            one_sided = sorted([left, right], key=abs)                   # one is 0, the other d KL_n1
            assert one_sided[0] == 0.0 == dmu[n, 1]                      # the gradient is the flat side
            assert one_sided[1] == pytest.approx(active[n], rel=1e-5, abs=1e-6)


def test_beta_weighted_elbo_gradient(rng):
    for beta in (0.2, 4.0):
        model, x, eps = small_vae(rng, beta=beta)
        elbo = model.loss(x, eps)
        assert float(elbo.loss) == pytest.approx(float(elbo.recon) + beta * float(elbo.kl))
        assert max(check_model(model, x, eps).values()) < MODEL_TOL


def test_kl_weight_scales_the_objective_and_its_gradient(rng):
    model, x, eps = small_vae(rng, beta=2.0)
    model.kl_weight = 0.3
    elbo = model.loss(x, eps)
    assert float(elbo.loss) == pytest.approx(float(elbo.recon) + 2.0 * 0.3 * float(elbo.kl))
    assert max(check_model(model, x, eps).values()) < MODEL_TOL
    model.kl_weight = 0.0                                                # warm-up start: reconstruction only
    assert float(model.loss(x, eps).loss) == pytest.approx(float(elbo.recon))


def test_free_bits_model_gradient_every_parameter(rng):
    model, x, eps = small_vae(rng, beta=1.5)
    mu, logvar = model.encode(x)
    kl = np.sort(kl_per_dimension(mu, logvar))
    model.free_bits = float(kl[1] + kl[2]) / 2                          # some dimensions free, some not
    assert min(abs(kl - model.free_bits)) > 1e-4
    model.kl_weight = 0.7
    errors = check_model(model, x, eps)
    assert max(errors.values()) < MODEL_TOL, errors
    elbo = model.loss(x, eps)
    floor = np.maximum(model.free_bits, kl_per_dimension(mu, logvar)).sum()
    assert float(elbo.loss) == pytest.approx(float(elbo.recon) + 1.5 * 0.7 * floor)
    assert float(elbo.kl) == pytest.approx(float(gaussian_kl(mu, logvar)[0].mean()))   # the true KL is reported


def test_annealing_schedules():
    assert [linear_warmup(t, 4) for t in range(6)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    assert linear_warmup(3, 0) == 1.0
    w = [cyclical(t, 16, 2) for t in range(16)]                          # period 8: ramp over 4 steps, hold 4
    assert w == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0, 1.0, 1.0] * 2
    assert kl_weight(5, steps_per_epoch=10, epochs=4, warmup_epochs=1) == 0.5
    assert kl_weight(25, steps_per_epoch=10, epochs=4, cycles=2) == pytest.approx(0.5)
    assert kl_weight(7, 10, 4) == 1.0
    with pytest.raises(ValueError, match="choose one"):
        kl_weight(0, 10, 4, warmup_epochs=1, cycles=2)


def test_free_bits_keeps_units_active_where_the_beta_vae_collapses(tmp_path):
    """digits, 64-64-8, β = 4, 20 epochs: the plain β-VAE collapses to 0 active units (KL ≈ 0);
    with free bits λ = 0.5 nats all 8 units stay active (measured: 0 and 8)."""
    digits, cpu = load_dataset("digits"), get_backend("cpu")
    counts = {}
    for free_bits in (0.0, 0.5):
        config = RunConfig(dataset="digits", epochs=20, batch_size=64, hidden=[64], latent_dim=8, beta=4.0,
                           free_bits=free_bits)
        trainer = Trainer(config, digits, cpu, tmp_path / str(free_bits), progress=False, log=lambda line: None)
        assert trainer.fit() == "done"
        counts[free_bits] = trainer.history[-1]["active_units"]
        assert all("active_units" in row and row["kl_weight"] == 1.0 for row in trainer.history)
    assert counts[0.0] <= 1 and counts[0.5] == 8, counts
