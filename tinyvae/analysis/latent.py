"""Walking the latent space: interpolation between two inputs, traversals one dimension at a time.

    python -m tinyvae.analysis.latent runs/digits                     # interpolation_*.png, traversal.png

Interpolation between codes z₀, z₁ (J,) at t ∈ [0, 1]::

    lerp:   z(t) = (1 − t) z₀ + t z₁
    slerp:  z(t) = sin((1 − t)Ω)/sin Ω · z₀ + sin(tΩ)/sin Ω · z₁,   cos Ω = z₀·z₁ / (|z₀| |z₁|)

Under the prior N(0, I) in J dimensions almost all mass lies near the sphere |z| ≈ √J;
the straight line between two such points cuts inside it (at t = ½ the norm of the midpoint
of two orthogonal codes is |z|/√2), where the decoder saw few codes in training. Slerp
follows the great circle instead and keeps the norm when |z₀| = |z₁| (White 2016,
"Sampling generative networks"). When z₀ and z₁ are (nearly) parallel, sin Ω → 0 and
slerp falls back to lerp, its limit.

A traversal decodes z with one coordinate j swept over a range of values and the others held
at a base code (the posterior mean of an input): what each latent dimension controls. For a
β-VAE with large β, traversals of the active dimensions tend to change one factor at a time.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from tinyvae.analysis import viz
from tinyvae.backend import BACKEND_NAMES, BackendError, array_module
from tinyvae.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, parser, positive_int, unwritable
from tinyvae.data.loading import DataError, to_float
from tinyvae.nn.base import Array
from tinyvae.training.checkpoint import CheckpointError
from tinyvae.training.runs import open_run

METHODS = ("lerp", "slerp")
PARALLEL = 1e-6       # sin Ω below this: slerp is lerp


def lerp(z0: Array, z1: Array, t: Array) -> Array:
    """Points on the segment from z0 to z1 (J,) at the fractions t (T,): (T, J)."""
    t = t[:, None]
    return (1.0 - t) * z0[None, :] + t * z1[None, :]


def slerp(z0: Array, z1: Array, t: Array) -> Array:
    """Spherical interpolation from z0 to z1 (J,) at the fractions t (T,): (T, J) (module docstring)."""
    xp = array_module(z0)
    cos = float((z0 @ z1) / max(float(xp.linalg.norm(z0) * xp.linalg.norm(z1)), 1e-300))
    omega = float(np.arccos(np.clip(cos, -1.0, 1.0)))
    sin_omega = float(np.sin(omega))
    if sin_omega < PARALLEL:
        return lerp(z0, z1, t)
    t = t[:, None]
    return (xp.sin((1.0 - t) * omega) * z0[None, :] + xp.sin(t * omega) * z1[None, :]) / sin_omega


def interpolate(model: Any, x0: Array, x1: Array, steps: int = 10, method: str = "lerp",
                labels: Any = None) -> Array:
    """Decoded images (steps, D) along the path between the codes of x0 and x1 (each (D,)).

    The codes are the posterior means (a VAE) or the codes (an autoencoder); ``labels``, two
    classes, go to a conditional model and are held at the first one's along the path.
    """
    if method not in METHODS:
        raise ValueError(f"unknown interpolation {method!r}: choose one of {', '.join(METHODS)}")
    xp = model.xp
    pair = model.xp.stack([xp.asarray(x0, dtype=model.dtype), xp.asarray(x1, dtype=model.dtype)])   # (2, D)
    mu = model.encode(pair, labels)[0]                                                               # (2, J)
    t = xp.linspace(0.0, 1.0, steps, dtype=model.dtype)
    z = (lerp if method == "lerp" else slerp)(mu[0], mu[1], t)
    return model.decode(z, None if labels is None else xp.full(steps, int(labels[0]), dtype=np.int64))


def traverse(model: Any, z: Array, dims: list[int] | None = None, values: Array | None = None,
             labels: Any = None) -> Array:
    """Decoded images (len(dims)·V, D): row r sweeps dimension dims[r] of the base code z (J,) over
    ``values`` (V,) (default: 9 values from −3 to 3), every other coordinate held fixed."""
    xp = model.xp
    dims = list(range(model.latent_dim)) if dims is None else list(dims)
    values = xp.linspace(-3.0, 3.0, 9, dtype=model.dtype) if values is None else xp.asarray(values, model.dtype)
    codes = xp.repeat(xp.asarray(z, dtype=model.dtype)[None, :], len(dims) * values.shape[0], axis=0)
    for r, j in enumerate(dims):
        codes[r * values.shape[0]:(r + 1) * values.shape[0], j] = values
    return model.decode(codes, None if labels is None else xp.full(codes.shape[0], int(labels), dtype=np.int64))


def by_activity(mu: np.ndarray) -> list[int]:
    """Latent dimensions ordered by their activity Var_x(mu_j), most active first."""
    return [int(j) for j in np.argsort(-np.asarray(mu).var(axis=0), kind="stable")]


def write_figures(model: Any, x: Array, labels: np.ndarray | None, image_shape: tuple[int, int], out: Path,
                  pairs: int = 4, steps: int = 10, dims: int = 8) -> list[str]:
    """interpolation_lerp.png, interpolation_slerp.png and traversal.png from test images x (N, D)."""
    to_numpy, names = model.backend.to_numpy, []
    cond = model.conditional
    for method in METHODS:
        rows = [interpolate(model, x[2 * i], x[2 * i + 1], steps, method,
                            labels[2 * i:2 * i + 2] if cond else None) for i in range(pairs)]
        names.append(f"interpolation_{method}.png")
        viz.plot_image_rows(to_numpy(model.xp.concatenate(rows)), image_shape, out / names[-1],
                            [f"pair {i + 1}" for i in range(pairs)], f"{method}: decoded path between two test images")
    mu = model.encode(x, labels if cond else None)[0]
    order = by_activity(to_numpy(mu))[:dims]
    values = np.linspace(-3.0, 3.0, 9)
    images = traverse(model, mu[0], order, values, int(labels[0]) if cond else None)
    names.append("traversal.png")
    viz.plot_image_rows(to_numpy(images), image_shape, out / names[-1], [f"z{j}" for j in order],
                        "traversals of the most active dimensions, z_j from −3 to 3 around a test image's code")
    return names


def main(argv: list[str] | None = None) -> int:
    p = parser("python -m tinyvae.analysis.latent", __doc__.split("\n\n")[0])
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a run folder or its checkpoint.npz")
    p.add_argument("--pairs", type=positive_int, default=4,
                   help="pairs of test images to interpolate between (default 4)")
    p.add_argument("--steps", type=positive_int, default=10, help="images along each path (default 10)")
    p.add_argument("--dims", type=positive_int, default=8,
                   help="latent dimensions to traverse, most active first (default 8)")
    p.add_argument("--device", choices=BACKEND_NAMES, default="cpu", help="where to compute (default cpu)")
    p.add_argument("--data-dir", help="folder holding the dataset files (else $TINYVAE_DATA, the cache, a download)")
    p.add_argument("--out", help="folder for the figures (default: the checkpoint's)")
    args = p.parse_args(argv)
    try:
        model, checkpoint, dataset, test, test_max, _ = open_run(args.checkpoint, args.device, args.data_dir)
    except (BackendError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILED
    if 2 * args.pairs > len(test):
        print(f"error: --pairs {args.pairs} needs {2 * args.pairs} test images; the test set has {len(test)}.",
              file=sys.stderr)
        return EXIT_USAGE
    out = Path(args.out) if args.out else checkpoint.path.parent
    problem = unwritable(out)
    if problem is not None:
        print(f"error: {problem}, and the figures are all this command makes: pass --out DIR.", file=sys.stderr)
        return EXIT_USAGE
    n = min(len(test), max(2 * args.pairs, 1000))
    x = to_float(model.backend.asarray(test[:n]), test_max, model.dtype)
    try:
        names = write_figures(model, x, dataset.test_labels[:n], dataset.image_shape, out, args.pairs, args.steps,
                              min(args.dims, model.latent_dim))
    except OSError as err:
        print(f"error: could not write the figures in {out} ({err.strerror or err}).", file=sys.stderr)
        return EXIT_FAILED
    print(f"wrote {', '.join(names)} in {out}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
