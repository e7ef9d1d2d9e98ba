"""One training step three ways: one thread, BLAS's threads, and the batch split over threads.

    python docs/scripts/data_parallel_step.py --arch conv
    python docs/scripts/data_parallel_step.py --arch dense

Builds the benchmark's model (``--arch conv``: Conv(1→32→64, k4 s2 p1) → Linear(3136 → 2·20) and
its mirror; ``--arch dense``: 784-400-20, pytorch/examples' VAE) at batch 128, float32, on one
fixed batch, and prints the median milliseconds of ``loss_and_grads`` (forward and backward)
with one BLAS thread, with BLAS's default threads, and split into ``--shares`` shares on as many
threads with one BLAS thread each (tinyvae/fast/data_parallel.py), in ``--rounds`` alternating
rounds of ``--repeats`` steps. It is what decided that the trainer splits conv steps and not
dense ones (docs/benchmarks.md). On a machine with fewer cores than shares the split cannot gain.
"""

import argparse

import numpy as np
from threadpoolctl import threadpool_limits

from tinyvae.backend import get_backend
from tinyvae.conv_benchmark import median_ms
from tinyvae.fast.data_parallel import DataParallel
from tinyvae.models.registry import model_for_run
from tinyvae.training.trainer import RunConfig

BATCH, LATENT = 128, 20


def model(arch: str) -> object:
    if arch == "conv":
        config = RunConfig(dataset="fashion-mnist", arch="conv", hidden=[], channels=[32, 64], latent_dim=LATENT)
    else:
        config = RunConfig(dataset="fashion-mnist", hidden=[400], latent_dim=LATENT)
    return model_for_run(config, 28 * 28, get_backend("cpu"), image_shape=(28, 28))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", choices=["conv", "dense"], default="conv")
    p.add_argument("--shares", type=int, default=2)
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    vae = model(args.arch)
    split = DataParallel(vae, args.shares)
    rng = np.random.default_rng(0)
    x = (rng.random((BATCH, 28 * 28)) < 0.3).astype(np.float32)
    eps = rng.standard_normal((BATCH, LATENT)).astype(np.float32)

    def whole() -> None:
        vae.loss_and_grads(x, eps)

    def shares() -> None:
        split.loss_and_grads(x, eps)

    whole(), shares()                                                  # compile, allocate
    print(f"{vae}, batch {BATCH}: median ms of forward + backward")
    for _ in range(args.rounds):
        blas = median_ms(whole, args.repeats)
        with threadpool_limits(limits=1, user_api="blas"):
            one = median_ms(whole, args.repeats)
            parallel = median_ms(shares, args.repeats)
        print(f"  one thread {one:7.2f}   BLAS threads {blas:7.2f}   {args.shares} shares on {args.shares} threads "
              f"{parallel:7.2f}")
    split.close()


if __name__ == "__main__":
    main()
