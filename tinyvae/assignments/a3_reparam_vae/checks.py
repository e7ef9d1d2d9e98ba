"""A3 checks, kept by the grader (not in the student release): the reparameterization and the VAE's backward.

The VAE cases build the same model in the worker and in the grader, load the same
parameters theta, and compare the loss and every parameter gradient (relative error 1e-6,
the tolerance of the whole-model gradient check).
"""

import numpy as np

from tinyvae.assignments.oracle import Case, Check
from tinyvae.models.vae import VAE

SMALL = {"input_dim": 12, "hidden": [8], "latent_dim": 3, "activation": "tanh", "dtype": "float64", "seed": 2}


def fixed_reparam(rng: np.random.Generator) -> dict:
    return {"mu": np.array([[1.0, -2.0]]), "logvar": np.log(np.array([[4.0, 0.25]])), "eps": np.array([[0.5, 2.0]])}


def random_reparam(rng: np.random.Generator) -> dict:
    return {name: rng.standard_normal((4, 3)) for name in ("mu", "logvar", "eps", "dz")}


def zero_reparam(rng: np.random.Generator) -> dict:
    return {"mu": np.zeros((2, 3)), "logvar": np.zeros((2, 3)), "dz": np.ones((2, 3))}


def vae_case(model: dict, clamped: bool = False, doubled: bool = False) -> Case:
    """The loss and gradients of VAE(**model) at its initial parameters (the last bias of logvar at −500 if clamped)."""
    model = {**SMALL, **model}

    def inputs(rng: np.random.Generator) -> dict:
        net = VAE(**model)
        if clamped:
            net.encoder.layers[-1].b[net.latent_dim:] = -500.0        # raw logvar far below LOGVAR_MIN
        x, eps = rng.random((5, net.input_dim)), rng.standard_normal((5, net.latent_dim))
        if doubled:                                                    # the same batch twice: the same mean gradient
            x, eps = np.concatenate([x, x]), np.concatenate([eps, eps])
        return {"theta": net.params.data.copy(), "x": x, "eps": eps}

    return Case("vae", inputs, {"model": model}, 1e-6)


CHECKS = (
    Check("test_reparameterize_forward_is_mu_plus_std_times_eps", 1, "public",
          (Case("reparameterize", fixed_reparam, {"backward": False}, 1e-12),)),
    Check("test_reparameterize_backward_passes_the_gradient_check", 3, "public",
          (Case("reparameterize", random_reparam),)),
    Check("test_negative_elbo_gradient_for_every_parameter", 3, "public", (vae_case({}),)),
    Check("noise is drawn once and kept for backward", 1, "hidden",
          (Case("reparameterize", zero_reparam, {"seed": 0}),)),
    Check("gradient with beta and gaussian likelihoods", 3, "hidden",
          (vae_case({"beta": 0.3, "activation": "softplus"}),
           vae_case({"likelihood": "gaussian", "sigma": 0.5, "beta": 3.0, "activation": "sigmoid"}),
           vae_case({"likelihood": "gaussian", "sigma": None, "beta": 0.5, "hidden": [7, 6]}))),
    Check("gradient is zero where logvar is clamped", 2, "hidden", (vae_case({}, clamped=True),)),
    Check("gradient is a batch mean", 1, "hidden", (vae_case({}, doubled=True),)),
)
