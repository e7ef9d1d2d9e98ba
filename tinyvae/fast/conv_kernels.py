"""col2im's scatter-add as one compiled loop (Numba): the CPU twin of ``Im2col.col2im``'s reference.

The reference (tinyvae/nn/im2col.py) adds the k·k kernel offsets one strided NumPy addition at a
time. Each addition is fine on its own, but NumPy walks it in runs of only C numbers (the
channels), and k·k of them sweep the whole patch matrix and the whole image again and again.
``col2im_add`` below does the same additions, for one example at a time, so the image of that
example stays in the cache while all its patches are added in.

It is the reference's arithmetic in the reference's order: every pixel starts at 0 and receives
its contributions in the order of the kernel offsets (i, j), i outer, exactly as the reference's
loop adds them, so the two give the same bits (``tests/test_conv.py`` checks it, in float32
and float64). Without Numba ``compiled_col2im_add`` returns None and ``col2im`` runs its
reference. The GPU runs the reference (CuPy); measurements are in docs/benchmarks.md.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from functools import cache

import numpy as np


def col2im_add(patches: np.ndarray, x_pad: np.ndarray, stride: int) -> None:
    """x_pad[n, s·u + i, s·v + j, c] += patches[n, u, v, i, j, c] for every index, in place.

    patches (N, H_out, W_out, k, k, C), x_pad (N, H_pad, W_pad, C), both channels-last. For one
    pixel, the offsets (i, j) arrive in the reference's order: i, then j, ascending.
    """
    N, H_out, W_out, k, _, C = patches.shape
    s = stride
    for n in range(N):
        for i in range(k):
            for u in range(H_out):
                for j in range(k):
                    for v in range(W_out):
                        for c in range(C):
                            x_pad[n, s * u + i, s * v + j, c] += patches[n, u, v, i, j, c]


@cache
def compiled_col2im_add() -> Callable[[np.ndarray, np.ndarray, int], None] | None:
    """``col2im_add`` compiled by Numba (cached on disk where a folder can be written), or None without Numba."""
    try:
        import numba
    except ImportError:
        return None
    with contextlib.suppress(RuntimeError):        # raised where no folder for the cache can be written
        return numba.njit(cache=True)(col2im_add)
    return numba.njit(col2im_add)                  # then compile afresh in each process
