"""The GEMM floor of the conv VAE: its matrix products alone, against a whole training step.

    taskset -c 0 python docs/scripts/gemm_floor.py --threads 1
    python docs/scripts/gemm_floor.py --threads 1 2
    taskset -c 0 python docs/scripts/gemm_floor.py --threads 1 --torch

Builds the VAE of ``python -m tinyvae.benchmark --arch conv`` (Conv(1→32→64, k4 s2 p1) →
Linear(3136 → 2·20) and its mirror, batch 128, float32), runs one step to learn every layer's
shapes, and times each matrix product of a training step (forward and backward, all layers)
at those shapes, with the operands in the memory orders the layers hand to BLAS (a transposed
operand is a transposed view, as in the layers). Then it times whole steps (forward, backward,
Adam) of the same model. For each BLAS thread count: the median ms of every product, their
sum (the floor: what a step would cost if everything but the products were free) and its
GFLOP/s (2 flops per multiply-add), the rate of one large square product (about the best
this BLAS does on this CPU), and the median step.

``--torch`` (PyTorch installed) also times every product, and the square, with ``torch.matmul``
on the same operands (the same memory, shared through ``torch.from_numpy``) and as many PyTorch
threads: the same arithmetic in the BLAS that PyTorch calls (MKL in PyTorch's CPU builds for
x86), so the two floors compare the libraries, not the code around them.
"""

import argparse
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from tinyvae.backend import get_backend
from tinyvae.conv_benchmark import median_ms
from tinyvae.models.registry import model_for_run
from tinyvae.nn.conv import Conv2d, ConvTranspose2d
from tinyvae.nn.layers import Linear
from tinyvae.training.optim import Adam
from tinyvae.training.trainer import RunConfig

BATCH, LATENT = 128, 20
SQUARE = np.ones((2048, 2048), np.float32)


def conv_vae() -> object:
    config = RunConfig(dataset="fashion-mnist", arch="conv", hidden=[], channels=[32, 64], latent_dim=LATENT)
    return model_for_run(config, 28 * 28, get_backend("cpu"), image_shape=(28, 28))


Product = tuple[Callable[[], object], Callable[[], object] | None, float]   # NumPy's, PyTorch's or None, flops


def products(model: object, torch: Any = None) -> list[tuple[str, Product]]:
    """(name, (the product in NumPy, in PyTorch or None, its flops)) for every product of a step,
    as closures over random operands."""
    found = []
    for part in ("encoder", "decoder"):
        for i, layer in enumerate(getattr(model, part).layers):
            if isinstance(layer, Linear):
                name = f"{part}.{i} Linear({layer.d_in}→{layer.d_out})"
            elif isinstance(layer, (Conv2d, ConvTranspose2d)):
                kind = type(layer).__name__.removeprefix("Blocked")          # a twin: the layer it computes
                name = f"{part}.{i} {kind}({layer.in_channels}→{layer.out_channels})"
            else:
                continue
            found += [(f"{name}: {what}", product) for what, product in layer_products(layer, torch)]
    return found


def layer_products(layer: object, torch: Any = None) -> list[tuple[str, Product]]:
    """The products of one layer's forward and backward, with the operand orders of its code."""
    rng = np.random.default_rng(0)

    def r(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape, dtype=np.float32)

    def mm(a: np.ndarray, b: np.ndarray) -> Product:
        out = np.empty((a.shape[0], b.shape[1]), np.float32)
        flops = 2.0 * a.shape[0] * a.shape[1] * b.shape[1]
        if torch is None:
            return (lambda: np.matmul(a, b, out=out)), None, flops
        ta, tb, tout = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(out)   # the same memory
        return (lambda: np.matmul(a, b, out=out)), (lambda: torch.matmul(ta, tb, out=tout)), flops

    if isinstance(layer, Linear):                   # x (N, D_in), W (D_in, D_out), dy (N, D_out)
        x, W, dy = r(BATCH, layer.d_in), r(layer.d_in, layer.d_out), r(BATCH, layer.d_out)
        items = [("y = x W", mm(x, W)), ("dW = xᵀ dy", mm(x.T, dy)), ("dx = dy Wᵀ", mm(dy, W.T))]
    elif isinstance(layer, Conv2d):                 # cols X (M, k·k·C_in), W (C_out, k·k·C_in), dY (M, C_out)
        N, C_in, _, _ = layer.x_shape
        _, C_out, H_out, W_out = layer.y_shape
        M, K = N * H_out * W_out, layer.k * layer.k * C_in
        X, W, dY = r(M, K), r(C_out, K), r(M, C_out)
        items = [("Y = X Wᵀ", mm(X, W.T)), ("dW = dYᵀ X", mm(dY.T, X)), ("dX = dY W", mm(dY, W))]
    else:                                           # X (M, C_in), W (C_in, k·k·C_out), D (M, k·k·C_out)
        N, C_in, H, W_in = layer.x_shape
        M, K = N * H * W_in, layer.k * layer.k * layer.out_channels
        X, W, D = r(M, C_in), r(C_in, K), r(M, K)
        items = [("cols = X W", mm(X, W)), ("dW = Xᵀ D", mm(X.T, D)), ("dx = D Wᵀ", mm(D, W.T))]
    return items if layer.input_grad else items[:2]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1])
    p.add_argument("--repeats", type=int, default=30, help="timed calls per product (median)")
    p.add_argument("--steps", type=int, default=30, help="timed training steps (median)")
    p.add_argument("--torch", action="store_true", help="also time each product in PyTorch's BLAS")
    args = p.parse_args()
    torch = None
    if args.torch:
        try:
            import torch
        except ImportError:
            p.error("--torch needs PyTorch: pip install torch==2.13.0 (docs/benchmarks.md)")
    model = conv_vae()
    rng = np.random.default_rng(1)
    x = rng.random((BATCH, 28 * 28), dtype=np.float32)
    adam = Adam(model.params, lr=1e-3, fused_update=model.ops.adam_update)     # as the trainer runs it

    def step() -> None:
        model.loss_and_grads(x, rng.standard_normal((BATCH, LATENT), dtype=np.float32), check_finite=False)
        adam.step()

    step()                                          # every layer now knows its shapes
    found = products(model, torch)
    for threads in args.threads:
        if torch is not None:
            torch.set_num_threads(threads)
        with threadpool_limits(threads):
            print(f"BLAS threads: {threads}" + ("; PyTorch's BLAS on as many (right-hand columns)" if torch else ""))
            total_ms, total_flops, torch_ms = 0.0, 0.0, 0.0
            for name, (f, f_torch, flops) in found:
                f()                                 # warm up
                ms = median_ms(f, args.repeats)
                total_ms, total_flops = total_ms + ms, total_flops + flops
                line = f"  {name:62s} {ms:7.3f} ms {flops / ms / 1e6:7.1f} GFLOP/s"
                if f_torch is not None:
                    f_torch()
                    ms = median_ms(f_torch, args.repeats)
                    torch_ms += ms
                    line += f"   {ms:7.3f} ms {flops / ms / 1e6:7.1f} GFLOP/s"
                print(line)
            square_ms = median_ms(lambda: np.matmul(SQUARE, SQUARE), 3)
            step_ms = median_ms(step, args.steps)
            print(f"  GEMM floor: {total_ms:.2f} ms per step, {total_flops / 1e9:.3f} GFLOP, "
                  f"{total_flops / total_ms / 1e6:.1f} GFLOP/s")
            print(f"  for scale, one 2048×2048 product: {2 * 2048 ** 3 / square_ms / 1e6:.1f} GFLOP/s")
            if torch is not None:
                square = torch.from_numpy(SQUARE)
                torch_square_ms = median_ms(partial(torch.matmul, square, square), 3)
                print(f"  the same products in PyTorch's BLAS: {torch_ms:.2f} ms per step, "
                      f"{total_flops / torch_ms / 1e6:.1f} GFLOP/s; its 2048×2048 product "
                      f"{2 * 2048 ** 3 / torch_square_ms / 1e6:.1f} GFLOP/s")
            print(f"  training step (forward, backward, Adam): {step_ms:.2f} ms; "
                  f"outside the products: {step_ms - total_ms:.2f} ms ({1 - total_ms / step_ms:.0%})")


if __name__ == "__main__":
    main()
