"""M2 (tinyvae/models/m2.py): float64 gradient checks of the semi-supervised objective w.r.t. every
parameter group (labelled, unlabelled and mixed batches), the objective by hand, the balanced
labelled subset and its refusals. The planted bugs are in tests/test_planted_bugs.py."""

import math

import numpy as np
import pytest

from tinyvae.models.classifier import log_softmax
from tinyvae.models.m2 import M2, UNLABELLED, labelled_subset
from tinyvae.nn.gradcheck import check_model

MODEL_TOL = 1e-6
LABELS = {
    "mixed": np.array([2, UNLABELLED, 0, UNLABELLED, 3, UNLABELLED]),
    "all-labelled": np.array([0, 1, 2, 3, 1, 0]),
    "all-unlabelled": np.full(6, UNLABELLED),
}


def m2(**kwargs):
    kwargs = {"hidden": (8,), "alpha": 2.5, **kwargs}
    return M2(input_dim=12, latent_dim=3, n_classes=4, dtype="float64", seed=2, **kwargs)


@pytest.mark.parametrize("name", list(LABELS))
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_m2_gradient_every_parameter(rng, name, likelihood):
    model = m2(likelihood=likelihood, activation="tanh", sigma=None if likelihood == "gaussian" else 1.0)
    x, eps = rng.random((6, 12)), model.draw_noise(rng, 6)
    errors = check_model(model, x, eps, labels=LABELS[name])
    assert {name.split(".")[0] for name in errors} == {"encoder", "decoder", "classifier"}
    assert len(errors) == len(model.params.names())
    assert max(errors.values()) < MODEL_TOL, errors


def test_objective_by_hand(rng):
    """U(x) = Σ_y q(y|x) L(x, y) − H(q(y|x)) and L(x, y) + α·CE, with L from the CVAE's own loss."""
    model = m2()
    x, eps = rng.random((3, 12)), model.draw_noise(rng, 3)
    labels = np.array([1, UNLABELLED, UNLABELLED])
    log_q = log_softmax(model.classifier.forward(x))
    cvae_bound = np.empty((3, 4))
    for c in range(4):
        for n in range(3):
            recon, kl = super(M2, model).forward(x[n:n + 1], eps[c * 3 + n:c * 3 + n + 1], labels=np.array([c]))
            cvae_bound[n, c] = float(recon[0] + kl[0]) + math.log(4)
    q = np.exp(log_q)
    expected = [cvae_bound[0, 1] + 2.5 * -log_q[0, 1]] + [
        (q[n] * cvae_bound[n]).sum() + (q[n] * log_q[n]).sum() for n in (1, 2)]
    elbo = model.loss(x, eps, labels=labels)
    assert float(elbo.loss) == pytest.approx(np.mean(expected), rel=1e-12)
    assert float(elbo.recon + elbo.kl) == pytest.approx(np.mean(expected) - 2.5 * -log_q[0, 1] / 3, rel=1e-12)


def test_labelled_subset_is_balanced_seeded_and_refuses_bad_sizes():
    labels = np.repeat(np.arange(10), 30)
    chosen = labelled_subset(labels, 53, 10, seed=4)
    assert len(chosen) == len(set(chosen)) == 53
    assert np.bincount(labels[chosen]).tolist() == [6, 6, 6] + [5] * 7
    assert np.array_equal(chosen, labelled_subset(labels, 53, 10, seed=4))
    assert not np.array_equal(chosen, labelled_subset(labels, 53, 10, seed=5))
    with pytest.raises(ValueError, match="at least the number of classes \\(10\\)"):
        labelled_subset(labels, 9, 10, seed=0)
    with pytest.raises(ValueError, match="more than the 300 training examples"):
        labelled_subset(labels, 301, 10, seed=0)
    with pytest.raises(ValueError, match="has none"):
        labelled_subset(np.array([], dtype=np.int64), 10, 10, seed=0)
    with pytest.raises(ValueError, match="class 9, which has only 2"):
        labelled_subset(np.r_[labels[:270], [9, 9]], 100, 10, seed=0)


def test_bad_labels_and_options_are_refused(rng):
    model = m2()
    with pytest.raises(ValueError, match="or be -1 for an unlabelled example"):
        model.loss(rng.random((2, 12)), model.draw_noise(rng, 2), labels=np.array([0, 4]))
    with pytest.raises(TypeError):
        M2(beta=2.0)
    with pytest.raises(ValueError, match="alpha must be a finite number ≥ 0"):
        M2(alpha=-1)


def test_config_rebuilds_and_predicts(rng):
    model = m2(alpha=7.0)
    twin = M2(**model.config())
    np.testing.assert_array_equal(twin.params.data, model.params.data)
    x = rng.random((5, 12))
    assert model.predict(x).shape == (5,) and model.encode(x)[0].shape == (5, 3)
    assert model.sample(8).shape == (8, 12) and model.reconstruct(x).shape == (5, 12)
