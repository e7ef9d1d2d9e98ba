"""tinyvae.analysis.metrics against exact answers: log p(x) by numerical integration for a 1- and 2-D latent,
the Fréchet distance in closed form, active units of a model with planted dead dimensions."""

import math

import numpy as np
import pytest

from tinyvae import VAE, Adam
from tinyvae.analysis.metrics import (
    active_units,
    elbo_parts,
    frechet_distance,
    gaussian_statistics,
    iwae_bound,
    kl_per_dimension,
    label_entropy,
    log_mean_exp,
    log_sum_exp,
    pca_2d,
    sqrtm_psd,
)

# --- log-sum-exp -----------------------------------------------------------------------------------


def test_log_mean_exp_is_stable_and_exact():
    a = np.array([[1000.0, 1000.0, -np.inf], [-1000.0, -1001.0, -1002.0], [0.1, 0.2, 0.3]])
    with np.errstate(over="raise", under="ignore"):
        out = log_mean_exp(a, axis=1)
    assert out[0] == pytest.approx(1000.0 + math.log(2 / 3), abs=1e-12)
    assert out[1] == pytest.approx(-1000.0 + math.log((1 + math.exp(-1) + math.exp(-2)) / 3), abs=1e-12)
    assert out[2] == pytest.approx(math.log(np.exp([0.1, 0.2, 0.3]).mean()), abs=1e-14)
    assert log_sum_exp(np.full((2, 3), -np.inf), axis=0).tolist() == [-np.inf] * 3     # not NaN


# --- the exact log-likelihood of a tiny model ------------------------------------------------------

def tiny_model(latent_dim, seed=0):
    """A VAE on 5 binary pixels with a 1- or 2-D latent, trained briefly so that q is a fair posterior."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((512, latent_dim))
    data = (z @ rng.standard_normal((latent_dim, 5)) * 2 + rng.standard_normal((512, 5)) > 0).astype(float)
    model = VAE(input_dim=5, hidden=(16,), latent_dim=latent_dim, dtype="float64", seed=seed)
    optimizer = Adam(model.params, lr=1e-2)
    for step in range(300):
        model.loss_and_grads(data[(step * 64) % 512:(step * 64) % 512 + 64])
        optimizer.step()
    return model, data[:4]


def grid_log_likelihood(model, x, points=1601, limit=8.0):
    """log p(x) = log ∫ p(x|z) N(z; 0, I) dz by the trapezoid rule on [−8, 8]^J, and the grid for reuse."""
    axis = np.linspace(-limit, limit, points)
    weights = np.full(points, axis[1] - axis[0])
    weights[[0, -1]] /= 2                                                    # trapezoid: half weight at the ends
    J = model.latent_dim
    z = np.stack(np.meshgrid(*[axis] * J, indexing="ij"), axis=-1).reshape(-1, J)
    log_w = np.log(np.prod(np.stack(np.meshgrid(*[weights] * J, indexing="ij"), -1).reshape(-1, J), axis=1))
    log_prior = -0.5 * (z * z).sum(axis=1) - 0.5 * J * math.log(2 * math.pi)
    log_lik = np.stack([-model.nll_given_z(np.broadcast_to(row, (len(z), 5)), z) for row in x])   # (N, G)
    return log_sum_exp((log_lik + log_prior + log_w).T, axis=0), z, log_w, log_lik


@pytest.mark.parametrize("latent_dim, points", [(1, 4001), (2, 321)])
def test_iwae_bound_with_large_k_reaches_the_exact_log_likelihood(latent_dim, points):
    model, x = tiny_model(latent_dim)
    exact = grid_log_likelihood(model, x, points)[0]
    L = iwae_bound(model, x, k=20_000, rng=np.random.default_rng(0), max_rows=4096)   # 30 chunks of 682 samples
    assert np.all(np.abs(L - exact) < 0.05), (L, exact)


def test_l1_is_the_elbo_in_expectation():
    model, x = tiny_model(1)
    exact, z, log_w, log_lik = grid_log_likelihood(model, x)
    mu, logvar = model.encode(x)
    q = np.exp(-0.5 * (z.T - mu) ** 2 / np.exp(logvar)) / np.sqrt(2 * math.pi * np.exp(logvar))    # (N, G)
    elbo = (q * np.exp(log_w) * log_lik).sum(axis=1) - elbo_parts(model, x).kl   # E_q[log p(x|z)] − KL, exactly
    repeats = 20_000
    L1 = iwae_bound(model, np.tile(x, (repeats, 1)), k=1, rng=np.random.default_rng(1)).reshape(repeats, -1)
    standard_error = L1.std(axis=0) / math.sqrt(repeats)
    assert np.all(np.abs(L1.mean(axis=0) - elbo) < 4 * standard_error + 1e-3), (L1.mean(axis=0), elbo)
    assert np.all(elbo < exact - 0.05)                                     # the bound is not tight here


def test_lk_rises_with_k_on_average():
    model, x = tiny_model(1)
    model.encoder.layers[-1].b[1:] -= 1.0                                  # q(z|x) too narrow: room to improve
    exact = grid_log_likelihood(model, x)[0].mean()
    rows = np.tile(x, (500, 1))                                            # 500 independent draws of L_k per image
    means = [float(iwae_bound(model, rows, k, rng=np.random.default_rng(7)).mean()) for k in (1, 4, 16, 64, 256)]
    assert all(a < b for a, b in zip(means, means[1:], strict=False)), means     # −3.29, −3.18, −3.09, −3.04, −3.02
    assert means[-1] < exact and exact - means[0] > 0.25                   # log p(x) = −2.97 on average


def test_log_weights_use_the_closed_form_gaussian_densities():
    model = VAE(input_dim=6, hidden=(5,), latent_dim=3, dtype="float64", seed=4)
    x = np.random.default_rng(0).random((2, 6))
    eps = np.random.default_rng(1).standard_normal((1, 2, 3))

    class Fixed:
        def standard_normal(self, shape, dtype=None):
            return eps.reshape(shape)

    mu, logvar = model.encode(x)
    z = mu + np.exp(0.5 * logvar) * eps[0]
    var = np.exp(logvar)
    log_q = (-0.5 * (z - mu) ** 2 / var - 0.5 * np.log(2 * math.pi * var)).sum(axis=1)
    log_p = (-0.5 * z**2 - 0.5 * math.log(2 * math.pi)).sum(axis=1)
    recon, _ = model.forward(x, eps[0])
    assert np.allclose(model.nll_given_z(x, z), recon, rtol=1e-12)
    assert np.allclose(iwae_bound(model, x, 1, rng=Fixed()), -recon + log_p - log_q, rtol=1e-12)
    with pytest.raises(ValueError, match="at least 1"):
        iwae_bound(model, x, 0)


# --- the latent code -------------------------------------------------------------------------------

def test_active_units_reports_exactly_the_dead_dimensions():
    model = VAE(input_dim=12, hidden=(16,), latent_dim=6, dtype="float64", seed=0)
    head = model.encoder.layers[-1]                    # outputs [mu (6) | logvar (6)]
    head.W[:, :6] *= 20.0                              # make the live dimensions clearly vary with x
    dead = [1, 4]
    head.W[:, dead] = 0.0                              # mu_u = b_u for every x: E_q[z_u] ignores the input
    head.b[dead] = 0.3
    x = np.random.default_rng(0).random((500, 12))
    mu, logvar = model.encode(x)
    activity, active = active_units(mu)
    assert np.flatnonzero(~active).tolist() == dead
    assert np.all(activity[dead] < 1e-20) and np.all(activity[active] > 0.01)
    kl = kl_per_dimension(mu, logvar)
    assert kl.shape == (6,) and kl.sum() == pytest.approx(float(elbo_parts(model, x).kl.mean()), rel=1e-12)


def test_elbo_parts_match_the_model_and_the_reconstruction_errors():
    model = VAE(input_dim=8, hidden=(6,), latent_dim=2, dtype="float64", seed=1)
    rng = np.random.default_rng(2)
    x, eps = (rng.random((4, 8)) < 0.5).astype(float), rng.standard_normal((4, 2))
    parts = elbo_parts(model, x, eps)
    recon, kl = model.forward(x, eps)
    assert np.array_equal(parts.recon, recon) and np.array_equal(parts.kl, kl)
    assert np.allclose(parts.bce, model.nll_given_z(x, parts.mu), rtol=1e-9)   # Bernoulli: −log p(x | z = mu)
    assert np.allclose(parts.mse, ((x - model.reconstruct(x)) ** 2).mean(axis=1))


def test_pca_2d_finds_the_plane_of_largest_variance():
    rng = np.random.default_rng(0)
    plane = rng.standard_normal((4000, 2)) * [3.0, 1.0]                    # variances 9 and 1
    rotation = np.linalg.qr(rng.standard_normal((5, 5)))[0]
    z = np.column_stack([plane, 0.01 * rng.standard_normal((4000, 3))]) @ rotation.T + 7.0
    points, ratio = pca_2d(z)
    cov = np.cov(points.T)
    assert abs(cov[0, 1]) < 1e-10                                          # principal axes: uncorrelated
    assert cov[0, 0] == pytest.approx(9.0, rel=0.05) and cov[1, 1] == pytest.approx(1.0, rel=0.05)
    assert np.abs(np.corrcoef(points[:, 0], plane[:, 0])[0, 1]) > 0.99    # the first axis is the wide one
    assert ratio[0] == pytest.approx(0.9, abs=0.01) and ratio[1] == pytest.approx(0.1, abs=0.01)
    with pytest.raises(ValueError, match="at least 2"):
        pca_2d(z[:, :1])


# --- sample quality --------------------------------------------------------------------------------

def random_cov(rng, n):
    a = rng.standard_normal((n, n))
    return a @ a.T + 0.1 * np.eye(n)


def test_sqrtm_psd_squares_back():
    cov = random_cov(np.random.default_rng(0), 6)
    root = sqrtm_psd(cov)
    assert np.allclose(root @ root, cov, atol=1e-10) and np.allclose(root, root.T)


def test_frechet_distance_is_zero_for_identical_features():
    features = np.random.default_rng(0).standard_normal((1000, 16)) @ np.random.default_rng(1).random((16, 16))
    stats = gaussian_statistics(features)
    assert frechet_distance(*stats, *stats) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_matches_closed_forms():
    rng = np.random.default_rng(0)
    m1, m2 = rng.standard_normal(2), rng.standard_normal(2)
    # diagonal (commuting) covariances: tr(Σ₁ + Σ₂ − 2(Σ₁Σ₂)^½) = Σ_i (√a_i − √b_i)²
    a, b = np.array([4.0, 0.25]), np.array([1.0, 9.0])
    expected = np.sum((m1 - m2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(m1, np.diag(a), m2, np.diag(b)) == pytest.approx(expected, rel=1e-12)
    # any 2×2: tr M^½ = √(tr M + 2√det M) for PSD M, with M = Σ₁^½Σ₂Σ₁^½ (tr M = tr Σ₁Σ₂, det M = det Σ₁ det Σ₂)
    s1, s2 = random_cov(rng, 2), random_cov(rng, 2)
    assert not np.allclose(s1 @ s2, s2 @ s1)                               # they do not commute
    cross = math.sqrt(np.trace(s1 @ s2) + 2 * math.sqrt(np.linalg.det(s1) * np.linalg.det(s2)))
    expected = np.sum((m1 - m2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * cross
    assert frechet_distance(m1, s1, m2, s2) == pytest.approx(expected, rel=1e-10)
    assert frechet_distance(m2, s2, m1, s1) == pytest.approx(expected, rel=1e-10)   # symmetric, as a distance
    # Σ₂ = c·Σ₁: (Σ₁^½ c Σ₁ Σ₁^½)^½ = √c Σ₁, so d² = |Δm|² + (1 − √c)² tr Σ₁
    s = random_cov(rng, 5)
    assert frechet_distance(np.zeros(5), s, np.ones(5), 4 * s) == pytest.approx(5 + np.trace(s), rel=1e-10)


def test_frechet_distance_from_samples_approaches_the_closed_form():
    rng = np.random.default_rng(0)
    m1, m2, s1, s2 = np.zeros(3), np.array([1.0, 0.0, -1.0]), random_cov(rng, 3), random_cov(rng, 3)
    f1 = rng.multivariate_normal(m1, s1, size=200_000)
    f2 = rng.multivariate_normal(m2, s2, size=200_000)
    exact = frechet_distance(m1, s1, m2, s2)
    assert frechet_distance(*gaussian_statistics(f1), *gaussian_statistics(f2)) == pytest.approx(exact, rel=0.02)


def test_the_symmetric_form_matters():
    """Negative twin: taking the 'square root' of the non-symmetric Σ₁Σ₂ with the symmetric eigh misses."""
    rng = np.random.default_rng(0)
    s1, s2, m = random_cov(rng, 2), random_cov(rng, 2), np.zeros(2)
    wrong = np.trace(s1) + np.trace(s2) - 2 * np.trace(sqrtm_psd(s1 @ s2))
    assert abs(wrong - frechet_distance(m, s1, m, s2)) > 1e-3


def test_label_entropy():
    sure = np.eye(4)[[0, 1, 2, 3, 0, 1, 2, 3]]                             # confident and spread over 4 classes
    assert label_entropy(sure) == pytest.approx((0.0, math.log(4)))
    assert label_entropy(np.full((5, 4), 0.25)) == pytest.approx((math.log(4), math.log(4)))
    assert label_entropy(np.eye(4)[[2, 2, 2]]) == pytest.approx((0.0, 0.0))
