"""``python -m tinyvae.benchmark``: seconds per epoch, tinyvae against PyTorch, in one run.

    python -m tinyvae.benchmark                         # Fashion-MNIST, 784-400-20, batch 128, 10 epochs, CPU
    python -m tinyvae.benchmark --device gpu --batch-size 1024

tinyvae trains through the same ``Trainer`` that ``python -m tinyvae.train`` uses; the
reference is the same model and loop written in PyTorch (if it is importable): the same
architecture, objective (negative ELBO averaged over the batch), Adam settings, batch
order and number of epochs. Epochs alternate between the two, so a noisy machine slows
both alike; the report gives per-epoch times, their medians, the ratio tinyvae/PyTorch,
the final test losses and the peak resident memory of each (measured in a child process
that trains one epoch). PyTorch is never a dependency of tinyvae: without it only
tinyvae is measured.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from tinyvae import __version__
from tinyvae.backend import BackendError, get_backend
from tinyvae.cli import EXIT_FAILED, EXIT_USAGE, parser, positive_int, unwritable
from tinyvae.data.loading import DATASETS, DataError, Dataset, load_dataset
from tinyvae.nn.conv_nets import KERNEL, PADDING, STRIDE, conv_sides
from tinyvae.training.trainer import RunConfig, Trainer


class TorchVAE:
    """pytorch/examples' VAE and its training loop, for comparison only (imports torch lazily);
    with ``config.arch == "conv"`` the convolutional networks of tinyvae.nn.conv_nets, layer for layer."""

    def __init__(self, config: RunConfig, dataset: Dataset, device: str) -> None:
        import torch

        self.torch, self.config, self.device = torch, config, device
        torch.manual_seed(config.seed)
        if config.arch == "conv":
            self.encoder, self.decoder = self._conv_networks(config, dataset.image_shape)
        else:
            self.encoder, self.decoder = self._dense_networks(config, dataset.train_images.shape[1])
        self.encoder.to(device)
        self.decoder.to(device)
        params = list(self.encoder.parameters()) + list(self.decoder.parameters())
        self.optimizer = torch.optim.Adam(params, lr=config.lr)
        self.train_x = torch.from_numpy(dataset.train_images).to(device)
        self.test_x = torch.from_numpy(dataset.test_images).to(device)
        self.scale = 1.0 / dataset.max_value

    def _dense_networks(self, config: RunConfig, d: int) -> tuple[Any, Any]:
        encoder = self._mlp([d, *config.hidden, 2 * config.latent_dim])
        decoder = self._mlp([config.latent_dim, *config.hidden[::-1], d])
        return self.torch.nn.Sequential(*encoder), self.torch.nn.Sequential(*decoder)

    def _conv_networks(self, config: RunConfig, image: tuple[int, int]) -> tuple[Any, Any]:
        """tinyvae.nn.conv_nets' networks in torch.nn: the same layers, sizes and output paddings."""
        nn, channels = self.torch.nn, config.channels
        sides = conv_sides((1, *image), len(channels))
        features = channels[-1] * sides[-1][0] * sides[-1][1]
        encoder: list[Any] = [nn.Unflatten(1, (1, *image))]
        for c_in, c_out in zip([1, *channels[:-1]], channels, strict=True):
            encoder += [nn.Conv2d(c_in, c_out, KERNEL, STRIDE, PADDING), nn.ReLU()]
        encoder += [nn.Flatten(), *self._mlp([features, *config.hidden, 2 * config.latent_dim])]
        decoder = [*self._mlp([config.latent_dim, *config.hidden[::-1], features]), nn.ReLU(),
                   nn.Unflatten(1, (channels[-1], *sides[-1]))]
        widths = [*channels[::-1], 1]
        for i, (c_in, c_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            pad = sides[-2 - i][0] - 2 * sides[-1 - i][0]
            decoder.append(nn.ConvTranspose2d(c_in, c_out, KERNEL, STRIDE, PADDING, output_padding=pad))
            if i < len(widths) - 2:
                decoder.append(nn.ReLU())
        return nn.Sequential(*encoder), nn.Sequential(*decoder, nn.Flatten())

    def _mlp(self, sizes: list[int]) -> list[Any]:
        nn, layers = self.torch.nn, []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            layers += [nn.Linear(a, b)] + ([nn.ReLU()] if i < len(sizes) - 2 else [])
        return layers

    def _loss(self, x: Any) -> Any:
        torch, J = self.torch, self.config.latent_dim
        h = self.encoder(x)
        mu, logvar = h[:, :J], h[:, J:]
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        logits = self.decoder(z)
        recon = torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="sum")
        kl = 0.5 * torch.sum(mu.pow(2) + logvar.exp() - 1.0 - logvar)
        return (recon + kl) / x.shape[0]

    def train_epoch(self, epoch: int) -> float:
        """One epoch in the same batch order as tinyvae; returns its seconds."""
        torch, cfg = self.torch, self.config
        perm = torch.from_numpy(np.random.default_rng([cfg.seed, epoch]).permutation(len(self.train_x)))
        perm = perm.to(self.device)
        self._sync()
        tic = time.perf_counter()
        for start in range(0, len(perm), cfg.batch_size):
            x = self.train_x[perm[start:start + cfg.batch_size]].float().mul_(self.scale)
            loss = self._loss(x)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        self._sync()
        return time.perf_counter() - tic

    def test_loss(self) -> float:
        torch = self.torch
        total = 0.0
        with torch.no_grad():
            for start in range(0, len(self.test_x), 1000):
                x = self.test_x[start:start + 1000].float().mul_(self.scale)
                total += float(self._loss(x)) * len(x)
        return total / len(self.test_x)

    def _sync(self) -> None:
        if self.device != "cpu":
            self.torch.cuda.synchronize()


def torch_version() -> str | None:
    try:
        import torch
    except ImportError:
        return None
    return torch.__version__


def numba_version() -> str | None:
    """Numba's version, or None: without Numba, Adam runs its NumPy reference on the CPU."""
    try:
        return importlib.metadata.version("numba")
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_description(backend_name: str) -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = {"cpu": cpu, "cores": len(__import__("os").sched_getaffinity(0)), "python": platform.python_version(),
            "numpy": np.__version__, "numba": numba_version(), "tinyvae": __version__, "torch": torch_version(),
            "device": backend_name}
    return info


def child_peak_memory(framework: str, args: argparse.Namespace) -> float | None:
    """Peak resident memory (MiB) of a fresh process that loads the data and trains one epoch."""
    command = [sys.executable, "-m", "tinyvae.benchmark", "--child", framework, "--device", args.device,
               "--arch", args.arch, "--channels", *map(str, args.channels),
               "--dataset", args.dataset, "--batch-size", str(args.batch_size), "--epochs", "1"]
    if args.data_dir:
        command += ["--data-dir", args.data_dir]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        return None
    return json.loads(result.stdout.strip().splitlines()[-1])["peak_mib"]


def run_child(args: argparse.Namespace, config: RunConfig, dataset: Dataset, backend: Any) -> None:
    with tempfile.TemporaryDirectory() as out:
        if args.child == "tinyvae":
            Trainer(config, dataset, backend, out, progress=False, log=lambda line: None).fit()
        else:
            TorchVAE(config, dataset, "cuda" if backend.is_gpu else "cpu").train_epoch(1)
    print(json.dumps({"peak_mib": peak_resident_mib()}))


def peak_resident_mib() -> float:
    """This process's peak resident memory in MiB: VmHWM on Linux, which (unlike ru_maxrss, which a
    child inherits from the parent it was forked from) counts this program alone."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    p = parser("python -m tinyvae.benchmark", __doc__.split("\n\n")[0])
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    p.add_argument("--dataset", choices=DATASETS, default="fashion-mnist")
    p.add_argument("--data-dir")
    p.add_argument("--epochs", type=positive_int, default=10)
    p.add_argument("--batch-size", type=positive_int, default=128)
    p.add_argument("--arch", choices=["dense", "conv"], default="dense",
                   help="dense: 784-400-20 (pytorch/examples); conv: Conv(1→32→64, k4 s2 p1) → Linear(→2·20) "
                        "and its mirror (tinyvae.nn.conv_nets)")
    p.add_argument("--channels", type=positive_int, nargs="+", default=[32, 64], help="--arch conv: channels")
    p.add_argument("--no-torch", action="store_true", help="measure tinyvae only")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory child processes")
    p.add_argument("--one-share", action="store_true",
                   help="train tinyvae's conv model without splitting its step over the cores (BLAS threads only)")
    p.add_argument("--json", help="also write the results to this file")
    p.add_argument("--child", choices=["tinyvae", "torch"], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    problem = unwritable(Path(args.json).parent) if args.json else None
    if problem is not None or (args.json and Path(args.json).is_dir()):
        p.exit(EXIT_USAGE, f"error: --json: {problem or f'{args.json} is a folder'}; choose a file you can write\n")
    try:
        backend = get_backend(args.device)
    except BackendError as err:
        p.exit(EXIT_USAGE, f"error: {err}\n")
    try:
        dataset = load_dataset(args.dataset, args.data_dir, progress=False)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILED
    config = RunConfig(dataset=args.dataset, epochs=args.epochs, batch_size=args.batch_size, arch=args.arch,
                       channels=list(args.channels), hidden=[] if args.arch == "conv" else [400])
    if args.child:
        run_child(args, config, dataset, backend)
        return 0

    use_torch = not args.no_torch and torch_version() is not None
    info = machine_description(str(backend))
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(config, dataset, backend, out, progress=False,
                          log=lambda line: None if line.startswith("epoch") else print(line))
        print(f"model: {trainer.model}, batch {config.batch_size}, {config.epochs} epochs of {dataset.name} "
              f"({dataset.train_images.shape[0]:,} images)")
        if args.one_share:
            trainer.parallel = None                            # the model's own loss_and_grads, BLAS's threads
        shares = 1 if trainer.parallel is None else trainer.parallel.workers
        print(f"Adam's update: {trainer.model.ops.name}; the step in {shares} share(s)"
              + (" on as many threads (tinyvae/fast/data_parallel.py)" if shares > 1 else ""))
        reference = TorchVAE(config, dataset, "cuda" if backend.is_gpu else "cpu") if use_torch else None
        ours, theirs = [], []
        for epoch in range(1, config.epochs + 1):
            trainer.config.epochs = epoch
            trainer.fit()
            ours.append(trainer.history[-1]["train_seconds"])
            line = f"epoch {epoch:>2}: tinyvae {ours[-1]:.3f} s"
            if reference is not None:
                theirs.append(reference.train_epoch(epoch))
                line += f"   pytorch {theirs[-1]:.3f} s"
            print(line, flush=True)
        results: dict[str, Any] = {"machine": info, "batch_size": config.batch_size, "epochs": config.epochs,
                                   "adam_update": trainer.model.ops.name, "shares": shares,
                                   "dataset": dataset.name, "tinyvae_seconds": ours,
                                   "tinyvae_median": statistics.median(ours),
                                   "tinyvae_test_loss": trainer.history[-1]["test_loss"]}
    print(f"tinyvae: median {results['tinyvae_median']:.3f} s/epoch, test loss {results['tinyvae_test_loss']:.2f}")
    if reference is not None:
        results.update(torch_seconds=theirs, torch_median=statistics.median(theirs),
                       torch_test_loss=reference.test_loss())
        results["ratio"] = results["tinyvae_median"] / results["torch_median"]
        print(f"pytorch: median {results['torch_median']:.3f} s/epoch, test loss {results['torch_test_loss']:.2f}")
        print(f"ratio tinyvae/pytorch: {results['ratio']:.2f}")
    if not args.no_memory:
        for framework in ["tinyvae"] + (["torch"] if reference is not None else []):
            peak = child_peak_memory(framework, args)
            results[f"{framework}_peak_mib"] = peak
            print(f"peak memory, {framework} (one epoch in a fresh process): "
                  + (f"{peak:.0f} MiB" if peak is not None else "not measured (the child process failed)"))
    if args.json:
        from tinyvae.training.fileio import write_json

        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
