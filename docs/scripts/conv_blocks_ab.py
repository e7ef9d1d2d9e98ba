"""The blocked convolutions (tinyvae/fast/conv_blocks.py) against the reference layers, in one process.

    python docs/scripts/conv_blocks_ab.py
    python docs/scripts/conv_blocks_ab.py --block-bytes 524288 --rounds 30

Builds the benchmark's conv VAE twice with the same weights, once from the blocked twins and once
from tinyvae.nn.conv's Conv2d and ConvTranspose2d, and times ``loss_and_grads`` at batch 128,
float32, one BLAS thread: the whole batch on one thread, and the batch split into 2 shares on 2
threads (tinyvae/fast/data_parallel.py). Each round takes the median of ``--steps`` steps of each
model in turn; printed is the median over the rounds of blocked / reference, and its range.
"""

import argparse
import statistics

import numpy as np
from threadpoolctl import threadpool_limits

import tinyvae.nn.conv_nets as conv_nets
from tinyvae.conv_benchmark import median_ms
from tinyvae.fast import conv_blocks
from tinyvae.fast.data_parallel import DataParallel
from tinyvae.models.vae import VAE
from tinyvae.nn.conv import Conv2d, ConvTranspose2d

ARCH = dict(input_dim=784, hidden=(), latent_dim=20, arch="conv", image_shape=(1, 28, 28), channels=(32, 64), seed=1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--block-bytes", type=int, default=conv_blocks.BLOCK_BYTES)
    p.add_argument("--rounds", type=int, default=12)
    p.add_argument("--steps", type=int, default=15)
    args = p.parse_args()
    conv_blocks._Blocks.block_bytes = args.block_bytes
    blocked = VAE(**ARCH)
    twins = conv_nets.conv_layer_classes
    conv_nets.conv_layer_classes = lambda: (Conv2d, ConvTranspose2d)
    reference = VAE(**ARCH)
    conv_nets.conv_layer_classes = twins
    assert type(blocked.encoder.layers[3]).__name__ == "BlockedConv2d"
    assert type(reference.encoder.layers[3]) is Conv2d
    rng = np.random.default_rng(0)
    x = (rng.random((128, 784)) < 0.3).astype(np.float32)
    eps = rng.standard_normal((128, 20)).astype(np.float32)
    runs = {"one thread": (blocked, reference), "2 shares on 2 threads": (DataParallel(blocked, 2),
                                                                          DataParallel(reference, 2))}
    with threadpool_limits(limits=1, user_api="blas"):
        for ours, theirs in runs.values():
            ours.loss_and_grads(x, eps), theirs.loss_and_grads(x, eps)          # compile, allocate
        ratios: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.rounds):
            for name, (ours, theirs) in runs.items():
                ratios[name].append(median_ms(lambda m=ours: m.loss_and_grads(x, eps), args.steps)
                                    / median_ms(lambda m=theirs: m.loss_and_grads(x, eps), args.steps))
    print(f"blocked / reference, blocks of at most {args.block_bytes:,} bytes, batch 128, {args.rounds} rounds:")
    for name, r in ratios.items():
        print(f"  {name:22s} {statistics.median(r):.3f}  ({min(r):.3f}–{max(r):.3f})")


if __name__ == "__main__":
    main()
