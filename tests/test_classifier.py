"""Softmax cross-entropy (gradient test in float64, and its negative twin) and the Classifier built on it."""

import numpy as np
import pytest

from tinyvae.data.loading import load_dataset
from tinyvae.models.classifier import Classifier, log_softmax, softmax_cross_entropy
from tinyvae.nn.gradcheck import numerical_gradient, rel_error

TOL = 1e-8


def test_softmax_cross_entropy_gradient(backend, rng):
    logits = backend.asarray(rng.standard_normal((5, 4)) * 3)
    labels = backend.asarray(np.array([0, 3, 1, 1, 2]))
    loss, dlogits = softmax_cross_entropy(logits, labels)
    assert loss.shape == (5,) and dlogits.shape == (5, 4)
    numeric = numerical_gradient(lambda: float(softmax_cross_entropy(logits, labels)[0].sum()), logits)
    assert rel_error(dlogits, numeric) < TOL


def test_softmax_without_the_one_hot_is_caught(rng):
    """Negative twin: the gradient check fails for softmax alone (forgetting to subtract the one-hot)."""
    logits, labels = rng.standard_normal((5, 4)), np.array([0, 3, 1, 1, 2])
    numeric = numerical_gradient(lambda: float(softmax_cross_entropy(logits, labels)[0].sum()), logits)
    assert rel_error(np.exp(log_softmax(logits)), numeric) > 1e-3


def test_softmax_cross_entropy_value_and_stability(rng):
    logits, labels = rng.standard_normal((3, 5)), np.array([4, 0, 2])
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert np.allclose(softmax_cross_entropy(logits, labels)[0], -np.log(p[np.arange(3), labels]), rtol=1e-12)
    huge = np.array([[1000.0, -1000.0, 0.0], [1000.0, 1000.0, 1000.0]])
    with np.errstate(over="raise", invalid="raise"):
        loss, dlogits = softmax_cross_entropy(huge, np.array([1, 2]))
    assert loss == pytest.approx([2000.0, np.log(3)])
    assert np.allclose(dlogits.sum(axis=1), 0.0)
    with pytest.raises(ValueError, match="labels"):
        softmax_cross_entropy(huge, np.array([1, 2, 0]))


@pytest.mark.parametrize("hidden", [(), (6, 5)])
def test_classifier_gradient_every_parameter(rng, hidden):
    model = Classifier(7, n_classes=3, hidden=hidden, activation="tanh", dtype="float64", seed=1)
    x, labels = rng.standard_normal((6, 7)), rng.integers(0, 3, 6)
    model.loss_and_grads(x, labels)
    analytic = model.params.grad.copy()
    numeric = numerical_gradient(lambda: float(model.loss_and_grads(x, labels)), model.params.data)
    assert rel_error(analytic, numeric) < 1e-7


def test_linear_probe_and_features_on_digit_pixels():
    digits = load_dataset("digits")
    x_train, x_test = digits.train_images / 16.0, digits.test_images / 16.0
    probe = Classifier(64, hidden=(), seed=0)
    losses = probe.fit(x_train, digits.train_labels, epochs=10, lr=1e-2, progress=False)
    assert losses[-1] < losses[0]
    assert probe.accuracy(x_test, digits.test_labels) > 0.9                  # softmax regression on pixels: ~95%
    net = Classifier(64, hidden=(32, 16), seed=0)
    net.fit(x_train, digits.train_labels, epochs=5, progress=False)
    assert net.features(x_test).shape == (len(x_test), 16)
    probs = net.predict_proba(x_test)
    assert probs.shape == (len(x_test), 10) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="no features"):
        probe.features(x_test)
    with pytest.raises(ValueError, match="shape"):
        probe.predict(x_test[:, :10])
