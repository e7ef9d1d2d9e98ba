"""A fast twin of ``model.loss_and_grads`` for several CPU cores: the batch cut into shares, one thread each.

The reference is the model's own ``loss_and_grads(x, noise)`` on the whole batch (N rows). When
the objective is a batch mean of per-example terms (``model.splits_over_examples()``)::

    L = 1/N Σ_n ℓ_n = Σ_i (N_i / N) · L_i,        L_i = 1/N_i Σ_{n in share i} ℓ_n

so its gradient is the size-weighted mean of the shares' gradients, ∇L = Σ_i (N_i / N) · ∇L_i.
Each share is computed by a replica of the model: the same layers, reading the model's weights
(``Parameters.share_data``), with its own gradient buffer and its own caches for backward. The
model itself computes share 0 on the calling thread; the replicas run at the same time on worker
threads. NumPy's array loops, each BLAS call (one BLAS thread per share) and the compiled twins
(``nogil``) release Python's lock, so W shares use W cores for the whole step, not only inside
the matrix products. Rows, noise and labels are cut the same way, so every example sees the same
numbers as in the reference; the sums are grouped differently, so the result equals the
reference up to rounding (tests/test_data_parallel.py).

Where it is used, and what it gains: tinyvae/fast/__init__.py (``split_step``) and
docs/benchmarks.md.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from tinyvae.models.likelihood import ELBO
from tinyvae.models.registry import model_from_config

__all__ = ["DataParallel", "share_bounds"]


def share_bounds(n: int, shares: int) -> list[tuple[int, int]]:
    """Rows [start, stop) of each share: ``shares`` nearly equal, contiguous parts of n rows, none empty."""
    edges = np.linspace(0, n, min(shares, n) + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]


class DataParallel:
    """``loss_and_grads`` of ``model`` computed in ``workers`` shares at once (see the module docstring)."""

    def __init__(self, model: Any, workers: int) -> None:
        if workers < 2:
            raise ValueError(f"data parallelism needs at least 2 workers, got {workers}")
        if not model.splits_over_examples():
            raise ValueError(f"{model!r}: its objective does not split over examples")
        self.model = model
        self.replicas = [model]
        for _ in range(workers - 1):
            replica = model_from_config(type(model).__name__, model.config(), model.backend)
            replica.params.share_data(model.params)
            self.replicas.append(replica)
        self.pool = ThreadPoolExecutor(workers - 1, thread_name_prefix="tinyvae-share")

    @property
    def workers(self) -> int:
        return len(self.replicas)

    def loss_and_grads(self, x: Any, noise: Any = None, check_finite: bool = True, labels: Any = None) -> ELBO:
        """As ``model.loss_and_grads``: the batch's objective, and its gradient in ``model.params.grad``."""
        model, N = self.model, x.shape[0]
        bounds = share_bounds(N, self.workers)                               # fewer than the workers if N is small
        replicas = self.replicas[1:len(bounds)]
        for replica in replicas:
            replica.kl_weight = getattr(model, "kl_weight", 1.0)          # KL annealing's w of this step
        futures = [self.pool.submit(self._share, replica, x, noise, labels, check_finite, rows)
                   for replica, rows in zip(replicas, bounds[1:], strict=True)]
        parts = [self._share(model, x, noise, labels, check_finite, bounds[0])]
        parts += [future.result() for future in futures]
        grad = model.params.grad                                             # (P,): ∇L_0 so far
        grad *= (bounds[0][1] - bounds[0][0]) / N
        for replica, (start, stop) in zip(replicas, bounds[1:], strict=True):
            share_grad = replica.params.grad                                 # ∇L_i, rewritten by its next backward,
            share_grad *= (stop - start) / N                                 # so it is scaled in place
            grad += share_grad                                               # + (N_i/N)·∇L_i
        recon = model.xp.concatenate([recon for recon, _ in parts])          # (N,)
        kl = model.xp.concatenate([kl for _, kl in parts])                   # (N,)
        return model._elbo(recon, kl)

    @staticmethod
    def _share(replica: Any, x: Any, noise: Any, labels: Any, check_finite: bool,
               rows: tuple[int, int]) -> tuple[Any, Any]:
        """Forward and backward of one share: its per-example terms (N_i,), its gradient in the replica's buffer."""
        start, stop = rows
        noise = None if noise is None else noise[start:stop]
        labels = None if labels is None else labels[start:stop]
        parts = replica.forward(x[start:stop], noise, check_finite, labels=labels)
        replica.backward()
        return parts

    def close(self) -> None:
        """Stop the worker threads."""
        self.pool.shutdown(wait=True)
