"""The dense-vs-conv table of docs/family.md, from two trained run folders.

    python docs/scripts/dense_vs_conv.py runs/fmnist-dense runs/fmnist-conv

For each run: the test negative ELBO (nats per image, one noise draw, all test images), −L_k
with k = 1000 importance samples on the first 1,000 test images (Burda et al.), the active
units, and the median training seconds per epoch from history.jsonl.
The dataset is looked up as training looks it up, but without a --data-dir (a run does not
store one): set $TINYVAE_DATA to the folder that holds it, or use the cache or the system folders.
"""

import json
import statistics
import sys
from pathlib import Path

import numpy as np

import tinyvae
from tinyvae.data import load_dataset, test_pixels, to_float
from tinyvae.metrics import active_units, elbo_parts, iwae_bound

K, IMAGES, BATCH = 1000, 1000, 100


def scores(run: Path, k: int = K, images: int = IMAGES) -> dict:
    """A run's test scores: the model, the test −ELBO, −L_k per image on the first ``images`` test
    images (an array), the active units and the median training seconds per epoch."""
    model = tinyvae.load(run)
    config = json.loads((run / "config.json").read_text())["run"]
    dataset = load_dataset(config["dataset"], progress=False)
    pixels, top = test_pixels(dataset, config["binarize"], config["seed"])
    x = to_float(pixels, top, model.dtype)
    rng = np.random.default_rng([config["seed"], 3])
    loss, means = [], []
    for start in range(0, len(x), BATCH):
        batch = x[start:start + BATCH]
        rows = len(batch) * getattr(model, "k", 1)          # an IWAE model draws K latents per image
        parts = elbo_parts(model, batch, rng.standard_normal((rows, model.latent_dim)).astype(model.dtype))
        loss.append(parts.recon + parts.kl)
        means.append(parts.mu)
    scored = x[:images]
    bound = np.concatenate([iwae_bound(model, scored[s:s + BATCH], k, rng=rng) for s in range(0, len(scored), BATCH)])
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    return {"model": model, "neg_elbo": float(np.concatenate(loss).mean()), "neg_L_k": -bound,
            "active": int(active_units(np.concatenate(means))[1].sum()),
            "seconds": statistics.median(r["train_seconds"] for r in history)}


def row(run: Path) -> str:
    s = scores(run)
    model = s["model"]
    return (f"| {model.arch} | {model.params.size:,} | {s['neg_elbo']:.2f} | {s['neg_L_k'].mean():.2f} | "
            f"{s['active']}/{model.latent_dim} | {s['seconds']:.2f} |")


if __name__ == "__main__":
    print("| networks | parameters | test −ELBO | −L_1000 (1,000 images) | active units | s/epoch |")
    print("|---|---|---|---|---|---|")
    for folder in sys.argv[1:]:
        print(row(Path(folder)), flush=True)
