"""Figures: image grids, loss curves, the latent space. Host arrays in, PNG files out.

Plotting never touches the model: callers pass NumPy arrays (or a ``decode`` function
for the manifold). Figures use matplotlib's object API (``Figure``, no pyplot), so
nothing here changes global state or needs a display, and every PNG is written
atomically.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from statistics import NormalDist
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from tinyvae.training.fileio import atomic_write


def save_figure(fig: Figure, path: str | os.PathLike) -> None:
    """Save ``fig`` as a PNG, atomically."""
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=100, bbox_inches="tight")


def image_grid(images: np.ndarray, image_shape: tuple[int, int], ncols: int, pad: int = 1) -> np.ndarray:
    """Tile images (N, H·W) into one (rows·(H+pad), ncols·(W+pad)) array, values clipped to [0, 1]."""
    h, w = image_shape
    n = images.shape[0]
    nrows = -(-n // ncols)
    grid = np.ones((nrows * (h + pad) + pad, ncols * (w + pad) + pad))
    for i, image in enumerate(np.clip(images, 0.0, 1.0)):
        r, c = divmod(i, ncols)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = \
            image.reshape(h, w)
    return grid


def _show_grid(grid: np.ndarray, title: str, size: float = 6.0) -> Figure:
    fig = Figure(figsize=(size, size * grid.shape[0] / grid.shape[1] + 0.4))
    ax = fig.add_subplot()
    ax.imshow(grid, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_title(title)
    ax.axis("off")
    return fig


def plot_images(images: np.ndarray, image_shape: tuple[int, int], path: str | os.PathLike,
                title: str = "", ncols: int = 8) -> None:
    """A grid of images (N, H·W) in [0, 1], e.g. 64 samples as 8×8."""
    save_figure(_show_grid(image_grid(images, image_shape, ncols), title), path)


def plot_reconstructions(originals: np.ndarray, reconstructions: np.ndarray, image_shape: tuple[int, int],
                         path: str | os.PathLike, ncols: int = 8) -> None:
    """Rows of test images, each row followed by its reconstructions (pytorch/examples style)."""
    n = originals.shape[0] - originals.shape[0] % ncols or originals.shape[0]
    rows = []
    for start in range(0, n, ncols):
        rows += [originals[start:start + ncols], reconstructions[start:start + ncols]]
    grid = image_grid(np.concatenate(rows), image_shape, ncols)
    save_figure(_show_grid(grid, "test images (odd rows) and their reconstructions (even rows)"), path)


def plot_loss_curve(history: Sequence[dict[str, Any]], path: str | os.PathLike) -> None:
    """Train and test negative ELBO per epoch, with the test reconstruction and KL parts."""
    epochs = [row["epoch"] for row in history]
    fig = Figure(figsize=(9, 3.5))
    ax_loss, ax_parts = fig.subplots(1, 2)
    ax_loss.plot(epochs, [row["train_loss"] for row in history], "o-", label="train")
    ax_loss.plot(epochs, [row["test_loss"] for row in history], "s-", label="test")
    ax_loss.set(xlabel="epoch", ylabel="negative ELBO (nats / example)", title="loss")
    ax_loss.legend()
    ax_parts.plot(epochs, [row["test_recon"] for row in history], "o-", label="reconstruction")
    ax_parts.plot(epochs, [row["test_kl"] for row in history], "s-", label="KL")
    ax_parts.set(xlabel="epoch", ylabel="nats / example", title="test loss, by part")
    ax_parts.legend()
    fig.tight_layout()
    save_figure(fig, path)


def plot_latent_scatter(z: np.ndarray, labels: np.ndarray, path: str | os.PathLike,
                        class_names: Sequence[str] | None = None, title: str = "latent means of test images") -> None:
    """Points z (N, 2) coloured by label."""
    fig = Figure(figsize=(6, 5))
    ax = fig.add_subplot()
    points = ax.scatter(z[:, 0], z[:, 1], c=labels, cmap="tab10", s=4, vmin=-0.5, vmax=9.5)
    colorbar = fig.colorbar(points, ax=ax, ticks=range(10))
    if class_names is not None:
        colorbar.ax.set_yticklabels(list(class_names)[:10])
    ax.set(xlabel="z₁", ylabel="z₂", title=title)
    save_figure(fig, path)


def plot_manifold(decode: Callable[[np.ndarray], np.ndarray], image_shape: tuple[int, int],
                  path: str | os.PathLike, n: int = 15) -> None:
    """Decode an n×n grid of 2-D latents placed at Gaussian quantiles (Kingma & Welling, Fig. 4).

    ``decode`` maps host z (n², 2) to host images (n², H·W).
    """
    quantiles = np.linspace(0.05, 0.95, n)
    values = np.array([NormalDist().inv_cdf(q) for q in quantiles])
    z = np.array([[zx, zy] for zy in values[::-1] for zx in values])
    grid = image_grid(decode(z), image_shape, n, pad=1 if image_shape[0] < 16 else 0)
    save_figure(_show_grid(grid, "decoded latent grid (Gaussian quantiles)"), path)


def plot_kl_per_dimension(kl: np.ndarray, activity: np.ndarray, threshold: float, path: str | os.PathLike) -> None:
    """Two bar charts over the latent dimensions j: the mean KL_j (nats) and the activity Var_x(mu_j)
    on a log scale with the threshold drawn; inactive dimensions (activity ≤ threshold) in grey."""
    j = np.arange(len(kl))
    colours = np.where(activity > threshold, "tab:blue", "tab:gray")
    fig = Figure(figsize=(max(6.0, 0.3 * len(kl) + 3), 5.5))
    ax_kl, ax_activity = fig.subplots(2, 1, sharex=True)
    ax_kl.bar(j, kl, color=colours)
    ax_kl.set(ylabel="KL (nats / example)", title=f"KL per latent dimension (total {float(np.sum(kl)):.2f} nats); "
                                                  f"grey: inactive")
    ax_activity.bar(j, np.maximum(activity, 1e-12), color=colours)
    ax_activity.axhline(threshold, color="tab:red", linestyle="--")
    ax_activity.set(yscale="log", xlabel="latent dimension j", ylabel="Var_x(mu_j)",
                    title=f"activity (dashed: the threshold {threshold:g})")
    ax_activity.set_xticks(j)
    fig.tight_layout()
    save_figure(fig, path)


# --- the VAE's family (docs/family.md) ----------------------------------------------------------

def plot_image_rows(images: np.ndarray, image_shape: tuple[int, int], path: str | os.PathLike,
                    row_labels: Sequence[str], title: str = "") -> None:
    """Images (R·C, H·W) as R rows of C, each row named on its left: class samples, interpolations,
    traversals."""
    rows = len(row_labels)
    ncols = images.shape[0] // rows
    grid = image_grid(images, image_shape, ncols)
    fig = _show_grid(grid, title, size=max(4.0, 0.55 * ncols + 1.5))
    ax = fig.axes[0]
    h = image_shape[0] + 1
    ax.axis("on")
    ax.set_xticks([])
    ax.set_yticks([1 + h * r + image_shape[0] / 2 - 0.5 for r in range(rows)], list(row_labels))
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    save_figure(fig, path)


def plot_score_histogram(normal: np.ndarray, anomalous: np.ndarray, path: str | os.PathLike,
                         score_name: str = "score", title: str = "") -> None:
    """Overlaid histograms of anomaly scores (N,) of normal and anomalous test examples, on shared bins."""
    bins = np.histogram_bin_edges(np.concatenate([normal, anomalous]), bins=40)
    fig = Figure(figsize=(7, 3.8))
    ax = fig.add_subplot()
    ax.hist(normal, bins=bins, alpha=0.6, density=True, label=f"normal ({len(normal)})")
    ax.hist(anomalous, bins=bins, alpha=0.6, density=True, label=f"anomalous ({len(anomalous)})")
    ax.set(xlabel=score_name, ylabel="density", title=title)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path)


def plot_rate_distortion(rates: Sequence[float], distortions: Sequence[float], betas: Sequence[float],
                         path: str | os.PathLike, title: str = "rate–distortion of β-VAEs (test set)") -> None:
    """Test reconstruction (distortion) against test KL (rate) for runs with different β, each point labelled."""
    fig = Figure(figsize=(6, 4.5))
    ax = fig.add_subplot()
    ax.plot(rates, distortions, "o-")
    for rate, distortion, beta in zip(rates, distortions, betas, strict=True):
        ax.annotate(f"β = {beta:g}", (rate, distortion), textcoords="offset points", xytext=(6, 4))
    ax.set(xlabel="rate: KL(q(z|x) ‖ p(z)) (nats / example)", ylabel="distortion: −log p(x|z) (nats / example)",
           title=title)
    fig.tight_layout()
    save_figure(fig, path)
