"""``python -m tinyvae.conv_benchmark``: the convolution layers' forward + backward against PyTorch's.

    taskset -c 0 python -m tinyvae.conv_benchmark --threads 1      # one core
    python -m tinyvae.conv_benchmark --threads 2                   # two BLAS / PyTorch threads

A LAYER-LEVEL benchmark, not an epoch: a conv VAE's encoder and decoder stacks at batch 128,
float32 on the CPU,

    encoder  (N, 1, 28, 28) → Conv2d(1→32, k4 s2 p1) → ReLU → Conv2d(32→64, k4 s2 p1) → (N, 64, 7, 7)
    decoder  (N, 64, 7, 7) → ConvTranspose2d(64→32, k4 s2 p1) → ReLU → ConvTranspose2d(32→1, k4 s2 p1)
             → (N, 1, 28, 28)

each timed as one forward plus one backward of a fixed dy (the encoder's first layer skips its
input gradient, as a network's first layer does; PyTorch's input does not require one either).
tinyvae and PyTorch run alternately in the same process with the same weights and inputs; the
report gives the median milliseconds of each and the ratio tinyvae/pytorch. PyTorch is not a
dependency of tinyvae: without it only tinyvae is timed.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from tinyvae.activations import ReLU
from tinyvae.cli import parser, positive_int
from tinyvae.conv import Conv2d, ConvTranspose2d
from tinyvae.fast.relu_kernels import activation
from tinyvae.layers import Sequential
from tinyvae.params import Parameters


def stacks() -> dict[str, tuple[Sequential, tuple[int, int, int]]]:
    """The two stacks, by name, with the shape of one input image (C, H, W); the ReLU the conv networks use
    (its compiled twin where Numba is installed)."""
    encoder = Sequential(Conv2d(1, 32, 4, 2, 1, input_grad=False), activation("relu"), Conv2d(32, 64, 4, 2, 1))
    decoder = Sequential(ConvTranspose2d(64, 32, 4, 2, 1), activation("relu"), ConvTranspose2d(32, 1, 4, 2, 1))
    return {"encoder": (encoder, (1, 28, 28)), "decoder": (decoder, (64, 7, 7))}


def torch_twin(stack: Sequential) -> Any:
    """The same stack in torch.nn, with the same weights (float32)."""
    import torch

    modules = []
    for layer in stack.layers:
        if isinstance(layer, ReLU):
            modules.append(torch.nn.ReLU())
            continue
        cls = torch.nn.ConvTranspose2d if isinstance(layer, ConvTranspose2d) else torch.nn.Conv2d
        module = cls(layer.in_channels, layer.out_channels, layer.k, layer.stride, layer.padding)
        with torch.no_grad():
            module.weight.copy_(torch.from_numpy(np.asarray(layer.W)))
            module.bias.copy_(torch.from_numpy(np.asarray(layer.b)))
        modules.append(module)
    return torch.nn.Sequential(*modules)


def median_ms(step: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def time_stack(stack: Sequential, image: tuple[int, int, int], batch_size: int, repeats: int, rounds: int,
               rng: np.random.Generator) -> dict[str, float]:
    """Median ms of one forward + backward of ``stack`` (float32, bound), for tinyvae and, if importable, PyTorch."""
    x = rng.random((batch_size, *image), dtype=np.float32)
    dy = rng.standard_normal(stack.forward(x).shape, dtype=np.float32)

    def ours() -> None:
        stack.forward(x)
        stack.backward(dy)

    steps = {"tinyvae": ours}
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        twin, xt, dyt = torch_twin(stack), torch.from_numpy(x), torch.from_numpy(dy)
        xt.requires_grad_(stack.layers[0].input_grad)

        def theirs() -> None:
            for p in twin.parameters():
                p.grad = None
            xt.grad = None
            twin(xt).backward(dyt)

        steps["pytorch"] = theirs
    for step in steps.values():              # warm up: buffers, caches, PyTorch's first-call setup
        step()
        step()
    results: dict[str, list[float]] = {key: [] for key in steps}
    for _ in range(rounds):                  # alternate, so a noisy machine slows both alike
        for key, step in steps.items():
            results[key].append(median_ms(step, repeats))
    row = {key: statistics.median(v) for key, v in results.items()}
    if "pytorch" in row:
        row["ratio"] = row["tinyvae"] / row["pytorch"]
    return row


def measure(batch_size: int = 128, repeats: int = 20, rounds: int = 5, seed: int = 0) -> list[dict[str, Any]]:
    """One row per stack: its name and :func:`time_stack`'s medians and ratio."""
    rng = np.random.default_rng(seed)
    rows = []
    for name, (stack, image) in stacks().items():
        Parameters({name: stack}, dtype="float32", seed=seed)
        rows.append({"stack": name, **time_stack(stack, image, batch_size, repeats, rounds, rng)})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = parser("python -m tinyvae.conv_benchmark", __doc__.split("\n")[0])
    p.add_argument("--threads", type=positive_int, default=1, help="BLAS and PyTorch threads (default 1)")
    p.add_argument("--batch-size", type=positive_int, default=128)
    p.add_argument("--repeats", type=positive_int, default=20, help="timed steps per round (median)")
    p.add_argument("--rounds", type=positive_int, default=5, help="alternating rounds (median of the rounds' medians)")
    args = p.parse_args(argv)
    try:
        import torch
        torch.set_num_threads(args.threads)
    except ImportError:
        print("pytorch is not installed: timing tinyvae only", file=sys.stderr)
    with threadpool_limits(args.threads):
        rows = measure(args.batch_size, args.repeats, args.rounds)
    print(f"conv layers, forward + backward, batch {args.batch_size}, float32, {args.threads} thread(s); median ms")
    for row in rows:
        line = f"{row['stack']:8s} tinyvae {row['tinyvae']:8.2f} ms"
        if "pytorch" in row:
            line += f"   pytorch {row['pytorch']:8.2f} ms   ratio tinyvae/pytorch {row['ratio']:.2f}"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
