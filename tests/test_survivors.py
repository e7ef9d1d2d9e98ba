"""Behaviour pinned by hand-computed values, so that small deliberate breaks of the code fail a test.

A mutation run (issue 14) changed one thing at a time — a comparison, a sign, an endpoint — and
found breaks no test noticed. Each test here states the behaviour with numbers worked out by
hand, not by calling the code under test a second time. (Checkpoint writes and loads are attacked
in tests/test_checkpoint.py.) tests/mutation.py re-runs those mutations against these tests.
"""

import hashlib

import numpy as np
import pytest

from tinyvae import SGD, VAE
from tinyvae.analysis.anomaly import anomaly_scores
from tinyvae.analysis.latent import slerp
from tinyvae.backend import get_backend
from tinyvae.data.download import CHECKSUMS, check_content, download_file
from tinyvae.data.idx import DataError
from tinyvae.nn.gradcheck import check_layer, numerical_gradient, rel_error
from tinyvae.nn.layers import Linear
from tinyvae.nn.params import Parameters

NAME = "t10k-labels-idx1-ubyte"
PAYLOAD = b"the bytes of a file"


# ------------------------------------------------------------------ dataset checksums
def near_misses(digest):
    """MD5 strings equal to ``digest`` except in the first, a middle, or the last hex digit."""
    flip = {c: "0" if c != "0" else "1" for c in "0123456789abcdef"}
    return [flip[digest[0]] + digest[1:], digest[:16] + flip[digest[16]] + digest[17:], digest[:-1] + flip[digest[-1]]]


@pytest.mark.parametrize("which", ["first", "middle", "last"])
def test_a_checksum_that_differs_in_one_hex_digit_is_refused(monkeypatch, which):
    """The whole 32-digit MD5 is compared: a digest wrong in any one place (first, middle, last) is a mismatch."""
    digest = hashlib.md5(PAYLOAD).hexdigest()
    wrong = near_misses(digest)[["first", "middle", "last"].index(which)]
    monkeypatch.setitem(CHECKSUMS["mnist"], NAME, digest)
    check_content(PAYLOAD, "mnist", NAME, "here")                       # the true digest passes
    monkeypatch.setitem(CHECKSUMS["mnist"], NAME, wrong)
    with pytest.raises(DataError, match="does not match the published MNIST checksum"):
        check_content(PAYLOAD, "mnist", NAME, "here")


@pytest.mark.parametrize("which", ["first", "middle", "last"])
def test_a_download_whose_checksum_differs_in_one_hex_digit_is_not_saved(tmp_path, monkeypatch, which):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / f"{NAME}.gz").write_bytes(PAYLOAD)
    digest = hashlib.md5(PAYLOAD).hexdigest()
    monkeypatch.setitem(CHECKSUMS["mnist"], f"{NAME}.gz", near_misses(digest)[["first", "middle", "last"].index(which)])
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(DataError, match="no mirror served it with the published MD5"):
        download_file("mnist", f"{NAME}.gz", dest, [mirror.as_uri()], progress=False)
    assert list(dest.iterdir()) == []
    monkeypatch.setitem(CHECKSUMS["mnist"], f"{NAME}.gz", digest)
    assert download_file("mnist", f"{NAME}.gz", dest, [mirror.as_uri()], progress=False).read_bytes() == PAYLOAD


# ------------------------------------------------------------------ the gradient checker
def test_rel_error_by_hand():
    """max|a − b| / max(|a| + |b|): worked out for three pairs."""
    a = np.array([1.0, -2.0, 4.0])
    assert rel_error(a, a) == 0.0
    assert rel_error(a, -a) == pytest.approx(1.0)                       # a gradient with the wrong sign: 8 / 8
    assert rel_error(a, np.array([1.0, -2.0, 5.0])) == pytest.approx(1.0 / 9.0)
    assert rel_error(np.zeros(2), np.full(2, 1e-9)) == pytest.approx(1e-9 / 1e-8)     # the floor 1e-8


def test_numerical_gradient_by_hand():
    x = np.array([1.0, -2.0, 0.5])
    grad = numerical_gradient(lambda: float(3.0 * x[0] - x[1] ** 2 + x[2] ** 3), x)
    assert np.allclose(grad, [3.0, 4.0, 0.75], atol=1e-8)
    assert np.array_equal(x, [1.0, -2.0, 0.5])                           # x is restored


class NegatedLinear(Linear):
    """A planted bug: the input gradient with the wrong sign."""

    def backward(self, dy):
        return -super().backward(dy)


def test_a_wrong_sign_fails_the_layer_check():
    x = np.random.default_rng(0).standard_normal((5, 3))
    good, bad = Linear(3, 2), NegatedLinear(3, 2)
    for layer in (good, bad):
        Parameters({"fc": layer}, get_backend("cpu"), "float64", seed=0)
    assert max(check_layer(good, x).values()) < 1e-8
    errors = check_layer(bad, x)
    assert errors["x"] == pytest.approx(1.0, abs=1e-6) and errors["W"] < 1e-8


# ------------------------------------------------------------------ slerp
def test_slerp_by_hand_endpoints_unit_norm_and_angles():
    """Unit codes 60° apart: the path starts and ends at them, stays on the unit sphere and turns evenly."""
    z0 = np.array([1.0, 0.0, 0.0])
    z1 = np.array([0.5, np.sqrt(3) / 2, 0.0])                            # Ω = 60°
    t = np.array([0.0, 0.25, 0.5, 1.0])
    path = slerp(z0, z1, t)
    assert np.allclose(path[0], z0) and np.allclose(path[-1], z1)
    assert np.allclose(np.linalg.norm(path, axis=1), 1.0)
    assert np.allclose(path[1], [np.cos(np.pi / 12), np.sin(np.pi / 12), 0.0])     # 15° from z0
    assert np.allclose(path[2], [np.cos(np.pi / 6), np.sin(np.pi / 6), 0.0])       # 30°: the midpoint


def test_slerp_endpoints_of_codes_of_different_lengths():
    z0, z1 = np.array([2.0, 0.0]), np.array([0.0, 0.5])
    path = slerp(z0, z1, np.array([0.0, 1.0]))
    assert np.allclose(path, [z0, z1])


# ------------------------------------------------------------------ anomaly scores
def constant_vae(mu, logvar, logits):
    """A VAE whose weights are all 0: q(z|x) = N(mu, e^logvar) and decoder logits = ``logits`` for every x."""
    model = VAE(input_dim=len(logits), hidden=(3,), latent_dim=len(mu), dtype="float64")
    model.params.data[...] = 0.0
    for name, values in (("encoder.2.b", [*mu, *logvar]), ("decoder.2.b", logits)):
        offset, shape = model.params.layout[name]
        model.params.data[offset:offset + shape[0]] = values
    return model


def test_anomaly_scores_by_hand_on_a_toy_set():
    """With q(z|x) = N(mu, e^lv) and logits l for every image, score "recon" is Σ_d softplus(l_d) − x_d·l_d and
    "elbo" adds KL = ½Σ(mu² + e^lv − 1 − lv), whatever the noise; the usual image scores lowest."""
    mu, logvar, logits = [1.0, -2.0], [0.0, np.log(4.0)], [np.log(9.0), np.log(9.0), -np.log(9.0), -np.log(9.0)]
    model = constant_vae(mu, logvar, logits)
    images = np.array([[255, 255, 0, 0], [0, 0, 255, 255], [255, 0, 0, 0], [255, 255, 255, 255]], dtype=np.uint8)
    # p(x_d = 1) = 0.9, 0.9, 0.1, 0.1: each pixel as expected costs −log 0.9, each other one −log 0.1
    agree = np.array([4, 0, 3, 2])
    recon = -agree * np.log(0.9) - (4 - agree) * np.log(0.1)
    kl = 0.5 * ((1.0 + 1.0 - 1.0 - 0.0) + (4.0 + 4.0 - 1.0 - np.log(4.0)))
    assert np.allclose(anomaly_scores(model, images, 255, "recon"), recon)
    assert np.allclose(anomaly_scores(model, images, 255, "elbo", seed=3), recon + kl)
    assert list(np.argsort(anomaly_scores(model, images, 255, "elbo"))) == [0, 2, 3, 1]


# ------------------------------------------------------------------ SGD
def test_sgd_steps_by_hand():
    """θ ← θ − lr·v with v ← μ·v + g: two steps worked out on paper, without and with momentum."""
    layer = Linear(1, 1)
    params = Parameters({"fc": layer}, get_backend("cpu"), "float64", seed=0)        # θ = (W, b): two numbers
    for momentum, expected in ((0.0, [[0.95, -2.05], [0.93, -2.1]]), (0.5, [[0.95, -2.05], [0.905, -2.125]])):
        params.data[...] = [1.0, -2.0]
        sgd = SGD(params, lr=0.1, momentum=momentum)
        for g, theta in zip(([0.5, 0.5], [0.2, 0.5]), expected, strict=True):
            params.grad[...] = g
            sgd.step()
            assert np.allclose(params.data, theta), (momentum, params.data, theta)
