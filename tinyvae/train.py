"""``python -m tinyvae.train``: train a VAE, writing checkpoints, history and figures.

    python -m tinyvae.train --dataset digits --epochs 200 --latent-dim 2 --out runs/digits   # offline, seconds
    python -m tinyvae.train --device gpu                                       # MNIST, the course command
    python -m tinyvae.train --dataset digits --model cvae --out runs/cvae      # the VAE's family: docs/family.md

Defaults reproduce pytorch/examples' VAE experiment: MNIST, 784-400-20-400-784 ReLU,
Bernoulli likelihood, Adam 1e-3, batch 128, 10 epochs, seed 1. This module only parses
flags and wires the pieces together; the loop is tinyvae.training.trainer.Trainer.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import fields
from pathlib import Path

from tinyvae.backend import BACKEND_NAMES, BackendError, get_backend
from tinyvae.cli import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    class_index,
    nonnegative_float,
    nonnegative_int,
    parser,
    positive_float,
    positive_int,
    seed_value,
    sigma_value,
    unwritable,
)
from tinyvae.data.loading import BINARIZE, DATASETS, DataError, load_dataset
from tinyvae.models.autoencoder import NOISES, SPARSITIES
from tinyvae.models.likelihood import ARCHS
from tinyvae.models.registry import MODELS
from tinyvae.models.vae import LIKELIHOODS
from tinyvae.nn.activations import ACTIVATIONS
from tinyvae.training.checkpoint import CHECKPOINT_NAME, CheckpointError, load_checkpoint
from tinyvae.training.trainer import RunConfig, Trainer

# Flags that belong to one kind of model: a VAE's KL term, an autoencoder's noise and penalty.
VAE_ONLY = ("beta", "free_bits", "kl_warmup", "kl_cycles", "iwae_k")
AE_ONLY = ("noise", "noise_level", "sparsity", "sparsity_weight", "sparsity_target")
M2_ONLY = ("labels", "labelled_batch")
# What a run saved before a setting existed did, where that differs from the setting's default.
OLD_RUN_DEFAULTS = {"labelled_batch": 0}

def build_parser() -> argparse.ArgumentParser:
    d = RunConfig()
    p = parser("python -m tinyvae.train", __doc__.split("\n\n")[0])
    # Flags default to None so that --resume can tell what was given; each help names RunConfig's default.
    p.add_argument("--device", choices=BACKEND_NAMES, default="cpu", help="where to train (default cpu)")
    p.add_argument("--dataset", choices=DATASETS, help=f"dataset (default {d.dataset})")
    p.add_argument("--data-dir", help="folder holding the dataset files (else $TINYVAE_DATA, the cache, a download)")
    p.add_argument("--epochs", type=positive_int, help=f"total epochs to train (default {d.epochs})")
    p.add_argument("--batch-size", type=positive_int, help=f"examples per step (default {d.batch_size})")
    p.add_argument("--lr", type=positive_float, help=f"Adam learning rate (default {d.lr})")
    p.add_argument("--hidden", type=positive_int, nargs="+", help=f"hidden layer sizes (default {d.hidden[0]})")
    p.add_argument("--latent-dim", type=positive_int, help=f"size of z (default {d.latent_dim})")
    p.add_argument("--arch", choices=ARCHS, help=f"the networks: dense (MLPs) or conv (convolutions, then the "
                                                 f"--hidden dense layers; none by default) (default {d.arch})")
    p.add_argument("--channels", type=positive_int, nargs="+", help="arch conv: channels of each k4 s2 p1 "
                                                                     "convolution (default 32 64)")
    p.add_argument("--activation", choices=list(ACTIVATIONS), help=f"hidden activation (default {d.activation})")
    p.add_argument("--likelihood", choices=LIKELIHOODS, help=f"decoder distribution (default {d.likelihood})")
    p.add_argument("--sigma", type=sigma_value, help="Gaussian decoder std, or 'learned' (default 1.0)")
    p.add_argument("--beta", type=nonnegative_float, help=f"weight of the KL term, ≥ 0 (default {d.beta})")
    p.add_argument("--binarize", choices=BINARIZE, help=f"pixel binarization (default {d.binarize})")
    p.add_argument("--seed", type=seed_value, help=f"random seed for weights, shuffling and noise (default {d.seed})")
    p.add_argument("--model", choices=list(MODELS), help=f"vae, conditional vae, deterministic autoencoder, or the "
                                                          f"semi-supervised m2 (default {d.model})")
    p.add_argument("--labels", type=positive_int, metavar="N",
                   help="m2: keep the labels of N training examples, balanced across classes and chosen by the seed")
    p.add_argument("--labelled-batch", type=nonnegative_int, metavar="L",
                   help=f"m2: add L labelled examples to every step, the batches then cut from the unlabelled ones "
                        f"(at most N; 0: the labels come at their natural rate) (default {d.labelled_batch})")
    p.add_argument("--free-bits", type=nonnegative_float, metavar="LAMBDA",
                   help="free bits: nats per latent dimension the KL may use unpenalized (default 0, off)")
    p.add_argument("--kl-warmup", type=nonnegative_float, metavar="EPOCHS",
                   help="KL annealing: raise the KL weight linearly from 0 to 1 over EPOCHS epochs (default 0, off)")
    p.add_argument("--kl-cycles", type=positive_int, metavar="C",
                   help="cyclical KL annealing: C cycles over the run, each ramping 0→1 then holding 1")
    p.add_argument("--iwae-k", type=positive_int, metavar="K",
                   help="train the vae on the importance-weighted bound L_K, K samples per example (default: "
                        "the ELBO)")
    p.add_argument("--noise", choices=NOISES, help=f"autoencoder: corrupt the input (denoising) (default {d.noise})")
    p.add_argument("--noise-level", type=positive_float, help=f"autoencoder: Gaussian noise std or masking "
                                                               f"probability (default {d.noise_level})")
    p.add_argument("--sparsity", choices=SPARSITIES, help=f"autoencoder: sparsity penalty on the code "
                                                           f"(default {d.sparsity})")
    p.add_argument("--sparsity-weight", type=nonnegative_float, help=f"autoencoder: weight of the sparsity penalty "
                                                                      f"(default {d.sparsity_weight})")
    p.add_argument("--sparsity-target", type=positive_float, help=f"autoencoder: target activation rho for "
                                                                   f"--sparsity kl (default {d.sparsity_target})")
    p.add_argument("--exclude-classes", type=class_index, nargs="+", metavar="K",
                   help="leave these classes out of the training set (the test set stays whole): anomaly detection")
    p.add_argument("--out", help="output folder (default runs/DATASET; with --resume, DIR itself)")
    p.add_argument("--resume", metavar="DIR", help="continue the run saved in DIR (up to --epochs); with --out, "
                                                   "DIR is copied there first and left untouched")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def make_config(args: argparse.Namespace, parser: argparse.ArgumentParser) -> tuple[RunConfig, dict | None]:
    """The run's config: flags over defaults, or the checkpoint's config when resuming."""
    given = {f.name: getattr(args, f.name) for f in fields(RunConfig) if getattr(args, f.name) is not None}
    if args.resume is None:
        if given.get("arch") == "conv":
            given.setdefault("hidden", [])               # a conv model's dense layers: none unless asked for
        elif "channels" in given:
            parser.exit(EXIT_USAGE, "error: --channels applies to --arch conv\n")
        config = RunConfig(**given)
        wrong = (AE_ONLY if config.model != "ae" else VAE_ONLY) + (M2_ONLY if config.model != "m2" else ())
        misplaced = [name for name in wrong if name in given]
        if misplaced:
            parser.exit(EXIT_USAGE, f"error: --{misplaced[0].replace('_', '-')} does not apply to --model "
                                    f"{config.model}\n")
        return config, None
    try:
        checkpoint = load_checkpoint(Path(args.resume) / CHECKPOINT_NAME)
        saved = RunConfig(**{**OLD_RUN_DEFAULTS, **checkpoint.state["run"]})
    except CheckpointError as err:
        parser.exit(EXIT_USAGE, f"error: cannot resume: {err}\n")
    except (KeyError, TypeError):
        parser.exit(EXIT_USAGE, f"error: cannot resume: {args.resume} holds a checkpoint without a training run's "
                                f"settings (not written by python -m tinyvae.train)\n")
    for name, value in given.items():
        if name != "epochs" and value != getattr(saved, name):
            parser.exit(EXIT_USAGE, f"error: --{name.replace('_', '-')} cannot change when resuming "
                                    f"(the run in {args.resume} has {getattr(saved, name)!r})\n")
    if "epochs" in given:
        saved.epochs = given["epochs"]
    return saved, checkpoint


def copy_run(source: Path, target: Path) -> None:
    """Copy the files of the run folder ``source`` into ``target`` (each atomically); ``source`` is only read."""
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.iterdir()):
        if path.is_file() and not path.name.startswith("."):
            partial = target / f".{path.name}.copy"
            shutil.copyfile(path, partial)
            partial.replace(target / path.name)


def output_folder(args: argparse.Namespace, config: RunConfig, parser: argparse.ArgumentParser) -> Path:
    """Where the run is written, checked before any training: a writable folder that holds no other run.

    ``--resume DIR --out OTHER`` continues in OTHER (main copies DIR's files there): DIR is never written.
    """
    out_dir = Path(args.out or args.resume or f"runs/{config.dataset}")
    resuming_here = args.resume is not None and out_dir.resolve() == Path(args.resume).resolve()
    if not resuming_here and (out_dir / CHECKPOINT_NAME).exists():
        advice = "choose another --out" if args.resume else f"continue it with --resume {out_dir} or choose " \
                                                            f"another --out"
        parser.exit(EXIT_USAGE, f"error: {out_dir} already holds a run; {advice}\n")
    problem = unwritable(out_dir)
    if problem is not None:
        parser.exit(EXIT_USAGE, f"error: --out: {problem}; choose a folder you can write\n")
    return out_dir


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    config, checkpoint = make_config(args, parser)
    out_dir = output_folder(args, config, parser)
    try:
        backend = get_backend(args.device, verbose=True)
    except BackendError as err:
        parser.exit(EXIT_USAGE, f"error: {err}\n")
    try:
        dataset = load_dataset(config.dataset, args.data_dir, progress=not args.no_progress)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILED

    try:
        trainer = Trainer(config, dataset, backend, out_dir, progress=False if args.no_progress else None)
    except ValueError as err:
        parser.exit(EXIT_USAGE, f"error: {err}\n")
    if checkpoint is not None:
        try:
            trainer.restore(checkpoint)
        except (KeyError, TypeError, ValueError) as err:
            parser.exit(EXIT_USAGE, f"error: cannot resume: {checkpoint.path} does not fit its own run ({err})\n")
    print(f"tinyvae: {trainer.model} on {dataset.name} ({dataset.train_images.shape[0]:,} train / "
          f"{dataset.test_images.shape[0]:,} test, from {dataset.source}); device {backend}; writing {out_dir}")
    if trainer.epochs_done >= config.epochs:
        print(f"nothing to do: the run already has {trainer.epochs_done} epochs (ask for more with --epochs)")
        return EXIT_OK
    try:
        if args.resume is not None and out_dir.resolve() != Path(args.resume).resolve():
            copy_run(Path(args.resume), out_dir)             # resume into another folder: DIR stays as it was
        trainer.write_config()
        outcome = trainer.fit()
        if outcome == "nan":
            return EXIT_FAILED
        if outcome == "interrupted":
            return EXIT_INTERRUPTED
        trainer.write_figures()
    except OSError as err:
        print(f"error: could not write in {out_dir} ({err.strerror or err}); files already there are intact "
              f"(every write is atomic)", file=sys.stderr)
        return EXIT_FAILED
    print(f"done: {config.epochs} epochs; checkpoint, history and figures in {out_dir}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
