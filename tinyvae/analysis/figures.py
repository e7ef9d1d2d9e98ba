"""The figures of a run folder: ask the model for host arrays, hand them to tinyvae.analysis.viz.

    reconstructions.png      test images above their reconstructions (every model)
    samples.png              VAE: 64 samples of z ~ N(0, I); ConditionalVAE: one row per class;
                             an autoencoder has no prior, so no samples
    loss_curve.png           train and test loss per epoch
    latent_scatter.png       with a 2-D latent: the test images' codes, coloured by class
    manifold.png             with a 2-D latent, unconditional VAE: decoded grid of z

Conditional models are given the test images' own labels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tinyvae.analysis import viz
from tinyvae.data.loading import Dataset, to_float
from tinyvae.models.cvae import class_samples

BATCH = 1000


def latent_means(model: Any, images: Any, max_value: int, labels: Any = None) -> np.ndarray:
    """Posterior means (VAE) or codes (autoencoder) of uint8 images (N, D) on the device: (N, J) on the host."""
    means = []
    for i in range(0, images.shape[0], BATCH):
        x = to_float(images[i:i + BATCH], max_value, model.dtype)
        means.append(model.backend.to_numpy(model.encode(x, None if labels is None else labels[i:i + BATCH])[0]))
    return np.concatenate(means)


def write_samples(model: Any, dataset: Dataset, path: Path, seed: int) -> bool:
    """samples.png for a model with a prior; False (nothing written) for an autoencoder."""
    to_numpy, shape, rng = model.backend.to_numpy, dataset.image_shape, model.backend.rng([seed, 3])
    if model.conditional:
        images, _ = class_samples(model, 8, rng)
        viz.plot_image_rows(to_numpy(images), shape, path, [f"y = {name}" for name in dataset.class_names],
                            "8 samples of each class, z ~ N(0, I)")
        return True
    if not model.generative:
        return False
    viz.plot_images(to_numpy(model.sample(64, rng=rng)), shape, path, "64 samples, z ~ N(0, I)")
    return True


def write_run_figures(model: Any, dataset: Dataset, test_x: Any, test_y: Any, max_value: int,
                      history: list[dict[str, Any]], out_dir: Path, seed: int) -> None:
    """Every figure of the run folder ``out_dir`` (see the module docstring)."""
    to_numpy, shape = model.backend.to_numpy, dataset.image_shape
    labels = test_y if model.conditional else None
    x = to_float(test_x[:32], max_value, model.dtype)
    viz.plot_reconstructions(to_numpy(x), to_numpy(model.reconstruct(x, None if labels is None else labels[:32])),
                             shape, out_dir / "reconstructions.png")
    write_samples(model, dataset, out_dir / "samples.png", seed)
    if history:
        viz.plot_loss_curve(history, out_dir / "loss_curve.png")
    if model.latent_dim == 2:
        n = min(5000, test_x.shape[0])
        mu = latent_means(model, test_x[:n], max_value, None if labels is None else labels[:n])
        viz.plot_latent_scatter(mu, dataset.test_labels[:n], out_dir / "latent_scatter.png", dataset.class_names,
                                "latent means of test images" if model.generative else "codes of test images")
        if model.generative and not model.conditional:
            viz.plot_manifold(lambda z: to_numpy(model.decode(model.backend.asarray(z))), shape,
                              out_dir / "manifold.png")
