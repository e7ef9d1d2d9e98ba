"""The models the trainer can build, by name, and how a run's flags become a model.

    MODELS = {"vae": VAE, "cvae": ConditionalVAE, "ae": Autoencoder, "m2": M2}

``m2`` is the semi-supervised model (tinyvae/models/m2.py); its run's ``labels`` says how many
training examples keep their label. A run's ``iwae_k`` = K ≥ 1 trains the vae on the
importance-weighted bound L_K instead of the ELBO: the class is then IWAE (tinyvae/models/iwae.py),
the same networks with another objective.

Every class keeps one contract (tinyvae/models/likelihood.py), so the trainer, the checkpoints
and the evaluation treat them alike. Checkpoints store the class name ("VAE", "IWAE",
"ConditionalVAE", "Autoencoder", "M2") and ``config()``; :func:`model_from_config` rebuilds it.
"""

from __future__ import annotations

from typing import Any

from tinyvae.backend import Backend
from tinyvae.models.autoencoder import Autoencoder
from tinyvae.models.cvae import ConditionalVAE
from tinyvae.models.iwae import IWAE
from tinyvae.models.m2 import M2
from tinyvae.models.vae import VAE

MODELS: dict[str, type] = {"vae": VAE, "cvae": ConditionalVAE, "ae": Autoencoder, "m2": M2}
M2_ALPHA = 0.1         # Kingma et al. (2014): α = 0.1·N, N the size of the training set
MODEL_CLASSES: dict[str, type] = {cls.__name__: cls for cls in [*MODELS.values(), IWAE]}


def model_for_run(run: Any, input_dim: int, backend: Backend, n_classes: int = 10, dtype: str = "float32",
                  image_shape: tuple[int, ...] | None = None, n_train: int = 0) -> Any:
    """The model a run config (tinyvae.training.trainer.RunConfig, or anything with its fields) asks for.

    ``image_shape`` (H, W) of the dataset's images is what a convolutional model (``run.arch``
    "conv") needs to see rows as images. ``n_train`` (the training set's size) sets M2's α: the
    paper's 0.1·n_train, spread over the run's ``labels`` labelled rows (tinyvae.models.m2).
    """
    if run.model not in MODELS:
        raise ValueError(f"unknown model {run.model!r}: choose one of {', '.join(MODELS)}")
    if run.model == "ae" and (run.beta != 1.0 or run.free_bits or run.kl_warmup or run.kl_cycles):
        raise ValueError("beta, free bits and KL annealing weigh a KL term: they are for the vae and cvae, not the ae")
    if run.model != "ae" and (run.noise != "none" or run.sparsity != "none"):
        raise ValueError(f"noise and sparsity are autoencoder options (model ae), not for the {run.model}")
    iwae_k = getattr(run, "iwae_k", 0)
    if iwae_k and (run.model != "vae" or run.beta != 1.0 or run.free_bits or run.kl_warmup or run.kl_cycles):
        raise ValueError("iwae_k trains the plain vae on the importance-weighted bound, which has no KL term: "
                         "it does not combine with another model, beta, free bits or KL annealing")
    labels = getattr(run, "labels", 0)
    if (run.model == "m2") != bool(labels):
        raise ValueError("--model m2 needs --labels N, the number of labelled training examples" if labels == 0
                         else f"labels (a labelled subset) are for the semi-supervised model m2, not the {run.model}")
    if run.model == "m2" and (run.beta != 1.0 or run.free_bits or run.kl_warmup or run.kl_cycles or iwae_k
                              or run.exclude_classes):
        raise ValueError("the m2 model trains on its own bound: it does not combine with beta, free bits, KL "
                         "annealing, iwae_k or exclude_classes")
    arch = getattr(run, "arch", "dense")
    if run.model == "m2" and arch == "conv":
        raise ValueError("the m2 model has dense networks only: arch conv is for the vae (iwae_k too), cvae and ae")
    common = dict(input_dim=input_dim, hidden=run.hidden, latent_dim=run.latent_dim, activation=run.activation,
                  likelihood=run.likelihood, sigma=run.sigma, dtype=dtype, backend=backend, seed=run.seed)
    if arch == "conv":
        common.update(arch="conv", image_shape=(1, *image_shape) if image_shape else None, channels=run.channels)
    if run.model == "ae":
        return Autoencoder(**common, noise=run.noise, noise_level=run.noise_level, sparsity=run.sparsity,
                           sparsity_weight=run.sparsity_weight, sparsity_target=run.sparsity_target)
    if run.model == "cvae":
        return ConditionalVAE(**common, beta=run.beta, free_bits=run.free_bits, n_classes=n_classes)
    if run.model == "m2":
        return M2(**common, n_classes=n_classes, alpha=M2_ALPHA * n_train / labels)
    if iwae_k:
        return IWAE(**common, k=iwae_k)
    return VAE(**common, beta=run.beta, free_bits=run.free_bits)


def model_from_config(class_name: str, config: dict[str, Any], backend: Backend | str = "cpu") -> Any:
    """Rebuild a model from its class name and ``config()`` (what a checkpoint stores)."""
    if class_name not in MODEL_CLASSES:
        raise ValueError(f"no model class called {class_name!r}: tinyvae has {', '.join(MODEL_CLASSES)}")
    return MODEL_CLASSES[class_name](**config, backend=backend)
