"""``--cuda-graph``: the whole training step recorded once as a CUDA graph, then replayed.

A CUDA graph is a recorded sequence of kernel launches that the GPU replays from a single
launch on the host. For a model this small a step is ~50 tiny kernels whose cost is the
Python and launch overhead between them, so replaying the recorded step removes most of
the step's time. What a step needs to be replayable:

* fixed shapes: only full batches replay; the last, smaller batch of an epoch runs eagerly;
* fixed addresses: the batch indices and the noise are copied into static buffers before
  each replay (the noise drawn outside the graph, so the random stream is the same as in
  an eager run); the parameters, gradients, Adam's moments and its t and step size
  (kept on the device by ``Adam``) live in fixed buffers already;
* no allocation while recording: one warm-up step, whose effects are then undone, compiles
  every kernel and fills a private memory pool that the recording reuses; the graph's
  temporary arrays live in that pool, which nothing else allocates from.

Everything here goes through ``xp`` (cupy), handed over by the trainer's backend. If the
driver or CuPy refuses the capture, :class:`GraphCaptureError` says why and the trainer
runs eagerly.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class GraphCaptureError(RuntimeError):
    """The step could not be captured; the message says why, in one sentence."""


class CapturedStep:
    """One training step of ``trainer`` (a tinyvae.trainer.Trainer), captured for replay."""

    def __init__(self, trainer: Any) -> None:
        xp, model, cfg = trainer.xp, trainer.model, trainer.config
        self.trainer, self.xp = trainer, xp
        B, D = cfg.batch_size, trainer.train_x.shape[1]
        self.idx = xp.zeros(B, dtype=np.int64)                                    # (B,) static inputs
        self.u = xp.zeros((B, D), dtype=model.dtype) if trainer.train_mode == "dynamic" else None
        self.eps = xp.zeros((B, cfg.latent_dim), dtype=model.dtype)
        self.loss = xp.zeros(1, dtype=np.float32)                                 # (1,) static output
        self.stream = xp.cuda.Stream(non_blocking=True)
        self.pool = xp.cuda.MemoryPool()
        self.graph = self._capture()

    def _state(self) -> list[Any]:
        """The device arrays a step changes (restored after the warm-up step)."""
        t = self.trainer
        return [t.model.params.data, t.optimizer.m, t.optimizer.v, t.optimizer._schedule, t._totals]

    def _capture(self) -> Any:
        xp, trainer = self.xp, self.trainer
        saved, t = [a.copy() for a in self._state()], trainer.optimizer.t
        try:
            with self.stream, xp.cuda.using_allocator(self.pool.malloc):
                trainer.train_step(self.idx, self.u, self.eps, self.loss)      # warm-up
                self.stream.synchronize()
                self.stream.begin_capture()
                try:
                    trainer.train_step(self.idx, self.u, self.eps, self.loss)  # recorded, not run
                finally:
                    graph = self.stream.end_capture()
        except Exception as err:  # CuPy raises several kinds (CUDARuntimeError, RuntimeError...)
            raise GraphCaptureError(f"{type(err).__name__}: {err}") from None
        finally:
            self.stream.synchronize()
            for array, copy in zip(self._state(), saved, strict=True):
                array[...] = copy                      # undo the warm-up step
            trainer.optimizer.t = t
            xp.cuda.get_current_stream().synchronize()
        return graph

    def replay(self, idx: Any, noise: Any) -> None:
        """One training step on the images ``idx`` (B,). Call inside ``with self.stream``."""
        self.idx[...] = idx
        if self.u is not None:
            noise.random(self.u.shape, dtype=self.u.dtype, out=self.u)
        noise.standard_normal(self.eps.shape, dtype=self.eps.dtype, out=self.eps)
        self.graph.launch(self.stream)
        self.trainer.optimizer.t += 1                  # the device's t advanced inside the graph
