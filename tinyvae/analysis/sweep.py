"""``python -m tinyvae.analysis.sweep``: train one β-VAE per β and plot their rate against their distortion.

    python -m tinyvae.analysis.sweep --betas 0.25 0.5 1 2 4 8 --dataset digits --epochs 50 --out runs/sweep

The negative ELBO with a weight β on its KL term is the Lagrangian of a rate–distortion
problem (Alemi et al. 2018, "Fixing a broken ELBO")::

    distortion D = E[−log p(x|z)]            what the reconstruction loses
    rate       R = E[KL(q(z|x) ‖ p(z))]      nats the code carries about x (an upper bound)
    minimize   D + β·R

Small β buys low distortion with a high rate; large β squeezes the rate (at β well above 1
towards posterior collapse, R → 0). Each run is a full tinyvae.train run in OUT/beta-<β>/
(every train flag applies, except --beta and --resume); OUT/sweep.json holds the final test
numbers and OUT/rate_distortion.png plots test distortion against test rate.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from tinyvae.analysis import viz
from tinyvae.backend import Backend, BackendError, get_backend
from tinyvae.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, positive_float, unwritable
from tinyvae.data.loading import DataError, Dataset, load_dataset
from tinyvae.train import build_parser, make_config
from tinyvae.training.checkpoint import CHECKPOINT_NAME
from tinyvae.training.fileio import write_json
from tinyvae.training.trainer import RunConfig, Trainer


def sweep_betas(betas: list[float], base: RunConfig, dataset: Dataset, backend: Backend, out: str | Path,
                log: Any = print, progress: bool | None = False) -> list[dict[str, Any]]:
    """Train ``base`` once per β into out/beta-<β>/; returns each run's final test numbers, and
    writes out/sweep.json and out/rate_distortion.png."""
    out, results = Path(out), []
    for beta in betas:
        run_dir = out / f"beta-{beta:g}"
        if (run_dir / CHECKPOINT_NAME).exists():
            raise FileExistsError(f"{run_dir} already holds a run: choose another --out")
        trainer = Trainer(replace(base, beta=float(beta)), dataset, backend, run_dir, progress=progress,
                          log=lambda line: None)
        trainer.write_config()
        if trainer.fit() != "done":
            raise RuntimeError(f"the run with β = {beta:g} did not finish (see {run_dir})")
        trainer.write_figures()
        last = trainer.history[-1]
        results.append({"beta": float(beta), "rate": last["test_kl"], "distortion": last["test_recon"],
                        "test_loss": last["test_loss"], "active_units": last["active_units"],
                        "run": str(run_dir)})
        log(f"β = {beta:<6g} rate {last['test_kl']:7.2f}  distortion {last['test_recon']:7.2f}  "
            f"active units {last['active_units']}/{base.latent_dim}")
    write_json(out / "sweep.json", {"runs": results, "config": asdict(base)})
    viz.plot_rate_distortion([r["rate"] for r in results], [r["distortion"] for r in results], betas,
                             out / "rate_distortion.png", f"rate–distortion of β-VAEs, {dataset.name} test set")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    parser.prog, parser.description = "python -m tinyvae.analysis.sweep", __doc__.split("\n\n")[0]
    parser.add_argument("--betas", type=positive_float, nargs="+", required=True, metavar="BETA",
                        help="the β of each run (every other flag is shared, as in tinyvae.train)")
    args = parser.parse_args(argv)
    if args.resume is not None or args.beta is not None:
        parser.exit(EXIT_USAGE, "error: a sweep sets β itself (--betas) and always starts new runs (no --resume)\n")
    if len({f"{beta:g}" for beta in args.betas}) < len(args.betas):
        parser.exit(EXIT_USAGE, f"error: --betas names a β twice ({' '.join(f'{b:g}' for b in args.betas)})\n")
    base, _ = make_config(args, parser)
    if base.model == "ae":
        parser.exit(EXIT_USAGE, "error: a β sweep needs a model with a KL term: --model vae or cvae\n")
    out = Path(args.out or f"runs/sweep-{base.dataset}")
    problem = unwritable(out)
    if problem is not None:
        parser.exit(EXIT_USAGE, f"error: --out: {problem}; choose a folder you can write\n")
    taken = [out / f"beta-{beta:g}" for beta in args.betas if (out / f"beta-{beta:g}" / CHECKPOINT_NAME).exists()]
    if taken:
        parser.exit(EXIT_USAGE, f"error: {taken[0]} already holds a run; choose another --out\n")
    try:
        backend = get_backend(args.device, verbose=True)
        dataset = load_dataset(base.dataset, args.data_dir, progress=not args.no_progress)
    except BackendError as err:
        parser.exit(EXIT_USAGE, f"error: {err}\n")
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILED
    print(f"tinyvae: sweeping β over {', '.join(f'{b:g}' for b in args.betas)} on {dataset.name}, "
          f"{base.epochs} epochs each; device {backend}; writing {out}")
    try:
        sweep_betas(args.betas, base, dataset, backend, out, progress=False if args.no_progress else None)
    except ValueError as err:
        parser.exit(EXIT_USAGE, f"error: {err}\n")
    except (FileExistsError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as err:
        print(f"error: could not write in {out} ({err.strerror or err}); finished runs there are intact.",
              file=sys.stderr)
        return EXIT_FAILED
    print(f"done: sweep.json and rate_distortion.png in {out}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
