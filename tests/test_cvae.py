"""The conditional VAE: gradient checks with labels, the label API, and samples of class k that a
classifier trained on real digits calls k."""

import numpy as np
import pytest

import tinyvae
from tinyvae.backend import get_backend
from tinyvae.data.loading import load_dataset, to_float
from tinyvae.models.classifier import Classifier
from tinyvae.models.cvae import ConditionalVAE, label_accuracy, one_hot
from tinyvae.nn.gradcheck import check_model
from tinyvae.training.trainer import RunConfig, Trainer

MODEL_TOL = 1e-6


def small_cvae(backend, rng, **kwargs):
    model = ConditionalVAE(input_dim=12, hidden=(8,), latent_dim=3, n_classes=4, activation="tanh",
                           dtype="float64", backend=backend, seed=2, **kwargs)
    x = backend.asarray(rng.random((6, 12)))
    eps = backend.asarray(rng.standard_normal((6, 3)))
    labels = backend.asarray(np.array([0, 3, 1, 1, 2, 0]))
    return model, x, eps, labels


@pytest.mark.parametrize("kwargs", [dict(), dict(beta=0.5, likelihood="gaussian", sigma=None, free_bits=0.02)])
def test_conditional_negative_elbo_gradient_every_parameter(backend, rng, kwargs):
    model, x, eps, labels = small_cvae(backend, rng, **kwargs)
    errors = check_model(model, x, eps, labels=labels)
    assert len(errors) == len(model.params.names()) and max(errors.values()) < MODEL_TOL, errors
    assert model.params.layout["encoder.1.W"][1] == (12 + 4, 8)     # [x | onehot(y)] into the first Linear
    assert model.params.layout["decoder.1.W"][1] == (3 + 4, 8)      # [z | onehot(y)]


def test_labels_change_the_decoding_and_are_required(rng):
    model, x, eps, labels = small_cvae(get_backend("cpu"), rng)
    z = rng.standard_normal((2, 3))
    assert not np.allclose(model.decode(z, [0, 0]), model.decode(z, [1, 1]))
    assert np.allclose(model.decode(z, 2), model.decode(z, [2, 2]))    # one int for the whole batch
    assert model.encode(x, labels)[0].shape == (6, 3) and model.reconstruct(x, labels).shape == (6, 12)
    assert model.sample(8).shape == (8, 12)                          # classes 0, 1, 2, 3, 0, ...
    rng0 = get_backend("cpu").rng(0)
    first = model.sample(8, rng0)
    assert np.allclose(first, model.sample(8, get_backend("cpu").rng(0), labels=np.arange(8) % 4))
    with pytest.raises(ValueError, match="needs labels"):
        model.encode(x)
    with pytest.raises(ValueError, match=r"labels must lie in 0\.\.3"):
        model.loss(x, eps, labels=np.array([0, 1, 2, 3, 4, 0]))
    with pytest.raises(ValueError, match="integer labels of shape"):
        model.decode(z, [0.5, 1.0])
    with pytest.raises(ValueError, match="not conditional"):
        tinyvae.VAE(input_dim=12, hidden=(8,), latent_dim=3).encode(x, labels)
    assert np.array_equal(one_hot(np.array([2, 0]), 3, "float32"), [[0, 0, 1], [1, 0, 0]])


def test_config_rebuilds_the_same_cvae(rng):
    model = ConditionalVAE(input_dim=12, hidden=(8,), latent_dim=3, n_classes=5, free_bits=0.1, seed=4)
    twin = ConditionalVAE(**model.config())
    assert twin.config() == model.config() and np.array_equal(twin.params.data, model.params.data)


def test_cvae_samples_are_classified_as_their_label(tmp_path):
    """digits, CVAE 64-64-4, 30 epochs; a 64-256-64-10 classifier trained 30 epochs on the real
    training images (98.6% test accuracy) names the class of 100 samples of each class.
    Measured: 100% (1000 of 1000); chance is 10%. We require 80%."""
    digits, cpu = load_dataset("digits"), get_backend("cpu")
    config = RunConfig(dataset="digits", model="cvae", epochs=30, batch_size=64, hidden=[64], latent_dim=4)
    trainer = Trainer(config, digits, cpu, tmp_path, progress=False, log=lambda line: None)
    assert trainer.fit() == "done"
    classifier = Classifier(64, hidden=(256, 64), seed=0)
    classifier.fit(to_float(digits.train_images, 16, "float32"), digits.train_labels, epochs=30, batch_size=64,
                   progress=False)
    assert classifier.accuracy(to_float(digits.test_images, 16, "float32"), digits.test_labels) > 0.95
    accuracy, per_class = label_accuracy(tinyvae.load(tmp_path), classifier, 100, cpu.rng(0))
    assert accuracy > 0.8 and per_class.min() > 0.5, per_class
