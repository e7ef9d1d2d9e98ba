"""The reparameterization trick (Kingma & Welling 2014, §2.4).

Sampling z ~ N(mu, σ²) is not differentiable in mu and σ; writing the sample as a
deterministic function of fresh noise is::

    eps ~ N(0, I)                    drawn ONCE per forward (or passed in), kept for backward
    std = exp(½ · logvar)            σ, from the log-variance the encoder outputs
    z   = mu + std · eps

so that, for dz = dL/dz::

    dL/dmu     = dz
    dL/dlogvar = dz · ½ · std · eps  = ½ · dz · (z − mu)

Note the ½: the encoder outputs a log-VARIANCE, so std = exp(½·logvar), never exp(logvar).
"""

from __future__ import annotations

from typing import Any

from tinyvae.backend import array_module
from tinyvae.nn.base import Array


class Reparameterize:
    """z = mu + exp(½·logvar) · eps, with its backward. No parameters."""

    def forward(self, mu: Array, logvar: Array, eps: Array | None = None, rng: Any = None) -> Array:
        """mu, logvar: (N, J). ``eps`` (N, J) is drawn from ``rng`` when not given."""
        xp = array_module(mu)
        self.eps = eps = self.noise_for(mu, eps, rng)  # (N, J), never redrawn in backward
        ### BEGIN SOLUTION
        self.std = xp.exp(0.5 * logvar)                # (N, J)
        z = mu + self.std * eps                        # (N, J)
        ### END SOLUTION
        return z

    @staticmethod
    def noise_for(mu: Array, eps: Array | None, rng: Any) -> Array:
        """``eps`` checked against mu's shape, or a fresh draw from ``rng`` when it is None."""
        if eps is None:
            if rng is None:
                raise ValueError("Reparameterize.forward needs either eps or an rng to draw it from")
            return rng.standard_normal(mu.shape, dtype=mu.dtype)
        if tuple(eps.shape) != tuple(mu.shape):
            raise ValueError(f"eps has shape {tuple(eps.shape)} but mu has shape {tuple(mu.shape)}")
        return eps

    def backward(self, dz: Array) -> tuple[Array, Array]:
        """dz: (N, J). Returns dL/dmu and dL/dlogvar, both (N, J)."""
        ### BEGIN SOLUTION
        dmu = dz
        dlogvar = 0.5 * dz * self.std * self.eps
        ### END SOLUTION
        return dmu, dlogvar
