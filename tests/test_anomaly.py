"""ROC-AUC from ranks (a hand-computed example with ties, and every pair counted), and anomaly
detection on digits with one class held out of training, through the CLI."""

import json

import numpy as np
import pytest

from tinyvae.analysis.anomaly import anomaly_scores, average_ranks, main, roc_auc
from tinyvae.backend import get_backend
from tinyvae.data.loading import load_dataset
from tinyvae.training.trainer import RunConfig, Trainer


def test_roc_auc_matches_a_hand_computed_example_with_ties():
    """Scores 0.1 0.4 0.4 0.8 0.4 0.9, anomalies at 0.4, 0.8, 0.9. Ranks: 0.1 → 1, the three
    0.4s share (2 + 3 + 4)/3 = 3, 0.8 → 5, 0.9 → 6. R₊ = 3 + 5 + 6 = 14,
    U = 14 − 3·4/2 = 8, AUC = 8 / (3·3) = 8/9. By pairs: the anomalous 0.4 beats 0.1 and
    ties both normal 0.4s (1 + ½ + ½), 0.8 and 0.9 beat all three: 2 + 3 + 3 = 8."""
    scores = np.array([0.1, 0.4, 0.4, 0.8, 0.4, 0.9])
    anomalous = np.array([False, True, False, True, False, True])
    assert average_ranks(scores).tolist() == [1.0, 3.0, 3.0, 5.0, 3.0, 6.0]
    assert roc_auc(scores, anomalous) == pytest.approx(8 / 9)


def brute_force_auc(scores, positive):
    pos, neg = scores[positive], scores[~positive]
    return ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (len(pos) * len(neg))


def test_roc_auc_equals_counting_every_pair(rng):
    for _ in range(20):
        scores = rng.integers(0, 6, size=40).astype(float)                 # many ties
        positive = rng.random(40) < 0.3
        positive[:2] = [True, False]
        assert roc_auc(scores, positive) == pytest.approx(brute_force_auc(scores, positive))
    assert roc_auc(np.ones(5), np.array([1, 0, 1, 0, 0], bool)) == 0.5     # all tied: chance
    assert roc_auc(np.arange(4.0), np.array([0, 0, 1, 1], bool)) == 1.0
    assert roc_auc(np.arange(4.0), np.array([1, 1, 0, 0], bool)) == 0.0


@pytest.mark.parametrize("scores, labels, message", [
    (np.ones(3), np.ones(3, bool), "both anomalies and normal"),
    (np.ones(3), np.ones(2, bool), "same shape"),
    (np.array([0.0, np.nan]), np.array([True, False]), "NaN"),
])
def test_roc_auc_refuses_bad_input(scores, labels, message):
    with pytest.raises(ValueError, match=message):
        roc_auc(scores, labels)


@pytest.fixture(scope="module")
def run_without_sevens(tmp_path_factory):
    """A digits VAE 64-64-8 trained 30 epochs without any 7."""
    out = tmp_path_factory.mktemp("no7")
    config = RunConfig(dataset="digits", epochs=30, batch_size=64, hidden=[64], latent_dim=8, exclude_classes=[7])
    trainer = Trainer(config, load_dataset("digits"), get_backend("cpu"), out, progress=False, log=lambda line: None)
    assert trainer.fit() == "done"
    assert trainer.train_x.shape[0] == 1501 - 150 and trainer.test_x.shape[0] == 296   # the test set stays whole
    return out, trainer


def test_anomaly_cli_on_a_held_out_digit(run_without_sevens, capsys):
    """Measured: ROC-AUC 0.795 (negative ELBO) and 0.874 (reconstruction) for the 29 test 7s
    among 296 test digits; we require 0.7."""
    out, _ = run_without_sevens
    for score in ("elbo", "recon"):
        assert main([str(out), "--anomaly-classes", "7", "--score", score]) == 0
        report = json.loads((out / "anomaly.json").read_text())
        assert report["anomalies"] == 29 and report["normal"] == 267 and report["auc"] > 0.7, report
        assert report["mean_score_anomalous"] > report["mean_score_normal"]
        assert f"ROC-AUC {report['auc']:.4f}" in capsys.readouterr().out
    assert (out / "anomaly_scores.png").stat().st_size > 0
    assert main([str(out), "--anomaly-classes", "3"]) == 0
    assert "trained on class(es) 3" in capsys.readouterr().out


def test_anomaly_scores_refuse_what_they_cannot_score(run_without_sevens):
    from tinyvae.models.autoencoder import Autoencoder
    from tinyvae.models.cvae import ConditionalVAE

    images = load_dataset("digits").test_images[:5]
    with pytest.raises(ValueError, match="has no ELBO"):
        anomaly_scores(Autoencoder(input_dim=64, hidden=(8,), latent_dim=2), images, 16, "elbo")
    assert anomaly_scores(Autoencoder(input_dim=64, hidden=(8,), latent_dim=2), images, 16, "recon").shape == (5,)
    with pytest.raises(ValueError, match="unconditional"):
        anomaly_scores(ConditionalVAE(input_dim=64, hidden=(8,), latent_dim=2), images, 16, "recon")
    model = run_without_sevens[1].model
    assert np.array_equal(anomaly_scores(model, images, 16, seed=3), anomaly_scores(model, images, 16, seed=3))
