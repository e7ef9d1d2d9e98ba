"""A fused CPU kernel for Adam's update, compiled by Numba: one pass instead of twelve.

``optim.Adam._update`` is the reference: twelve whole-array NumPy operations over the flat
buffers (P = 652,824 numbers for the default 784-400-20 model). Each operation streams its
arrays through memory again, so the update is bound by memory traffic, not arithmetic, and
NumPy has no way to say "do these twelve things to each element, then move on".

``adam_update`` below says exactly that: a loop over the parameters doing Algorithm 1's
three lines to one number at a time. Numba compiles it to machine code that reads g, m, v, θ
once and writes m, v, θ once, using the CPU's vector instructions (how much that saves, with
the command that measured it: docs/benchmarks.md). The arithmetic is the reference's,
operation for operation in the same dtype, so the two give the same bits
(``tests/test_optim.py`` checks it).

Two choices (measured in docs/benchmarks.md):
- **One thread.** ``numba.prange`` would split the loop over both cores, but its OpenMP
  threads and OpenBLAS's (which run the matrix products) then spin against each other.
- **``error_model="numpy"``**: division by zero gives inf like NumPy instead of raising like
  Python, which takes a branch out of the loop so that the compiler can vectorize it.

Numba is optional (``pip install "tinyvae[fast]"``; the ``dev`` extra has it): without it
``compiled_adam_update`` returns None and Adam runs its NumPy reference. The student release
does not ship this file (it spells out A4's ``Adam._update``): there tinyvae.fast finds it
missing and Adam runs the students' own ``_update``. The GPU has its own twin, one CUDA
kernel (tinyvae/fast/cuda_kernels.py); tinyvae.fast chooses.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np


def adam_update(theta: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray,
                lr_t: np.floating, eps_t: np.floating, c1: np.floating, c2: np.floating) -> None:
    """Adam's update of every parameter i, in place: θ, g, m, v are (P,) arrays of one dtype::

        m_i ← m_i + c₁ (g_i − m_i)          c₁ = 1 − β₁
        v_i ← v_i + c₂ (g_i² − v_i)         c₂ = 1 − β₂
        θ_i ← θ_i − m_i / (√v_i + ε̂) · α_t

    with α_t, ε̂ the bias-corrected step size and epsilon (see optim.Adam). The scalars come
    in the arrays' dtype, so float32 arrays are updated in float32 arithmetic, as NumPy does,
    and each line does its operations in the reference's order.
    """
    for i in range(theta.shape[0]):
        m[i] += c1 * (g[i] - m[i])
        v[i] += c2 * (g[i] * g[i] - v[i])
        theta[i] -= m[i] / (np.sqrt(v[i]) + eps_t) * lr_t


@cache
def compiled_adam_update() -> Callable[..., None] | None:
    """``adam_update`` compiled by Numba, or None where Numba is not installed.

    Compiled on first call for each dtype (how long that takes: docs/benchmarks.md) and cached
    on disk next to this file (or in Numba's user cache folder), so later processes load it; where
    neither folder can be written, it is compiled afresh in each process. (A Numba too old
    for the installed NumPy refuses to import: that too returns None.)
    """
    try:
        import numba
    except ImportError:
        return None
    try:
        return numba.njit(cache=True, error_model="numpy")(adam_update)
    except RuntimeError:           # no writable folder for the cache: compile afresh in each process
        return numba.njit(error_model="numpy")(adam_update)
