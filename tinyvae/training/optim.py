"""Optimizers over the flat parameter buffer: SGD with momentum, and Adam.

Both read ``params.grad`` and update ``params.data`` in place with a few whole-array
operations (no per-layer loop): that is what the flat buffer is for.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from tinyvae.models.likelihood import check_number
from tinyvae.nn.params import Parameters


class SGD:
    """Stochastic gradient descent with (heavy-ball) momentum, as PyTorch defines it::

        v ← μ·v + g
        θ ← θ − lr·v

    With μ = 0 this is plain SGD: θ ← θ − lr·g.
    """

    def __init__(self, params: Parameters, lr: float = 0.01, momentum: float = 0.0) -> None:
        lr, momentum = check_number("lr", lr, above=0), check_number("momentum", momentum, minimum=0, below=1)
        self.params, self.lr, self.momentum = params, lr, momentum
        self.velocity = params.backend.xp.zeros_like(params.data)  # (P,)
        self.t = 0

    def step(self) -> None:
        theta, g, v = self.params.data, self.params.grad, self.velocity
        v *= self.momentum
        v += g
        theta -= self.lr * v
        self.t += 1

    def state_dict(self) -> dict[str, Any]:
        return {"t": self.t, "lr": self.lr, "momentum": self.momentum,
                "velocity": self.params.backend.to_numpy(self.velocity)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.t, self.lr, self.momentum = int(state["t"]), float(state["lr"]), float(state["momentum"])
        self.velocity[...] = self.params.backend.asarray(state["velocity"], dtype=self.params.dtype)


class Adam:
    """Adam, Algorithm 1 of Kingma & Ba (2014), with bias correction::

        t ← t + 1
        m ← β₁·m + (1 − β₁)·g              first moment (mean of g)
        v ← β₂·v + (1 − β₂)·g²             second moment (uncentered variance of g)
        m̂ = m / (1 − β₁ᵗ),   v̂ = v / (1 − β₂ᵗ)      bias correction: m, v start at 0
        θ ← θ − α · m̂ / (√v̂ + ε)

    The last two lines are computed as θ ← θ − α_t · m / (√v + ε̂) with
    α_t = α·√(1 − β₂ᵗ)/(1 − β₁ᵗ) and ε̂ = ε·√(1 − β₂ᵗ): multiply the top and bottom of
    the last line by √(1 − β₂ᵗ) to see it is the same number, in fewer passes.

    ``bias_correction=False`` uses α and ε as they are (to see what the correction is for).

    ``_update``, the reference, is 12 in-place passes over the flat buffers and allocates
    nothing (written naively, ``m = b1*m + (1-b1)*g`` ..., it would allocate a temporary per
    operator). ``fused_update``, where given, is a compiled twin of ``_update`` with the same
    arguments and arithmetic (the trainer hands Adam the one its model's backend has); without
    it, ``_update`` runs.
    The bias-corrected α_t and ε̂ are computed here on the host and handed to the update as numbers.
    """

    def __init__(self, params: Parameters, lr: float = 1e-3, beta1: float = 0.9,
                 beta2: float = 0.999, eps: float = 1e-8, bias_correction: bool = True,
                 fused_update: Callable[..., None] | None = None) -> None:
        lr, eps = check_number("lr", lr, above=0), check_number("eps", eps, minimum=0)
        beta1, beta2 = (check_number(name, b, minimum=0, below=1) for name, b in (("beta1", beta1), ("beta2", beta2)))
        self.params = params
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.xp = params.backend.xp
        self.m = self.xp.zeros_like(params.data)      # (P,)
        self.v = self.xp.zeros_like(params.data)      # (P,)
        self._tmp = self.xp.empty_like(params.data)   # (P,) scratch, so step() allocates nothing
        self.bias_correction = bias_correction
        self.t = 0
        self.fused_update = fused_update                          # None: _update runs

    def step(self) -> None:
        """One update of every parameter from ``params.grad``."""
        self.t += 1
        if self.bias_correction:
            ### BEGIN SOLUTION
            lr_t = self.lr * math.sqrt(1.0 - self.beta2 ** self.t) / (1.0 - self.beta1 ** self.t)
            eps_t = self.eps * math.sqrt(1.0 - self.beta2 ** self.t)
            ### END SOLUTION
        else:
            lr_t, eps_t = self.lr, self.eps
        if self.fused_update is not None:
            dtype = self.params.data.dtype.type                  # float32 arithmetic for float32 buffers
            self.fused_update(self.params.data, self.params.grad, self.m, self.v,
                         dtype(lr_t), dtype(eps_t), dtype(1.0 - self.beta1), dtype(1.0 - self.beta2))
        else:
            self._update(self.params.data, self.params.grad, self.m, self.v, self._tmp, lr_t, eps_t)

    def _update(self, theta: Any, g: Any, m: Any, v: Any, tmp: Any, lr_t: float, eps_t: float) -> None:
        """The in-place update of θ, m and v (all (P,)) given g; ``tmp`` is scratch."""
        xp, b1, b2 = self.xp, self.beta1, self.beta2
        ### BEGIN SOLUTION
        xp.subtract(g, m, out=tmp)               # m ← m + (1 − β₁)(g − m)
        tmp *= 1.0 - b1
        m += tmp
        xp.multiply(g, g, out=tmp)               # v ← v + (1 − β₂)(g² − v)
        tmp -= v
        tmp *= 1.0 - b2
        v += tmp
        xp.sqrt(v, out=tmp)                      # θ ← θ − α_t · m / (√v + ε̂)
        tmp += eps_t
        xp.divide(m, tmp, out=tmp)
        tmp *= lr_t
        theta -= tmp
        ### END SOLUTION

    def state_dict(self) -> dict[str, Any]:
        to_numpy = self.params.backend.to_numpy
        return {"t": self.t, "lr": self.lr, "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps,
                "bias_correction": self.bias_correction, "m": to_numpy(self.m), "v": to_numpy(self.v)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.t = int(state["t"])
        self.bias_correction = bool(state.get("bias_correction", True))
        self.lr, self.beta1 = float(state["lr"]), float(state["beta1"])
        self.beta2, self.eps = float(state["beta2"]), float(state["eps"])
        for name in ("m", "v"):
            value = np.asarray(state[name])
            if value.shape != (self.params.size,):
                raise ValueError(f"optimizer state {name!r} has shape {value.shape}, expected ({self.params.size},)")
            getattr(self, name)[...] = self.params.backend.asarray(value, dtype=self.params.dtype)
