"""The VAE-vs-IWAE table of docs/family.md, from run folders trained on the same data.

    python docs/scripts/iwae_table.py runs/mn-vae runs/mn-iwae5 runs/mn-iwae50 [--k 5000] [--images 1000]

For each run: what it was trained on (the ELBO, or L_K for an ``--iwae-k K`` run), the test
negative ELBO (all test images, one noise draw), −L_k on the first ``--images`` test images,
the difference from the FIRST run's −L_k on the same images with its paired standard error,
the active units, and the median training seconds per epoch.
The dataset is looked up as training looks it up, but without a --data-dir (a run does not
store one): set $TINYVAE_DATA to the folder that holds it, or use the cache or the system folders.
"""

import argparse
from pathlib import Path

import numpy as np
from dense_vs_conv import scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--k", type=int, default=5000)
    parser.add_argument("--images", type=int, default=1000)
    args = parser.parse_args()
    print(f"| trained on | test −ELBO | −L_{args.k} ({args.images:,} images) | difference from the first run "
          "| active units | s/epoch |")
    print("|---|---|---|---|---|---|")
    first = None
    for run in args.runs:
        s = scores(run, args.k, args.images)
        model, bound = s["model"], s["neg_L_k"]
        first = bound if first is None else first
        diff = bound - first
        paired = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else 0.0
        name = f"L_{model.k} (IWAE, K = {model.k})" if hasattr(model, "k") else "ELBO (VAE)"
        print(f"| {name} | {s['neg_elbo']:.2f} | {bound.mean():.2f} ± {bound.std(ddof=1) / np.sqrt(len(bound)):.2f} | "
              f"{diff.mean():+.2f} ± {paired:.2f} | {s['active']}/{model.latent_dim} | {s['seconds']:.2f} |",
              flush=True)


if __name__ == "__main__":
    main()
