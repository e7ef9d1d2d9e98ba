"""Anomaly detection with a trained model: score test images, measure the ROC-AUC, from scratch.

    python -m tinyvae.train --dataset digits --exclude-classes 7 --epochs 100 --out runs/no7
    python -m tinyvae.analysis.anomaly runs/no7 --anomaly-classes 7          # prints the AUC, writes a histogram

Train on the normal classes only; a model that never saw class k should explain its images
badly, so a large score flags an anomaly::

    score "elbo":   −ELBO(x) = −log p(x|z) + KL(q(z|x) ‖ p(z)),  z = mu + σ·eps, fixed eps (VAE only)
    score "recon":  −log p(x | z = mu), the reconstruction NLL at the posterior mean or code (any model)

ROC-AUC. With n₊ anomalies and n₋ normal examples, the AUC is the probability that a random
anomaly scores above a random normal example, ties counting one half. That is the
Mann–Whitney U statistic divided by n₊·n₋, computed from ranks::

    rank all n₊ + n₋ scores in ascending order (1 = smallest); tied scores share their average rank
    R₊  = the sum of the anomalies' ranks
    U   = R₊ − n₊(n₊ + 1)/2           (the pairs (anomaly, normal) with the anomaly higher, ties ½)
    AUC = U / (n₊ · n₋)

0.5 is chance, 1 a perfect separation. One sort: O(n log n) rather than O(n₊·n₋) pairs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from tinyvae import __version__
from tinyvae.analysis import viz
from tinyvae.backend import BACKEND_NAMES, BackendError
from tinyvae.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, class_index, parser, seed_value, unwritable
from tinyvae.data.loading import DataError, to_float
from tinyvae.training.checkpoint import CheckpointError
from tinyvae.training.fileio import write_json
from tinyvae.training.runs import open_run

SCORES = ("elbo", "recon")
BATCH = 1000


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of values (n,) in ascending order, each group of ties given its average rank."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    sorted_values = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])   # first index of each run
    stops = np.r_[starts[1:], len(values)]
    for start, stop in zip(starts, stops, strict=True):
        if stop - start > 1:
            ranks[order[start:stop]] = (start + 1 + stop) / 2.0              # mean of ranks start+1..stop
    return ranks


def roc_auc(scores: np.ndarray, is_anomaly: np.ndarray) -> float:
    """The area under the ROC curve of ``scores`` (n,) for the positives ``is_anomaly`` (n,) bool,
    as the Mann–Whitney U statistic over n₊·n₋ (ties count one half; see the module docstring)."""
    scores, positive = np.asarray(scores, dtype=np.float64), np.asarray(is_anomaly, dtype=bool)
    if scores.shape != positive.shape or scores.ndim != 1:
        raise ValueError(f"need scores and labels of the same shape (n,), got {scores.shape} and {positive.shape}")
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"the ROC-AUC needs both anomalies and normal examples, got {n_pos} and {n_neg}")
    if not np.all(np.isfinite(scores)):
        raise ValueError("the scores contain NaN or infinite values")
    u = average_ranks(scores)[positive].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def anomaly_scores(model: Any, images: np.ndarray, max_value: int, score: str = "elbo", seed: int = 0) -> np.ndarray:
    """One score per image (N,) float64 on the host: higher means more anomalous (module docstring).

    images: uint8 (N, D) as the model saw them in training. The "elbo" noise comes from the
    generator [seed, 7], so the same call gives the same scores.
    """
    if score not in SCORES:
        raise ValueError(f"unknown score {score!r}: choose one of {', '.join(SCORES)}")
    if model.conditional:
        raise ValueError("anomaly scores need an unconditional model: a conditional VAE would need the "
                         "label of the very images it is asked to judge")
    if score == "elbo" and not model.generative:
        raise ValueError(f"a {type(model).__name__} has no ELBO; score it with 'recon'")
    rng, scores = model.backend.rng([seed, 7]), []
    for start in range(0, len(images), BATCH):
        x = to_float(model.backend.asarray(images[start:start + BATCH]), max_value, model.dtype)
        if score == "elbo":
            recon, kl = model.forward(x, model.draw_noise(rng, x.shape[0]), check_finite=False)
            value = recon.astype(np.float64) + kl.astype(np.float64)
        else:
            value = model.nll_given_z(x, model.encode(x)[0]).astype(np.float64)
        scores.append(model.backend.to_numpy(value))
    return np.concatenate(scores)


def detect(model: Any, images: np.ndarray, labels: np.ndarray, max_value: int, anomaly_classes: list[int],
           score: str = "elbo", seed: int = 0) -> dict[str, Any]:
    """Score every image, call the classes ``anomaly_classes`` anomalous, and measure the ROC-AUC."""
    is_anomaly = np.isin(labels, anomaly_classes)
    scores = anomaly_scores(model, images, max_value, score, seed)
    return {"auc": roc_auc(scores, is_anomaly), "score": score, "anomaly_classes": sorted(anomaly_classes),
            "anomalies": int(is_anomaly.sum()), "normal": int((~is_anomaly).sum()),
            "mean_score_normal": float(scores[~is_anomaly].mean()),
            "mean_score_anomalous": float(scores[is_anomaly].mean()),
            "scores": scores, "is_anomaly": is_anomaly}


def build_parser() -> argparse.ArgumentParser:
    p = parser("python -m tinyvae.analysis.anomaly", __doc__.split("\n\n")[0])
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a run folder or its checkpoint.npz")
    p.add_argument("--anomaly-classes", type=class_index, nargs="+", required=True, metavar="K",
                   help="the test classes that count as anomalies (train without them: --exclude-classes)")
    p.add_argument("--score", choices=SCORES, default="elbo",
                   help="negative ELBO (VAE) or reconstruction NLL (default elbo)")
    p.add_argument("--device", choices=BACKEND_NAMES, default="cpu", help="where to compute (default cpu)")
    p.add_argument("--data-dir", help="folder holding the dataset files (else $TINYVAE_DATA, the cache, a download)")
    p.add_argument("--out", help="folder for anomaly.json and anomaly_scores.png (default: the checkpoint's; "
                                "if that is read-only, the results are printed only)")
    p.add_argument("--seed", type=seed_value, default=0, help="seed of the noise of the 'elbo' score, ≥ 0 (default 0)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        model, checkpoint, dataset, test, test_max, run = open_run(args.checkpoint, args.device, args.data_dir)
        result = detect(model, test, dataset.test_labels, test_max, args.anomaly_classes, args.score, args.seed)
    except (BackendError, CheckpointError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILED
    seen = sorted(set(args.anomaly_classes) - set(run.get("exclude_classes", [])))
    if seen:
        print(f"note: the model was trained on class(es) {', '.join(map(str, seen))}: they are not new to it")
    out = Path(args.out) if args.out else checkpoint.path.parent
    problem = unwritable(out)
    if problem is not None and args.out:
        print(f"error: --out: {problem}; choose a folder you can write.", file=sys.stderr)
        return EXIT_USAGE
    scores, is_anomaly = result.pop("scores"), result.pop("is_anomaly")
    names = ", ".join(dataset.class_names[k] for k in result["anomaly_classes"])
    print(f"{dataset.name} test set: {result['anomalies']} anomalies (class {names}) among "
          f"{result['anomalies'] + result['normal']} images; score {args.score}: mean "
          f"{result['mean_score_normal']:.2f} normal, {result['mean_score_anomalous']:.2f} anomalous")
    if problem is not None:
        print(f"ROC-AUC {result['auc']:.4f}; note: {problem}, so anomaly.json and anomaly_scores.png were not "
              f"saved (pass --out DIR to save them)")
        return EXIT_OK
    try:
        viz.plot_score_histogram(scores[~is_anomaly], scores[is_anomaly], out / "anomaly_scores.png",
                                 f"{args.score} score (nats)", f"{dataset.name}: anomalies = class {names}, "
                                                                f"ROC-AUC {result['auc']:.3f}")
        write_json(out / "anomaly.json", {**result, "checkpoint": str(checkpoint.path), "dataset": dataset.name,
                                          "model": model.config(), "tinyvae": __version__})
    except OSError as err:
        print(f"error: could not write the results in {out} ({err.strerror or err}).", file=sys.stderr)
        return EXIT_FAILED
    print(f"ROC-AUC {result['auc']:.4f}; anomaly.json and anomaly_scores.png in {out}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
