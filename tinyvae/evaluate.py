"""``python -m tinyvae.evaluate``: score a trained VAE on its test set: a table, eval.json and figures.

    python -m tinyvae.evaluate runs/digits                          # offline, seconds
    python -m tinyvae.evaluate runs/mnist --device gpu              # k = 5000, as Burda et al.

It reports, on the test images as the model saw them in training (same scaling or binarization):
the negative ELBO = reconstruction + KL, the BCE and per-pixel MSE of the reconstruction;
−L_k, the importance-weighted bound on −log p(x); KL per latent dimension and active units;
a linear probe's accuracy on the latent means; and, in the feature space of a small tinyvae
classifier, the Fréchet distance between test images and samples, with that classifier's label
entropies. The maths is in tinyvae.analysis.metrics; what the numbers mean, in docs/evaluation.md.
For the semi-supervised M2 it reports the test classification error of its q(y|x) instead.
This module only parses flags, loads, calls the metrics and reports.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from tinyvae import __version__
from tinyvae.analysis import metrics, viz
from tinyvae.backend import BACKEND_NAMES, BackendError, get_backend
from tinyvae.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, parser, positive_int, seed_value, unwritable
from tinyvae.data.loading import DATASETS, DataError, Dataset, load_dataset, test_pixels, to_float, train_pixels
from tinyvae.models.classifier import Classifier
from tinyvae.training.checkpoint import CheckpointError, build_model, load_checkpoint
from tinyvae.training.fileio import write_json
from tinyvae.training.trainer import EVAL_BATCH, classification_error

FEATURE_HIDDEN = (256, 64)     # the feature extractor: D-256-64-10, features are the 64 activations
PROBE_LR, CLASSIFIER_LR = 1e-2, 1e-3


def build_parser() -> argparse.ArgumentParser:
    p = parser("python -m tinyvae.evaluate", __doc__.split("\n\n")[0])
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a run folder or its checkpoint.npz")
    p.add_argument("--dataset", choices=DATASETS, help="dataset to evaluate on (default: the run's)")
    p.add_argument("--data-dir", metavar="DIR",
                   help="folder holding the dataset files (else $TINYVAE_DATA, the cache, a download)")
    p.add_argument("--iwae-k", metavar="K", type=positive_int, default=5000,
                   help="importance samples per test image for L_k (default %(default)s, as Burda et al.; "
                        "100 is a quick look)")
    p.add_argument("--device", choices=BACKEND_NAMES, default="cpu", help="where to compute (default %(default)s)")
    p.add_argument("--out", metavar="DIR", help="folder for eval.json and eval_*.png (default: the checkpoint's; "
                                                "if that is read-only, the report is printed only)")
    p.add_argument("--probe-epochs", metavar="N", type=positive_int, default=20,
                   help="epochs of the linear probe (default %(default)s)")
    p.add_argument("--classifier-epochs", metavar="N", type=positive_int, default=5,
                   help="epochs of the feature classifier (default %(default)s)")
    p.add_argument("--samples", metavar="N", type=positive_int,
                   help="model samples for the Fréchet distance (default: one per test image)")
    p.add_argument("--seed", metavar="S", type=seed_value,
                   help="seed for noise, samples and classifiers, ≥ 0 (default: the run's)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def as_floats(model: Any, images: np.ndarray, max_value: int) -> Any:
    """uint8 images (N, D) → floats (N, D) of the model's dtype on its device."""
    return to_float(model.backend.asarray(images), max_value, model.dtype)


def score_test_set(model: Any, test: np.ndarray, max_value: int, seed: int) -> tuple[dict, np.ndarray, np.ndarray]:
    """Mean negative ELBO, its parts and the reconstruction errors; and mu, logvar (N, J) on the host.

    The noise is the trainer's evaluation noise (generator [seed, 2], batches of EVAL_BATCH), so
    the negative ELBO equals the last test loss in history.jsonl.
    """
    xp, noise = model.xp, model.backend.rng([seed, 2])
    totals, mus, logvars = xp.zeros(4, dtype=np.float64), [], []
    for start in range(0, len(test), EVAL_BATCH):
        x = as_floats(model, test[start:start + EVAL_BATCH], max_value)
        s = metrics.elbo_parts(model, x, model.draw_noise(noise, x.shape[0]))
        totals += xp.stack([s.recon.sum(dtype=np.float64), s.kl.sum(dtype=np.float64), s.bce.sum(), s.mse.sum()])
        mus.append(model.backend.to_numpy(s.mu))
        logvars.append(model.backend.to_numpy(s.logvar))
    recon, kl, bce, mse = (model.backend.to_numpy(totals) / len(test)).tolist()
    parts = {"neg_elbo": recon + kl, "recon": recon, "kl": kl, "bce": bce, "mse_per_pixel": mse}
    return parts, np.concatenate(mus), np.concatenate(logvars)


def iwae_on_test_set(model: Any, test: np.ndarray, max_value: int, k: int, seed: int,
                     progress: bool | None) -> np.ndarray:
    """L_k of every test image, (N,) float64 on the host; images go in batches of ≤ MAX_ROWS // k."""
    rng, batch = model.backend.rng([seed, 4]), int(np.clip(metrics.MAX_ROWS // k, 1, EVAL_BATCH))
    values = []
    with tqdm(total=len(test), desc=f"L_{k}", unit="image", leave=False, file=sys.stderr,
              disable=None if progress is None else not progress) as bar:
        for start in range(0, len(test), batch):
            x = as_floats(model, test[start:start + batch], max_value)
            values.append(model.backend.to_numpy(metrics.iwae_bound(model, x, k, rng)))
            bar.update(x.shape[0])
    return np.concatenate(values)


def encode_means(model: Any, images: np.ndarray, max_value: int) -> np.ndarray:
    """Posterior means (N, J) on the host."""
    means = [model.encode(as_floats(model, images[i:i + EVAL_BATCH], max_value))[0]
             for i in range(0, len(images), EVAL_BATCH)]
    return np.concatenate([model.backend.to_numpy(mu) for mu in means])


def draw_samples(model: Any, n: int, binary: bool, seed: int) -> Any:
    """n images from the model (n, D) on the device: decoder means of z ~ N(0, I), or, when the
    model was trained on binary images, one Bernoulli draw from them (like the data it saw)."""
    rng = model.backend.rng([seed, 5])
    out = []
    for start in range(0, n, EVAL_BATCH):
        p = model.sample(min(EVAL_BATCH, n - start), rng)
        out.append((rng.random(p.shape, dtype=model.dtype) < p).astype(model.dtype) if binary else p)
    return model.xp.concatenate(out)


def linear_probe(model: Any, train_mu: np.ndarray, train_labels: np.ndarray, test_mu: np.ndarray,
                 test_labels: np.ndarray, epochs: int, seed: int, progress: bool | None) -> dict[str, Any]:
    """Softmax regression from latent means (N, J) to labels, fitted on the training split."""
    probe = Classifier(model.latent_dim, hidden=(), backend=model.backend, seed=seed)
    probe.fit(train_mu, train_labels, epochs, lr=PROBE_LR, seed=seed, progress=progress, desc="probe")
    return {"test_accuracy": probe.accuracy(test_mu, test_labels),
            "train_accuracy": probe.accuracy(train_mu, train_labels), "epochs": epochs}


def sample_quality(model: Any, dataset: Dataset, x_train: Any, x_test: Any, samples: Any, epochs: int, seed: int,
                   progress: bool | None) -> dict[str, Any]:
    """Fréchet distances and label entropies in the features of a classifier trained on x_train (N, D).

    Test images are compared with the samples, and, for scale, with as many training images:
    the distance between two sets of real images, which no model can be expected to beat.
    """
    extractor = Classifier(dataset.input_dim, hidden=FEATURE_HIDDEN, backend=model.backend, seed=seed)
    extractor.fit(x_train, dataset.train_labels, epochs, lr=CLASSIFIER_LR, seed=seed, progress=progress,
                  desc="feature classifier")
    floor = np.random.default_rng([seed, 6]).choice(len(x_train), size=min(len(x_test), len(x_train)),
                                                    replace=False)
    stats = {name: metrics.gaussian_statistics(extractor.features(x))
             for name, x in (("test", x_test), ("samples", samples), ("train", x_train[model.backend.asarray(floor)]))}
    h_samples, marginal_samples = metrics.label_entropy(extractor.predict_proba(samples))
    h_test, marginal_test = metrics.label_entropy(extractor.predict_proba(x_test))
    return {"frechet_distance": metrics.frechet_distance(*stats["test"], *stats["samples"]),
            "frechet_distance_train_vs_test": metrics.frechet_distance(*stats["test"], *stats["train"]),
            "samples": int(samples.shape[0]),
            "classifier_test_accuracy": extractor.accuracy(x_test, dataset.test_labels),
            "label_entropy_samples": h_samples, "marginal_entropy_samples": marginal_samples,
            "label_entropy_test": h_test, "marginal_entropy_test": marginal_test,
            "feature_extractor": f"{extractor}; features: the {FEATURE_HIDDEN[-1]} activations of its last hidden "
                                 f"layer; {epochs} epochs"}


def evaluate(model: Any, dataset: Dataset, run: dict[str, Any], seed: int, iwae_k: int, probe_epochs: int = 20,
             classifier_epochs: int = 5, n_samples: int | None = None,
             progress: bool | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every number of the report (JSON-friendly) and the host arrays the figures need.

    ``run`` is the training run's config (its "binarize" and "seed" fix the images, as in
    training); ``seed`` drives everything the evaluation draws: noise, samples, classifiers.
    """
    seconds: dict[str, float] = {}
    tic = time.perf_counter()
    binarize = run.get("binarize", "none")
    run_seed = int(run.get("seed", model.seed))
    train, train_max = train_pixels(dataset, binarize, run_seed)
    test, test_max = test_pixels(dataset, binarize, run_seed)
    elbo, mu, logvar = score_test_set(model, test, test_max, seed)
    kl_dims = metrics.kl_per_dimension(mu, logvar)
    activity, active = metrics.active_units(mu)
    seconds["elbo_and_latents"] = time.perf_counter() - tic

    tic = time.perf_counter()
    lk = iwae_on_test_set(model, test, test_max, iwae_k, seed, progress)
    iwae = {"k": iwae_k, "L_k": float(lk.mean()), "neg_L_k": float(-lk.mean()),
            "standard_error": float(lk.std(ddof=1) / np.sqrt(len(lk))) if len(lk) > 1 else 0.0}
    seconds["iwae"] = time.perf_counter() - tic

    tic = time.perf_counter()
    probe = linear_probe(model, encode_means(model, train, train_max), dataset.train_labels, mu,
                         dataset.test_labels, probe_epochs, seed, progress)
    seconds["probe"] = time.perf_counter() - tic

    tic = time.perf_counter()
    x_test = as_floats(model, test, test_max)
    samples = draw_samples(model, n_samples or len(test), binarize != "none", seed)
    quality = sample_quality(model, dataset, as_floats(model, train, train_max), x_test, samples,
                             classifier_epochs, seed, progress)
    seconds["sample_quality"] = time.perf_counter() - tic

    report = {"dataset": dataset.name, "test_images": len(test), "binarize": binarize, "seed": seed,
              "elbo": elbo, "iwae": iwae, "probe": probe, "sample_quality": quality,
              "latent": {"kl_per_dimension": kl_dims.tolist(), "activity": activity.tolist(),
                         "active_units": int(active.sum()), "inactive": np.flatnonzero(~active).tolist(),
                         "threshold": metrics.ACTIVITY_THRESHOLD},
              "seconds": {name: round(value, 3) for name, value in seconds.items()}}
    to_numpy = model.backend.to_numpy
    arrays = {"x": to_numpy(x_test[:32]), "recon": to_numpy(model.reconstruct(x_test[:32])),
              "samples": to_numpy(samples[:64]), "mu": mu, "labels": dataset.test_labels,
              "kl": kl_dims, "activity": activity}
    return report, arrays


def interpolations(model: Any, x: Any, pairs: int = 8, steps: int = 10) -> np.ndarray:
    """(pairs·(steps + 2), D) host images: test image a, decode((1 − t)·mu_a + t·mu_b) for t ∈ [0, 1], image b."""
    xp, pairs = model.xp, min(pairs, x.shape[0] // 2)
    mu_a, mu_b = model.encode(x[:pairs])[0], model.encode(x[pairs:2 * pairs])[0]          # (P, J) each
    t = xp.linspace(0.0, 1.0, steps, dtype=model.dtype)[None, :, None]                  # (1, steps, 1)
    z = (1.0 - t) * mu_a[:, None, :] + t * mu_b[:, None, :]                             # (P, steps, J)
    path = model.decode(z.reshape(-1, model.latent_dim)).reshape(pairs, steps, -1)
    rows = xp.concatenate([x[:pairs, None, :], path, x[pairs:2 * pairs, None, :]], axis=1)
    return model.backend.to_numpy(rows.reshape(pairs * (steps + 2), -1))


def write_figures(model: Any, dataset: Dataset, arrays: dict[str, Any], out: Path) -> list[str]:
    """eval_*.png in ``out``; returns their names."""
    shape, names = dataset.image_shape, []

    def path(name: str) -> Path:
        names.append(f"eval_{name}.png")
        return out / names[-1]

    viz.plot_reconstructions(arrays["x"], arrays["recon"], shape, path("reconstructions"))
    viz.plot_images(arrays["samples"], shape, path("samples"), "64 samples, z ~ N(0, I)")
    x = model.backend.asarray(arrays["x"])
    viz.plot_images(interpolations(model, x), shape, path("interpolation"),
                    "test image, decoded path between latent means, test image", ncols=12)
    viz.plot_kl_per_dimension(arrays["kl"], arrays["activity"], metrics.ACTIVITY_THRESHOLD, path("kl_per_dimension"))
    mu, labels = arrays["mu"][:5000], arrays["labels"][:5000]
    if model.latent_dim > 2:
        points, ratio = metrics.pca_2d(mu)
        title = f"latent means of test images, first two principal axes ({100 * ratio.sum():.0f}% of variance)"
    else:
        points, title = np.column_stack([mu, np.zeros(len(mu))])[:, :2], "latent means of test images"
    viz.plot_latent_scatter(points, labels, path("latent"), dataset.class_names, title)
    if model.latent_dim == 2:
        viz.plot_manifold(lambda z: model.backend.to_numpy(model.decode(model.backend.asarray(z))), shape,
                          path("manifold"))
    return names


def format_table(report: dict[str, Any]) -> str:
    """The report as a few aligned lines for the terminal."""
    e, w, p, q, lat = (report[k] for k in ("elbo", "iwae", "probe", "sample_quality", "latent"))
    inactive = ", ".join(map(str, lat["inactive"])) or "none"
    rows = [
        ("negative ELBO", f"{e['neg_elbo']:.2f} nats", f"reconstruction {e['recon']:.2f} + KL {e['kl']:.2f}"),
        (f"−L_{w['k']} (IWAE)", f"{w['neg_L_k']:.2f} nats", f"± {w['standard_error']:.2f}; upper bound on −log p(x)"),
        ("reconstruction BCE", f"{e['bce']:.2f} nats", "at the posterior mean, summed over pixels"),
        ("reconstruction MSE", f"{e['mse_per_pixel']:.4f}", "per pixel, at the posterior mean"),
        ("active units", f"{lat['active_units']} / {len(lat['activity'])}", f"inactive: {inactive}"),
        ("linear probe accuracy", f"{100 * p['test_accuracy']:.1f}%", f"train {100 * p['train_accuracy']:.1f}%"),
        ("Fréchet distance", f"{q['frechet_distance']:.2f}",
         f"train vs test images: {q['frechet_distance_train_vs_test']:.2f} (tinyvae features only)"),
        ("label entropy, samples", f"{q['label_entropy_samples']:.3f} nats",
         f"test images {q['label_entropy_test']:.3f}; classifier accuracy {100 * q['classifier_test_accuracy']:.1f}%"),
    ]
    head = f"{report['dataset']} test set, {report['test_images']:,} images ({report['binarize']} binarization)"
    return "\n".join([head, *(f"  {a:<24}{b:>14}   {c}" for a, b, c in rows)])


def classifier_report(model: Any, dataset: Dataset, run: dict[str, Any], path: Path, out: Path | None,
                      backend: Any) -> int:
    """M2: the test classification error of q(y|x), printed and written to eval.json."""
    test, test_max = test_pixels(dataset, run.get("binarize", "none"), int(run.get("seed", model.seed)))
    error = classification_error(model, backend.asarray(test), backend.asarray(dataset.test_labels), test_max)
    report = {"dataset": dataset.name, "test_images": len(test), "test_error": error,
              "labels": run.get("labels"), "checkpoint": str(path), "model": model.config(), "device": str(backend),
              "tinyvae": __version__}
    print(f"{dataset.name} test set, {len(test):,} images: classification error of q(y|x) {100 * error:.2f}% "
          f"({run.get('labels')} labelled training examples)")
    if out is not None:
        try:
            write_json(out / "eval.json", report)
        except OSError as err:
            print(f"error: could not write the results in {out} ({err.strerror or err}).", file=sys.stderr)
            return EXIT_FAILED
        print(f"eval.json in {out}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def fail(message: Any, status: int) -> int:
        print(f"error: {message}", file=sys.stderr)
        return status

    try:
        backend = get_backend(args.device, verbose=True)
        checkpoint = load_checkpoint(args.checkpoint)
        model = build_model(checkpoint, backend)
    except (BackendError, CheckpointError) as err:
        return fail(err, EXIT_USAGE)
    semi_supervised = getattr(model, "semi_supervised", False)
    if (model.conditional and not semi_supervised) or not model.generative:
        kind = "a conditional VAE" if model.conditional else "an autoencoder (no prior, no ELBO)"
        other = ("tinyvae.models.cvae.label_accuracy and python -m tinyvae.analysis.latent" if model.conditional
                 else "python -m tinyvae.analysis.latent and python -m tinyvae.analysis.anomaly --score recon")
        return fail(f"{checkpoint.path} holds {kind}; python -m tinyvae.evaluate scores unconditional VAEs — "
                    f"see {other} (docs/family.md).", EXIT_USAGE)
    run = checkpoint.state.get("run", {})
    name = args.dataset or run.get("dataset") or checkpoint.state.get("dataset")
    if name is None:
        return fail(f"{checkpoint.path} does not record its dataset; pass --dataset.", EXIT_USAGE)
    try:
        dataset = load_dataset(name, args.data_dir, progress=not args.no_progress)
    except DataError as err:
        return fail(err, EXIT_FAILED)
    if model.input_dim != dataset.input_dim:
        return fail(f"{checkpoint.path} holds a model of {model.input_dim}-pixel images, but {name} has "
                    f"{dataset.input_dim}-pixel images; pass the --dataset it was trained on.", EXIT_USAGE)
    seed = args.seed if args.seed is not None else int(run.get("seed", model.seed))
    out: Path | None = Path(args.out) if args.out else checkpoint.path.parent
    problem = unwritable(out)
    if problem is not None and args.out:
        return fail(f"--out: {problem}; choose a folder you can write.", EXIT_USAGE)
    if problem is not None:
        print(f"note: {problem}, so eval.json and the figures will not be saved (pass --out DIR to save them)")
        out = None
    if semi_supervised:
        return classifier_report(model, dataset, run, checkpoint.path, out, backend)
    print(f"tinyvae: evaluating {model} from {checkpoint.path} on {dataset}; device {backend}; "
          f"L_k with k = {args.iwae_k}", flush=True)
    tic = time.perf_counter()
    report, arrays = evaluate(model, dataset, run, seed, args.iwae_k, args.probe_epochs, args.classifier_epochs,
                              args.samples, False if args.no_progress else None)
    report["seconds"]["total"] = round(time.perf_counter() - tic, 3)
    report.update(checkpoint=str(checkpoint.path), model=model.config(), device=str(backend), tinyvae=__version__)
    print(format_table(report))
    if out is None:
        print(f"done in {report['seconds']['total']:.1f} s (nothing saved)")
        return EXIT_OK
    try:
        report["figures"] = write_figures(model, dataset, arrays, out)
        write_json(out / "eval.json", report)
    except OSError as err:
        return fail(f"could not write the results in {out} ({err.strerror or err}).", EXIT_FAILED)
    print(f"done in {report['seconds']['total']:.1f} s: eval.json and {len(report['figures'])} figures in {out}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
