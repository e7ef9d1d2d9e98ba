"""The semi-supervised table of docs/family.md: M2, M1 and labels-only, on each M2 run's own labels.

    python docs/scripts/m2_table.py runs/mn-m1vae runs/mn-m2-100 runs/mn-m2-600 ...

The first folder is a plain VAE run on the same dataset (for M1); each following folder is an
``--model m2 --labels N`` run. For each M2 run, with the labelled examples it stored in its
config.json:

* M2: the test error of its classifier q(y|x) at the end, and at its best epoch (from history.jsonl,
  so chosen on the test set: a description of the curve, not a result);
* labels only: a classifier with M2's hidden layers (784-500-10), trained on the labelled
  examples alone (200 epochs, batch 10, Adam 1e-3);
* M1: softmax regression on the VAE's latent means of the same examples (200 epochs, batch 10,
  Adam 1e-2) — the paper's M1 used a TSVM on a 50-dimensional code; this is the linear probe.

All test errors are on the whole test set; the classifiers use the run's seed. Their 200 epochs
amplify the BLAS library's summation order: docs/family.md's numbers are with OPENBLAS_NUM_THREADS=1
(with two threads, labels-only on Fashion-MNIST at 3000 labels gave 16.2% instead of 16.6%).
The dataset is looked up as training looks it up, but without a --data-dir (a run does not
store one): set $TINYVAE_DATA to the folder that holds it, or use the cache or the system folders.
"""

import json
import sys
from pathlib import Path

import numpy as np

import tinyvae
from tinyvae.data.loading import load_dataset, to_float
from tinyvae.models.classifier import Classifier

EPOCHS, BATCH = 200, 10


def error(predicted: np.ndarray, labels: np.ndarray) -> str:
    return f"{100 * float(np.mean(predicted != labels)):.1f}%"


def row(vae: tinyvae.VAE, run: Path) -> str:
    config = json.loads((run / "config.json").read_text())
    seed, labelled = config["run"]["seed"], np.asarray(config["labelled"])
    dataset = load_dataset(config["run"]["dataset"], progress=False)
    x_train, x_test = (to_float(a, dataset.max_value, "float32") for a in (dataset.train_images, dataset.test_images))
    y_train, y_test = dataset.train_labels, dataset.test_labels
    m2 = tinyvae.load(run)
    m2_error = error(np.concatenate([m2.predict(x_test[s:s + 1000]) for s in range(0, len(x_test), 1000)]), y_test)
    alone = Classifier(x_train.shape[1], hidden=tuple(m2.config()["hidden"]), seed=seed)
    alone.fit(x_train[labelled], y_train[labelled], epochs=EPOCHS, batch_size=BATCH, seed=seed)
    probe = Classifier(vae.latent_dim, hidden=(), seed=seed)
    probe.fit(vae.encode(x_train[labelled])[0], y_train[labelled], epochs=EPOCHS, batch_size=BATCH, lr=1e-2, seed=seed)
    m1_error = error(probe.predict(vae.encode(x_test)[0]), y_test)
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    best = min(history, key=lambda row: row["test_error"])
    best_error = f"{100 * best['test_error']:.1f}% (epoch {best['epoch']})"
    return f"| {len(labelled)} | {m2_error} | {best_error} | {error(alone.predict(x_test), y_test)} | {m1_error} |"


if __name__ == "__main__":
    vae = tinyvae.load(sys.argv[1])
    print("| labels | M2 | M2, its best epoch | labels only | M1 (linear probe) |")
    print("|---|---|---|---|---|")
    for folder in sys.argv[2:]:
        print(row(vae, Path(folder)), flush=True)
