"""The models the trainer can build, by name, and how a run's flags become a model.

    MODELS = {"vae": VAE, "cvae": ConditionalVAE, "ae": Autoencoder}

A run's ``iwae_k`` = K ≥ 1 trains the vae on the importance-weighted bound L_K instead of the
ELBO: the class is then IWAE (tinyvae/iwae.py), the same networks with another objective.

Every class keeps one contract (tinyvae/likelihood.py), so the trainer, the checkpoints
and the evaluation treat them alike. Checkpoints store the class name ("VAE", "IWAE",
"ConditionalVAE", "Autoencoder") and ``config()``; :func:`model_from_config` rebuilds it.
"""

from __future__ import annotations

from typing import Any

from tinyvae.autoencoder import Autoencoder
from tinyvae.backend import Backend
from tinyvae.cvae import ConditionalVAE
from tinyvae.iwae import IWAE
from tinyvae.vae import VAE

MODELS: dict[str, type] = {"vae": VAE, "cvae": ConditionalVAE, "ae": Autoencoder}
MODEL_CLASSES: dict[str, type] = {cls.__name__: cls for cls in [*MODELS.values(), IWAE]}


def model_for_run(run: Any, input_dim: int, backend: Backend, n_classes: int = 10, dtype: str = "float32") -> Any:
    """The model a run config (tinyvae.trainer.RunConfig, or anything with its fields) asks for."""
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
    common = dict(input_dim=input_dim, hidden=run.hidden, latent_dim=run.latent_dim, activation=run.activation,
                  likelihood=run.likelihood, sigma=run.sigma, dtype=dtype, backend=backend, seed=run.seed)
    if run.model == "ae":
        return Autoencoder(**common, noise=run.noise, noise_level=run.noise_level, sparsity=run.sparsity,
                           sparsity_weight=run.sparsity_weight, sparsity_target=run.sparsity_target)
    if run.model == "cvae":
        return ConditionalVAE(**common, beta=run.beta, free_bits=run.free_bits, n_classes=n_classes)
    if iwae_k:
        return IWAE(**common, k=iwae_k)
    return VAE(**common, beta=run.beta, free_bits=run.free_bits)


def model_from_config(class_name: str, config: dict[str, Any], backend: Backend | str = "cpu") -> Any:
    """Rebuild a model from its class name and ``config()`` (what a checkpoint stores)."""
    if class_name not in MODEL_CLASSES:
        raise ValueError(f"no model class called {class_name!r}: tinyvae has {', '.join(MODEL_CLASSES)}")
    return MODEL_CLASSES[class_name](**config, backend=backend)
