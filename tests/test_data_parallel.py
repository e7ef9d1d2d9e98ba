"""The data-parallel step (tinyvae/fast/data_parallel.py) equals the model's own loss_and_grads.

Float64, small conv models: the objective, its parts and every gradient agree with one
``loss_and_grads`` on the whole batch to rounding, for equal and unequal shares, more shares than
rows, the conditional VAE's labels, a denoising autoencoder's noise and KL annealing's weight. The
size weighting is shown to matter (a plain mean of the shares' gradients fails the same check),
and the models whose objective couples a batch's examples are shown to need the opt-out they have.
"""

import numpy as np
import pytest
from conftest import run_doc_script

from tinyvae import VAE, Autoencoder
from tinyvae.backend import get_backend
from tinyvae.data.loading import load_dataset
from tinyvae.fast import blas_threads, split_step, usable_cores
from tinyvae.fast.data_parallel import DataParallel, share_bounds
from tinyvae.models.cvae import ConditionalVAE
from tinyvae.models.iwae import IWAE
from tinyvae.models.m2 import M2
from tinyvae.training.trainer import RunConfig, Trainer

SMALL = dict(input_dim=64, hidden=[5], latent_dim=2, arch="conv", image_shape=(1, 8, 8), channels=(2, 3),
             dtype="float64", seed=4)


def batch(n, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((n, 64)) < 0.5).astype(np.float64), rng.standard_normal((n, 2))


def twins(make):
    """Two models with the same weights: one for the reference step, one split over shares."""
    return make(), make()


def agree(reference, split_model, ref_elbo, split_elbo):
    for a, b in zip(ref_elbo, split_elbo, strict=True):
        assert float(b) == pytest.approx(float(a), rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(split_model.params.grad, reference.params.grad, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("n, workers", [(6, 2), (7, 2), (7, 3), (2, 3), (13, 4)])
def test_the_split_step_equals_the_whole_batch_step(n, workers):
    reference, model = twins(lambda: VAE(**SMALL))
    x, eps = batch(n)
    split = DataParallel(model, workers)
    agree(reference, model, reference.loss_and_grads(x, eps), split.loss_and_grads(x, eps))
    assert np.abs(reference.params.grad).max() > 0.1                   # a real gradient, not zeros


def test_the_replicas_read_the_models_weights_and_keep_their_own_gradients():
    model = VAE(**SMALL)
    split = DataParallel(model, 3)
    for replica in split.replicas[1:]:
        assert replica.params.data is model.params.data
        assert replica.params.grad is not model.params.grad
    model.params.data[...] += 0.25                                     # an optimizer step, seen by every replica
    reference = VAE(**SMALL)
    reference.params.data[...] += 0.25
    x, eps = batch(9)
    agree(reference, model, reference.loss_and_grads(x, eps), split.loss_and_grads(x, eps))


def test_the_conditional_vaes_labels_are_cut_with_their_rows():
    reference, model = twins(lambda: ConditionalVAE(**SMALL, n_classes=3))
    x, eps = batch(7)
    labels = np.array([0, 2, 1, 1, 0, 2, 2])
    split = DataParallel(model, 2)
    agree(reference, model, reference.loss_and_grads(x, eps, labels=labels),
          split.loss_and_grads(x, eps, labels=labels))


@pytest.mark.parametrize("options", [dict(noise="gaussian"), dict(noise="masking", noise_level=0.4),
                                     dict(sparsity="l1", sparsity_weight=0.3)])
def test_the_autoencoders_noise_is_cut_with_its_rows(options):
    reference, model = twins(lambda: Autoencoder(**SMALL, **options))
    x, _ = batch(7)
    noise = reference.draw_noise(np.random.default_rng(3), 7)
    split = DataParallel(model, 3)
    agree(reference, model, reference.loss_and_grads(x, noise), split.loss_and_grads(x, noise))


def test_kl_annealings_weight_reaches_every_replica():
    reference, model = twins(lambda: VAE(**SMALL))
    reference.kl_weight = model.kl_weight = 0.3
    x, eps = batch(8)
    split = DataParallel(model, 2)
    agree(reference, model, reference.loss_and_grads(x, eps), split.loss_and_grads(x, eps))


def test_the_batch_gradient_is_the_size_weighted_mean_of_the_shares():
    """The identity the split rests on, ∇L = Σ_i (N_i/N)·∇L_i, with each share's gradient from a
    model of its own; and the planted bug, a plain mean of the shares' gradients, which unequal
    shares (7 rows: 4 and 3) must expose."""
    reference = VAE(**SMALL)
    x, eps = batch(7)
    reference.loss_and_grads(x, eps)
    shares = []
    for start, stop in share_bounds(7, 2):
        share = VAE(**SMALL)
        share.loss_and_grads(x[start:stop], eps[start:stop])
        shares.append(((stop - start) / 7, share.params.grad))
    weighted = sum(w * g for w, g in shares)
    np.testing.assert_allclose(weighted, reference.params.grad, rtol=1e-10, atol=1e-13)
    unweighted = sum(g for _, g in shares) / 2
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(unweighted, reference.params.grad, rtol=1e-10, atol=1e-13)


def test_share_bounds_cover_the_batch_once():
    for n in range(1, 40):
        for shares in range(1, 6):
            bounds = share_bounds(n, shares)
            assert bounds[0][0] == 0 and bounds[-1][1] == n
            assert all(stop > start for start, stop in bounds)
            assert all(a[1] == b[0] for a, b in zip(bounds[:-1], bounds[1:], strict=True))
            assert len(bounds) == min(n, shares)


@pytest.mark.parametrize("make", [
    lambda: VAE(**SMALL, free_bits=0.007),     # λ between the two halves' KL_2 (0.0072, 0.0066)
    lambda: Autoencoder(**SMALL, sparsity="kl", sparsity_target=0.2),
])
def test_objectives_that_couple_the_batch_are_not_split(make):
    """Free bits' KL_j and the KL sparsity penalty's ρ̂ are batch means: split, the gradient would
    change (shown), so these models say no and the step is never split for them."""
    model = make()
    assert not model.splits_over_examples()
    assert split_step(model, 1024, cores=2) is None
    with pytest.raises(ValueError, match="does not split"):
        DataParallel(model, 2)
    x, eps = batch(8)
    noise = eps if isinstance(model, VAE) else None
    whole = make()
    whole.loss_and_grads(x, noise)
    halves = [make(), make()]
    halves[0].loss_and_grads(x[:4], None if noise is None else noise[:4])
    halves[1].loss_and_grads(x[4:], None if noise is None else noise[4:])
    mean = (halves[0].params.grad + halves[1].params.grad) / 2
    assert not np.allclose(mean, whole.params.grad, rtol=1e-6)


def test_iwae_and_m2_are_not_split():
    """Their noise is k-major or class-major (not one row per example): they opt out."""
    assert not IWAE(**SMALL, k=3).splits_over_examples()
    m2 = M2(input_dim=64, hidden=[5], latent_dim=2, dtype="float64", n_classes=3)
    assert not m2.splits_over_examples()


def test_which_models_and_machines_get_the_split_step():
    conv = VAE(**SMALL)                                                  # 8×8 images: 64 numbers a row
    assert isinstance(split_step(conv, 1024, cores=2), DataParallel)
    assert split_step(conv, 1024, cores=2).workers == 2
    assert split_step(conv, 1024, cores=8).workers == 4                # at least 16,384 numbers a share
    assert split_step(conv, 1024, cores=1) is None                     # one core: the model's own step
    assert split_step(conv, 128, cores=2) is None                      # too small a step: digits at 128
    fashion = VAE(input_dim=784, hidden=[], latent_dim=2, arch="conv", image_shape=(1, 28, 28), channels=(2, 3))
    assert split_step(fashion, 128, cores=8).workers == 4              # at least 32 rows a share
    assert split_step(fashion, 48, cores=2) is None
    dense = VAE(input_dim=64, hidden=[5], latent_dim=2, dtype="float64")
    assert split_step(dense, 1024, cores=2) is None                    # dense: BLAS's threads do better
    assert 1 <= usable_cores()


def test_the_trainer_splits_a_conv_step_and_trains_as_the_whole_batch_does(tmp_path, monkeypatch):
    """Two epochs of a conv VAE on digits: split over 2 shares and not split, the same losses to
    float32 rounding (the runs differ only in how the gradients' sums are grouped)."""
    import tinyvae.fast
    import tinyvae.training.trainer as trainer_module

    monkeypatch.setattr(tinyvae.fast, "MIN_SHARE_PIXELS", 1)          # split even the digits' small steps
    monkeypatch.setattr(trainer_module, "usable_cores", lambda: 2)     # (the tests' BLAS has one thread)

    digits = load_dataset("digits")
    config = RunConfig(dataset="digits", epochs=2, batch_size=64, arch="conv", hidden=[8], channels=[4, 8],
                       latent_dim=3)
    histories = {}
    for cores in (2, 1):
        monkeypatch.setattr(trainer_module, "split_step",
                            lambda model, batch_size, cores=cores: split_step(model, batch_size, cores=cores))
        trainer = Trainer(config, digits, get_backend("cpu"), tmp_path / str(cores), progress=False,
                          log=lambda line: None)
        assert (trainer.parallel is not None) == (cores == 2)
        assert trainer.blas_threads() == 1
        seen: set[int] = set()

        def evaluate(evaluate=trainer.evaluate, seen=seen):
            seen.add(blas_threads())
            return evaluate()

        trainer.evaluate = evaluate
        assert trainer.fit() == "done"
        assert seen == {2 if cores == 2 else 1}                          # a split run evaluates with BLAS's threads
        histories[cores] = [row["test_loss"] for row in trainer.history]
    np.testing.assert_allclose(histories[2], histories[1], rtol=1e-4)


def test_the_step_script_runs(tmp_path):
    """docs/scripts/data_parallel_step.py, whose figures in docs/benchmarks.md decided which models split."""
    result = run_doc_script("data_parallel_step.py", "--repeats", "1", "--rounds", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-1500:]
    assert "2 shares on 2 threads" in result.stdout and "conv 32-64-20" in result.stdout


def test_a_split_run_interrupted_and_resumed_is_bitwise_identical(tmp_path, monkeypatch):
    """The split keeps the CPU's resume contract (docs/cli.md): same machine, same shares, same bits."""
    import tinyvae.fast
    import tinyvae.training.trainer as trainer_module
    from tinyvae.training.checkpoint import load_checkpoint

    monkeypatch.setattr(tinyvae.fast, "MIN_SHARE_PIXELS", 1)
    monkeypatch.setattr(trainer_module, "split_step",
                        lambda model, batch_size: split_step(model, batch_size, cores=2))
    digits = load_dataset("digits")
    config = RunConfig(dataset="digits", epochs=2, batch_size=64, arch="conv", hidden=[8], channels=[4, 8],
                       latent_dim=3)

    def trainer(out):
        return Trainer(config, digits, get_backend("cpu"), out, progress=False, log=lambda line: None)

    straight = trainer(tmp_path / "a")
    assert straight.parallel is not None and straight.fit() == "done"
    first = trainer(tmp_path / "b")
    assert first.fit(on_step=lambda epoch, step: (epoch, step) == (2, 5) and first.request_stop()) == "interrupted"
    second = trainer(tmp_path / "b")
    second.restore(load_checkpoint(tmp_path / "b"))
    assert second.fit() == "done"
    assert np.array_equal(second.model.params.data, straight.model.params.data)


def test_a_dropped_split_step_stops_its_worker_threads():
    """A trainer that is dropped (a notebook building one per cell) does not leave its share threads idling:
    the pool's threads end once nothing refers to the split step (concurrent.futures sees to it)."""
    import gc
    import threading

    def share_threads() -> set:
        return {t for t in threading.enumerate() if t.name.startswith("tinyvae-share")}

    before = share_threads()
    split = DataParallel(VAE(**SMALL), 2)
    split.loss_and_grads(*batch(4))                             # the pool starts its thread on the first share
    (worker,) = share_threads() - before
    del split
    gc.collect()
    worker.join(timeout=5)
    assert not worker.is_alive()
