"""im2col's copy and col2im's scatter-add as compiled loops (Numba): the CPU twins of ``Im2col``'s references.

The references (tinyvae/nn/im2col.py) pad the image into a buffer, then copy the patches out of a
strided view (im2col) or add the k·k kernel offsets back one strided NumPy addition at a time
(col2im). Each step is fine on its own, but NumPy walks them in runs of only C numbers (the
channels), the padding costs a pass of its own, and col2im's k·k additions sweep the whole
patch matrix and the whole image again and again. The loops below do the same work one example
at a time, so that example's image stays in the cache, and read the padding as zeros instead
of building a padded copy. They run on one thread: split over the batch with ``numba.prange``,
their OpenMP threads and OpenBLAS's spin against each other (measured in docs/benchmarks.md).

They are the references' arithmetic in the references' order: im2col copies (there is no
arithmetic), and in col2im every pixel starts at 0 and receives its contributions in the order
of the kernel offsets (i, j), i outer, exactly as the reference's loop adds them; contributions
that land in the padding are skipped where the reference adds them to a border it then drops.
So the twins give the same bits (``tests/test_conv.py`` checks it, in float32 and float64).
Without Numba ``compiled_conv_kernels`` returns None and ``Im2col`` runs its references
(:func:`tinyvae.fast.conv_twins` chooses). The GPU runs the references (CuPy); measurements
are in docs/benchmarks.md.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from functools import cache
from typing import NamedTuple

import numpy as np


def im2col_copy(x: np.ndarray, cols: np.ndarray, kernel_size: int, stride: int, padding: int) -> None:
    """cols[n, u, v, i, (j, c)] = x_pad[n, s·u + i, (s·v + j, c)], 0 in the padding; written in place.

    x (N, H, W·C): the image channels-last, each row's (w, c) flattened; cols
    (N, H_out, W_out, k, k·C): the patch matrix with each patch row's (j, c) flattened. A patch
    row (i) is k·C neighbouring numbers of one image row, so most rows are one contiguous copy.
    """
    N, H, WC = x.shape
    _, H_out, W_out, k, kC = cols.shape
    C = kC // k
    s, p = stride, padding
    for n in range(N):
        for u in range(H_out):
            for i in range(k):
                h = s * u + i - p
                for v in range(W_out):
                    start = (s * v - p) * C                     # where the patch row begins in x[n, h]
                    if 0 <= h < H and start >= 0 and start + kC <= WC:
                        for t in range(kC):
                            cols[n, u, v, i, t] = x[n, h, start + t]
                    else:                                       # the row touches the padding
                        for t in range(kC):
                            q = start + t
                            cols[n, u, v, i, t] = x[n, h, q] if 0 <= h < H and 0 <= q < WC else 0


def col2im_add(patches: np.ndarray, x: np.ndarray, stride: int, padding: int) -> None:
    """x[n, s·u + i − p, s·v + j − p, c] += patches[n, u, v, i, j, c] for every index inside x, in place.

    patches (N, H_out, W_out, k, k, C), x (N, H, W, C), both channels-last; what falls in the
    padding is skipped. For one pixel, the offsets (i, j) arrive in the reference's order: i,
    then j, ascending.
    """
    N, H_out, W_out, k, _, C = patches.shape
    _, H, W, _ = x.shape
    s, p = stride, padding
    for n in range(N):
        for i in range(k):
            for u in range(H_out):
                h = s * u + i - p
                if h < 0 or h >= H:
                    continue
                for j in range(k):
                    for v in range(W_out):
                        w = s * v + j - p
                        if w < 0 or w >= W:
                            continue
                        for c in range(C):
                            x[n, h, w, c] += patches[n, u, v, i, j, c]


class ConvKernels(NamedTuple):
    """The compiled twins: ``im2col_copy`` and ``col2im_add``, with their signatures."""

    im2col_copy: Callable[[np.ndarray, np.ndarray, int, int, int], None]
    col2im_add: Callable[[np.ndarray, np.ndarray, int, int], None]


@cache
def compiled_conv_kernels() -> ConvKernels | None:
    """The two loops compiled by Numba (cached on disk where a folder can be written), or None without Numba."""
    try:
        import numba
    except ImportError:
        return None

    def compile_all(**options: bool) -> ConvKernels:
        return ConvKernels(*(numba.njit(nogil=True, **options)(f) for f in (im2col_copy, col2im_add)))

    with contextlib.suppress(RuntimeError):        # raised where no folder for the cache can be written
        return compile_all(cache=True)
    return compile_all()                           # then compile afresh in each process
