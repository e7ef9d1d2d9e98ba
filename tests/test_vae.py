"""The whole model: gradient checks of the negative ELBO w.r.t. every parameter, the API,
bad input, and a training run that must lower the loss."""

import numpy as np
import pytest

from tinyvae import VAE, Adam
from tinyvae.models.autoencoder import Autoencoder
from tinyvae.models.cvae import ConditionalVAE
from tinyvae.models.vae import LOGVAR_MAX
from tinyvae.nn.gradcheck import check_model

MODEL_TOL = 1e-6

CONFIGS = {
    "bernoulli-relu": dict(likelihood="bernoulli", activation="relu", beta=1.0),
    "bernoulli-beta": dict(likelihood="bernoulli", activation="leaky_relu", beta=0.25),
    "gaussian-fixed": dict(likelihood="gaussian", sigma=0.5, activation="tanh", beta=3.0),
    "gaussian-learned": dict(likelihood="gaussian", sigma=None, activation="softplus", beta=0.5),
    "deep-sigmoid": dict(likelihood="bernoulli", activation="sigmoid", beta=2.0, hidden=(9, 7)),
}


def small_batch(backend, rng, n=5, d=12, latent=3):
    x = backend.asarray(rng.random((n, d)))
    eps = backend.asarray(rng.standard_normal((n, latent)))
    return x, eps


@pytest.mark.parametrize("name", list(CONFIGS))
def test_negative_elbo_gradient_every_parameter(backend, rng, name):
    kwargs = dict(hidden=(8,), **CONFIGS[name]) if "hidden" not in CONFIGS[name] else dict(CONFIGS[name])
    model = VAE(input_dim=12, latent_dim=3, dtype="float64", backend=backend, seed=2, **kwargs)
    x, eps = small_batch(backend, rng)
    errors = check_model(model, x, eps)
    assert len(errors) == len(model.params.names())
    assert max(errors.values()) < MODEL_TOL, errors


def test_loss_is_recon_plus_beta_kl_and_matches_loss_and_grads(rng):
    model = VAE(input_dim=12, hidden=(8,), latent_dim=3, beta=0.3, dtype="float64", seed=0)
    x, eps = small_batch(model.backend, rng)
    a = model.loss_and_grads(x, eps)
    b = model.loss(x, eps)
    assert float(a.loss) == pytest.approx(float(a.recon) + 0.3 * float(a.kl))
    assert tuple(map(float, a)) == tuple(map(float, b))


def test_clamped_logvar_keeps_loss_finite_and_gradient_honest(rng):
    model = VAE(input_dim=12, hidden=(8,), latent_dim=3, seed=0)           # float32
    model.encoder.layers[-1].b[3:] = 500.0               # raw logvar ≈ 500: exp would overflow
    x, eps = small_batch(model.backend, rng)
    with np.errstate(over="raise"):
        elbo = model.loss_and_grads(x, eps)
    assert np.isfinite(float(elbo.loss))
    assert float(model.encode(x)[1].max()) == LOGVAR_MAX

    model = VAE(input_dim=12, hidden=(8,), latent_dim=3, dtype="float64", seed=0)
    model.encoder.layers[-1].b[3:] = -500.0              # clamped at LOGVAR_MIN: gradient 0
    assert max(check_model(model, x, eps).values()) < MODEL_TOL
    assert np.all(model.encoder.layers[-1].db[3:] == 0.0)


def test_default_architecture_is_pytorch_examples():
    model = VAE()
    assert (model.input_dim, model.hidden, model.latent_dim) == (784, [400], 20)
    assert model.params.size == 784 * 400 + 400 + 400 * 40 + 40 + 20 * 400 + 400 + 400 * 784 + 784
    assert model.dtype == np.float32 and model.likelihood == "bernoulli"


def test_encode_decode_sample_reconstruct_shapes(backend, rng):
    model = VAE(input_dim=12, hidden=(8,), latent_dim=3, backend=backend, seed=0)
    x = backend.asarray(rng.random((5, 12)))
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (5, 3)
    probs = backend.to_numpy(model.decode(mu))
    assert probs.shape == (5, 12) and probs.min() >= 0 and probs.max() <= 1
    assert model.sample(7).shape == (7, 12)
    assert model.reconstruct(x).shape == (5, 12)
    assert model.sample(4, rng=backend.rng(0)).dtype == np.float32


def test_config_rebuilds_the_same_model():
    model = VAE(input_dim=12, hidden=(8, 6), latent_dim=3, likelihood="gaussian", sigma=None, seed=5)
    twin = VAE(**model.config())
    assert twin.config() == model.config()
    assert np.array_equal(twin.params.data, model.params.data)


@pytest.mark.parametrize("bad, message", [
    (np.zeros((4, 11)), "expected 12 values per example"),
    (np.zeros(12), "expected a 2-D batch"),
    (np.zeros((2, 3, 12)), "expected a 2-D batch"),
    (np.zeros((0, 12)), "empty"),
    (np.array([[np.nan] + [0.0] * 11]), "NaN"),
    (np.array([[np.inf] + [0.0] * 11]), "NaN or infinite"),
])
def test_bad_batches_are_refused_clearly(bad, message):
    model = VAE(input_dim=12, hidden=(8,), latent_dim=3)
    with pytest.raises(ValueError, match=message):
        model.loss_and_grads(bad)


@pytest.mark.parametrize("kwargs, message", [
    (dict(activation="gelu"), "unknown activation 'gelu'"),
    (dict(likelihood="poisson"), "unknown likelihood 'poisson'"),
    (dict(latent_dim=0), r"latent_dim must be a whole number ≥ 1, got 0"),
    (dict(likelihood="gaussian", sigma=-1.0), r"sigma \(or None: learned\) must be a finite number > 0"),
    (dict(likelihood="gaussian", sigma=float("inf")), r"sigma \(or None: learned\) must be a finite number > 0"),
    (dict(beta=float("nan")), r"beta must be a finite number ≥ 0, got nan"),
    (dict(beta=-1), r"beta must be a finite number ≥ 0, got -1"),
    (dict(beta=float("inf")), r"beta must be a finite number ≥ 0, got inf"),
    (dict(free_bits=float("inf")), r"free_bits \(nats per dimension\) must be a finite number ≥ 0"),
    (dict(dtype="float16"), r"dtype must be one of float32, float64, got float16"),
    (dict(dtype="nonsense"), r"dtype must be one of float32, float64"),
    (dict(seed=-1), r"seed must be a whole number ≥ 0, got -1"),
    (dict(hidden=(2.5,)), r"each hidden size must be a whole number ≥ 1, got 2.5"),
    (dict(input_dim="12"), r"input_dim must be a whole number ≥ 1, got '12'"),
])
def test_bad_configuration_is_refused_clearly(kwargs, message):
    with pytest.raises(ValueError, match=message) as info:
        VAE(**{"input_dim": 12, "hidden": (8,), "latent_dim": 3, **kwargs})
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("cls, kwargs, message", [
    (Autoencoder, dict(noise="masking", noise_level=1.5), r"noise_level must be a finite number > 0 and < 1, got 1.5"),
    (Autoencoder, dict(noise="gaussian", noise_level=float("nan")), r"noise_level must be a finite number > 0"),
    (Autoencoder, dict(sparsity_weight=float("inf")), r"sparsity_weight must be a finite number ≥ 0"),
    (Autoencoder, dict(sparsity_target=1.0), r"sparsity_target must be a finite number > 0 and < 1"),
    (Autoencoder, dict(dtype="float16"), r"dtype must be one of float32, float64"),
    (ConditionalVAE, dict(n_classes=1), r"n_classes must be a whole number ≥ 2, got 1"),
    (ConditionalVAE, dict(beta=float("nan")), r"beta must be a finite number ≥ 0"),
])
def test_every_model_refuses_bad_arguments_by_name(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(input_dim=12, hidden=(8,), latent_dim=3, **kwargs)


def test_a_bernoulli_model_refuses_pixels_outside_0_1_and_says_to_scale():
    """uint8 images 0..255 would train on garbage: BCE with targets far above 1 has no meaning."""
    model = VAE(input_dim=12, hidden=(8,), latent_dim=3)
    images = np.random.default_rng(0).integers(0, 256, (5, 12), dtype=np.uint8)
    for call in (model.loss_and_grads, model.loss, model.encode, model.reconstruct):
        with pytest.raises(ValueError, match=r"values in \[0, 1\], got values from \d+ to \d+: scale the images"):
            call(images)
    model.loss_and_grads(images / 255.0)                                       # scaled, it trains
    with pytest.raises(ValueError, match="got values from -0.5"):
        model.loss(np.full((2, 12), -0.5))
    gaussian = VAE(input_dim=12, hidden=(8,), latent_dim=3, likelihood="gaussian")
    gaussian.loss(images)                                                       # a Gaussian takes any real value


def bars(n, seed=0):
    """n binary 8×8 images, each with one or two full horizontal or vertical bars."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 8, 8), dtype=np.float32)
    for image in images:
        for _ in range(rng.integers(1, 3)):
            k = rng.integers(8)
            if rng.random() < 0.5:
                image[k, :] = 1
            else:
                image[:, k] = 1
    return images.reshape(n, 64)


def test_training_lowers_the_negative_elbo_substantially():
    """300 Adam steps on 256 'bars' images: the negative ELBO of the whole set (fixed noise)
    falls from about 45 nats to about 21.5; we require it to at least halve and end below 25."""
    data = bars(256)
    model = VAE(input_dim=64, hidden=(32,), latent_dim=4, seed=0)
    optimizer = Adam(model.params, lr=3e-3)
    eps = np.random.default_rng(1).standard_normal((256, 4)).astype(np.float32)
    before = float(model.loss(data, eps).loss)
    rng = np.random.default_rng(0)
    for _ in range(300):
        model.loss_and_grads(data[rng.choice(256, 32, replace=False)])
        optimizer.step()
    after = float(model.loss(data, eps).loss)
    assert before > 40
    assert after < 0.5 * before and after < 25, (before, after)
