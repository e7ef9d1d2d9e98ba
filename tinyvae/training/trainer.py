"""The training loop behind ``python -m tinyvae.train``.

One epoch, step by step::

    perm  = permutation of the training set, from the seed and the epoch number
    noise = a generator seeded with [seed, epoch, 1], drawn on the device
    for each batch of indices in perm:
        x   = pixels / max_value   (or a fresh Bernoulli draw with --binarize dynamic, drawn first)
        eps = model.draw_noise(noise, n)      (VAE: eps ~ N(0, I); denoising AE: its corruption)
        w   = the KL annealing weight of this step (tinyvae.training.annealing; 1 without a schedule)
        loss, grads = model.loss_and_grads(x, eps[, labels]);  Adam step

The model comes from tinyvae.models.registry by name (--model vae | cvae | ae | m2); a conditional model
also gets the batch's labels. M2 with a labelled batch (``labelled_batch`` L ≥ 1, the default) cuts
the epoch's batches from the unlabelled examples only and puts L labelled ones in front of each,
taken in turn from shuffles of the labelled subset (seeded by (seed, epoch, 2)), so that every
step sees labels however few there are; L = 0 treats the labelled examples like the rest.

After each epoch the test set is scored with the same noise
every epoch, and the active units of its posterior means are counted (tinyvae.analysis.metrics).

Because the shuffle and the noise are functions of (seed, epoch), and a mid-epoch
checkpoint also stores the noise generator's state and the step reached, a run that is
interrupted and resumed does exactly the same arithmetic as one that is not: on the CPU
the final weights are bitwise identical.

Losses are added up on the device and read back only every ``check_every`` steps (each
step on the CPU, where reading is free; every 50 on the GPU, where it waits for the
device), which is also when a NaN or infinite loss is noticed.
"""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from tinyvae import __version__
from tinyvae.analysis.figures import write_run_figures
from tinyvae.analysis.metrics import active_units
from tinyvae.backend import Backend, noise_state, restore_noise_state
from tinyvae.data.loading import Dataset, test_pixels, to_float, train_pixels
from tinyvae.fast import split_step, usable_cores
from tinyvae.models.m2 import UNLABELLED, labelled_subset
from tinyvae.models.registry import model_for_run
from tinyvae.training.annealing import kl_weight
from tinyvae.training.checkpoint import CHECKPOINT_NAME, Checkpoint, save_checkpoint
from tinyvae.training.fileio import write_json, write_jsonl
from tinyvae.training.optim import Adam

EVAL_BATCH = 1000
SHOW_EVERY = 25        # steps between updates of the progress bar's running loss
SMALL_STEP = 1e8       # multiply-adds per training step (forward and backward) below which BLAS gets one thread


@dataclass
class RunConfig:
    """Everything that defines a training run (saved as config.json and in the checkpoint)."""

    dataset: str = "mnist"
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    hidden: list[int] = field(default_factory=lambda: [400])
    latent_dim: int = 20
    activation: str = "relu"
    likelihood: str = "bernoulli"
    sigma: float | None = 1.0
    beta: float = 1.0
    binarize: str = "none"
    seed: int = 1
    model: str = "vae"                  # a name in tinyvae.models.registry.MODELS
    free_bits: float = 0.0              # λ, nats per latent dimension (0: off)
    kl_warmup: float = 0.0              # epochs of linear KL warm-up (0: off)
    kl_cycles: int = 0                  # cyclical KL annealing: cycles over the run (0: off)
    noise: str = "none"                 # autoencoder: "none", "gaussian" or "masking"
    noise_level: float = 0.3
    sparsity: str = "none"              # autoencoder: "none", "l1" or "kl"
    sparsity_weight: float = 0.1
    sparsity_target: float = 0.05
    exclude_classes: list[int] = field(default_factory=list)   # left out of the training set
    arch: str = "dense"                 # "dense" or "conv" (tinyvae.nn.conv_nets)
    channels: list[int] = field(default_factory=lambda: [32, 64])   # arch conv: channels of each convolution
    iwae_k: int = 0                     # K ≥ 1: train the vae on the IWAE bound L_K (0: the ELBO)
    labels: int = 0                     # m2: how many training examples keep their label (balanced, by seed)
    labelled_batch: int = 32            # m2: labelled examples added to every step (0: at their natural rate)


class Trainer:
    """Trains a model on a dataset, writing checkpoints, history and figures to ``out_dir``."""

    def __init__(self, config: RunConfig, dataset: Dataset, backend: Backend, out_dir: str | Path,
                 progress: bool | None = None, log: Callable[[str], None] = print) -> None:
        self.config, self.dataset, self.backend = config, dataset, backend
        self.out_dir, self.progress, self.log = Path(out_dir), progress, log
        self.xp = backend.xp
        self.model = model_for_run(config, dataset.input_dim, backend, n_classes=len(dataset.class_names),
                                   image_shape=dataset.image_shape, n_train=dataset.train_images.shape[0])
        self.optimizer = Adam(self.model.params, lr=config.lr, fused_update=self.model.ops.adam_update)
        self.parallel = split_step(self.model, config.batch_size)   # None, or the step split over the cores
        self._evaluation_threads: int | None = None
        self.annealing = config.kl_warmup > 0 or config.kl_cycles > 0
        kl_weight(0, 1, config.epochs, config.kl_warmup, config.kl_cycles)      # refuses two schedules at once

        self._put_data_on_the_device()

        self.epochs_done = 0
        self.history: list[dict[str, Any]] = []
        self.partial: dict[str, Any] | None = None            # a mid-epoch resume point
        self._totals = self.xp.zeros(3, dtype=np.float64)     # Σ n·(loss, recon, kl) over the epoch
        self.check_every = 50 if backend.is_gpu else 1
        self._stop_requested = False

    def _put_data_on_the_device(self) -> None:
        """The training and test images (uint8) and labels, on the backend's device.

        Binarization "static" happens once, here; with "dynamic" the training set is
        re-binarized every batch and the test set once. Excluded classes leave the training set;
        for m2 every label outside the labelled subset becomes UNLABELLED.
        """
        config, dataset, backend = self.config, self.dataset, self.backend
        test, self.test_max = test_pixels(dataset, config.binarize, config.seed)
        train, self.train_max = dataset.train_images, dataset.max_value      # "dynamic": drawn per batch
        if config.binarize == "static":
            train, self.train_max = train_pixels(dataset, config.binarize, config.seed)
        keep = self._kept_classes(dataset.train_labels, len(dataset.class_names))
        train, train_labels = train[keep], dataset.train_labels[keep]
        self.labelled: list[int] | None = None                 # m2: the training examples that keep their label
        self.sweep = np.arange(len(train_labels))              # the examples one epoch's batches are cut from
        self.labelled_batch = 0                                # m2: labelled examples in front of every batch
        if config.model == "m2":
            self.labelled = labelled_subset(train_labels, config.labels, len(dataset.class_names), config.seed).tolist()
            is_labelled = np.isin(np.arange(len(train_labels)), self.labelled)
            train_labels = np.where(is_labelled, train_labels, UNLABELLED)
            if not is_labelled.all():                          # (with every example labelled there is no sweep)
                self.labelled_batch = min(config.labelled_batch, config.labels)
            if self.labelled_batch:
                self.sweep = np.flatnonzero(~is_labelled)      # the labelled ones come in every step instead
        self.train_x = backend.asarray(train)                  # (N_train, D) uint8
        self.test_x = backend.asarray(test)                    # (N_test, D) uint8
        self.train_y = backend.asarray(train_labels.astype(np.int64))    # (N_train,) int64
        self.test_y = backend.asarray(dataset.test_labels.astype(np.int64))
        self.train_mode = "dynamic" if config.binarize == "dynamic" else "none"

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.sweep) / self.config.batch_size)

    @property
    def rows_per_epoch(self) -> int:
        """Rows one epoch trains on: the sweep, plus the labelled batch of every step."""
        return len(self.sweep) + self.steps_per_epoch * self.labelled_batch

    def _kept_classes(self, labels: np.ndarray, n_classes: int) -> np.ndarray:
        """(N,) bool: the training images whose class is not in ``exclude_classes``."""
        excluded = sorted(set(self.config.exclude_classes))
        if any(not 0 <= k < n_classes for k in excluded) or len(excluded) >= n_classes:
            raise ValueError(f"exclude_classes must name some, not all, of the classes 0..{n_classes - 1}, "
                             f"got {excluded}")
        return ~np.isin(labels, excluded)

    # ---------------------------------------------------------------- state
    def state(self, partial: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"epochs_done": self.epochs_done, "partial": partial, "history": self.history,
                "run": asdict(self.config), "dataset": self.dataset.name,
                **({"labelled": self.labelled} if self.labelled is not None else {})}

    def restore(self, checkpoint: Checkpoint) -> None:
        """Continue from a checkpoint written by this trainer."""
        self.model.params.load(checkpoint.params)
        self.optimizer.load_state_dict(checkpoint.optimizer)
        self.epochs_done = int(checkpoint.state["epochs_done"])
        self.history = list(checkpoint.state["history"])
        self.partial = checkpoint.state.get("partial")
        if self.labelled is not None and checkpoint.state.get("labelled") != self.labelled:
            raise ValueError("its labelled subset differs from the one this run's seed chooses")

    def save(self, partial: dict[str, Any] | None = None) -> None:
        save_checkpoint(self.out_dir / CHECKPOINT_NAME, self.model, self.optimizer, self.state(partial))

    def request_stop(self) -> None:
        """Finish the current step, save a mid-epoch checkpoint and return (what Ctrl-C does)."""
        self._stop_requested = True

    # ---------------------------------------------------------------- loop
    def fit(self, on_step: Callable[[int, int], None] | None = None) -> str:
        """Train until ``config.epochs``. Returns "done", "interrupted" or "nan".

        ``on_step(epoch, step)`` is called after every step (tests use it to interrupt).
        """
        previous_handler = None
        if threading.current_thread() is threading.main_thread():
            previous_handler = signal.signal(signal.SIGINT, self._on_sigint)
        threads = self.blas_threads()
        # a split step trains on one BLAS thread per share; evaluation (one share) gets BLAS's threads back
        self._evaluation_threads = usable_cores() if self.parallel is not None else None
        try:
            with threadpool_limits(limits=threads, user_api="blas") if threads else contextlib.nullcontext():
                while self.epochs_done < self.config.epochs:
                    outcome = self._train_epoch(self.epochs_done + 1, on_step)
                    if outcome != "done":
                        return outcome
            return "done"
        finally:
            if previous_handler is not None:
                signal.signal(signal.SIGINT, previous_handler)

    def blas_threads(self) -> int | None:
        """1 when a CPU step is small or split over the cores, else None (the BLAS library's own choice).

        For a small model a second BLAS thread gains nothing, and on a busy machine its
        spinning between calls can slow a step down many times over (docs/benchmarks.md); from
        about 10⁸ multiply-adds per step (pytorch/examples' model is 5·10⁸) two threads pay off.
        """
        if self.backend.is_gpu:
            return None
        if self.parallel is not None:
            return 1                                           # one BLAS thread for each share of the batch
        weights = sum(int(np.prod(shape)) for name, (_, shape) in self.model.params.layout.items()
                      if name.endswith(".W"))
        return 1 if 6 * self.config.batch_size * weights < SMALL_STEP else None

    def _on_sigint(self, signum: int, frame: Any) -> None:
        self.log("\ninterrupt: finishing this step, then saving a checkpoint (press Ctrl-C again to abort)")
        self._stop_requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def _train_epoch(self, epoch: int, on_step: Callable[[int, int], None] | None) -> str:
        """One pass over the training set, from a resume point if there is one."""
        cfg = self.config
        steps = self.steps_per_epoch
        perm, noise, start, seconds = self._begin_epoch(epoch)
        L = self.labelled_batch
        step_losses = self.xp.zeros(steps, dtype=np.float32)   # (steps,) on the device: where a NaN appeared
        bar = tqdm(total=steps, initial=start, desc=f"epoch {epoch}/{cfg.epochs}", unit="batch", leave=False,
                   disable=None if self.progress is None else not self.progress, file=sys.stderr)
        checked, tic = start, time.perf_counter()
        for step in range(start, steps):
            idx = perm[step * cfg.batch_size:(step + 1) * cfg.batch_size]
            if L:                                              # m2: this step's labelled rows first
                idx = self.xp.concatenate([self._labelled_stream[step * L:(step + 1) * L], idx])
            if self.annealing:
                self.model.kl_weight = kl_weight((epoch - 1) * steps + step, steps, cfg.epochs,
                                                 cfg.kl_warmup, cfg.kl_cycles)
            u, model_noise = self._draw_noise(noise, idx.shape[0])
            self.train_step(idx, u, model_noise, step_losses[step:step + 1])
            bar.update(1)
            if on_step is not None:
                on_step(epoch, step)
            if step + 1 - checked >= self.check_every or step + 1 == steps or self._stop_requested:
                outcome = self._check_losses(epoch, step_losses, checked, step + 1, bar)
                if outcome is not None:
                    return outcome
                checked = step + 1
            if self._stop_requested:
                bar.close()
                return self._interrupt(epoch, step + 1, steps, noise, seconds + time.perf_counter() - tic)
        self.backend.synchronize()
        bar.close()
        return self._end_epoch(epoch, seconds + time.perf_counter() - tic)

    def _check_losses(self, epoch: int, step_losses: Any, begin: int, end: int, bar: Any) -> str | None:
        """Read the losses of steps begin..end-1 back from the device (the only read-back of
        the loop): "nan" if one is not finite, else None, after showing the running loss."""
        recent = self.backend.to_numpy(step_losses[begin:end])
        if not np.all(np.isfinite(recent)):
            bad = begin + int(np.argmin(np.isfinite(recent)))
            bar.close()
            return self._stop_on_nan(epoch, bad, step_losses.shape[0], float(recent[bad - begin]))
        if end // SHOW_EVERY > begin // SHOW_EVERY or self.check_every >= SHOW_EVERY:
            done = min(self.rows_per_epoch, end * (self.config.batch_size + self.labelled_batch))
            bar.set_postfix(loss=f"{float(self._totals[0]) / done:.2f}")
        return None

    def _begin_epoch(self, epoch: int) -> tuple[Any, Any, int, float]:
        """This epoch's shuffle and noise generator, and where to start (0, or a resume point).

        The noise of epoch e is drawn from a generator seeded with [seed, e, 1]. A mid-epoch
        resume continues that generator from the checkpoint where its state could be saved
        (NumPy's). Where it could not (a checkpoint written on the GPU, or one resumed on the
        GPU), the rest of the epoch draws from a generator seeded with [seed, e, 1, step], and
        one line says that this run's noise now differs from an uninterrupted run's.
        """
        cfg = self.config
        perm = self.backend.asarray(self.sweep[np.random.default_rng([cfg.seed, epoch]).permutation(len(self.sweep))])
        if self.labelled_batch:
            self._labelled_stream = self.backend.asarray(self._labelled_order(epoch))
        noise = self.backend.rng([cfg.seed, epoch, 1])
        self._totals[...] = 0.0
        start, seconds = 0, 0.0
        if self.partial is not None and self.partial["epoch"] == epoch:
            start, seconds = self.partial["step"], self.partial["seconds"]
            self._totals[...] = self.backend.asarray(self.partial["totals"])
            if not restore_noise_state(noise, self.partial.get("noise_state")):
                noise = self.backend.rng([cfg.seed, epoch, 1, start])
                self.log(f"note: the checkpoint's noise generator cannot be continued on {self.backend.name}; the "
                         f"rest of epoch {epoch} draws its noise from (seed, epoch, step) = ({cfg.seed}, {epoch}, "
                         f"{start}), so this run is not bit-identical to an uninterrupted one")
        self.partial = None
        return perm, noise, start, seconds

    def _labelled_order(self, epoch: int) -> np.ndarray:
        """m2: the labelled examples of epoch ``epoch``'s steps, (steps·L,): shuffles of the
        labelled subset one after another (seeded by (seed, epoch, 2)), so each is seen equally often."""
        rng = np.random.default_rng([self.config.seed, epoch, 2])
        labelled, need = np.asarray(self.labelled), self.steps_per_epoch * self.labelled_batch
        shuffles = [labelled[rng.permutation(len(labelled))] for _ in range(-(-need // len(labelled)))]
        return np.concatenate(shuffles)[:need]

    def _draw_noise(self, noise: Any, n: int) -> tuple[Any, Any]:
        """The step's randomness, drawn before the step: u (n, D) ~ U[0, 1) for --binarize
        dynamic (else None), then the model's noise (VAE: eps (n, J) ~ N(0, I))."""
        u = noise.random((n, self.train_x.shape[1]), dtype=self.model.dtype) if self.train_mode == "dynamic" else None
        return u, self.model.draw_noise(noise, n)

    def train_step(self, idx: Any, u: Any, eps: Any, loss_out: Any) -> None:
        """One step on the training images ``idx``: forward, backward, Adam; all on the device.

        ``eps`` is the model's noise (``model.draw_noise``). Adds n·(loss, recon, KL) to the
        epoch's totals and writes the loss into ``loss_out`` (1,). Nothing here reads back to
        the host: on the GPU, the step only queues work (tests/test_train.py checks this).
        """
        model = self.model
        x = to_float(self.train_x[idx], self.train_max, model.dtype)   # (n, D) in [0, 1]
        if u is not None:
            x = (u < x).astype(model.dtype)                    # dynamic binarization: x ~ Bernoulli(x)
        labels = {"labels": self.train_y[idx]} if model.conditional else {}
        loss_and_grads = model.loss_and_grads if self.parallel is None else self.parallel.loss_and_grads
        elbo = loss_and_grads(x, eps, check_finite=False, **labels)
        self.optimizer.step()
        self._totals += self.xp.stack(elbo).astype(np.float64) * x.shape[0]
        loss_out[...] = elbo.loss

    def _interrupt(self, epoch: int, step: int, steps: int, noise: Any, seconds: float) -> str:
        """Save a mid-epoch checkpoint (what Ctrl-C asks for) and say how to resume."""
        self.backend.synchronize()
        partial = {"epoch": epoch, "step": step, "seconds": seconds,
                   "totals": self.backend.to_numpy(self._totals).tolist(),
                   "noise_state": noise_state(noise)}
        self.save(partial)
        self.write_figures()
        self.log(f"interrupted at epoch {epoch}, step {step} of {steps}; saved "
                 f"{self.out_dir / CHECKPOINT_NAME} — continue with --resume {self.out_dir}")
        return "interrupted"

    def _end_epoch(self, epoch: int, seconds: float) -> str:
        """Evaluate, record the epoch in the history, checkpoint, print the epoch's line."""
        cfg = self.config
        train = self.backend.to_numpy(self._totals) / self.rows_per_epoch
        threads = self._evaluation_threads
        with threadpool_limits(limits=threads, user_api="blas") if threads else contextlib.nullcontext():
            test = self.evaluate()
        row = {"epoch": epoch, "train_loss": float(train[1] + self.model.beta * train[2]),
               "train_recon": float(train[1]), "train_kl": float(train[2]), **test,
               "kl_weight": float(self.model.kl_weight) if self.annealing else 1.0,
               **({"train_neg_L_k": float(train[0])} if cfg.iwae_k else {}),       # the IWAE objective
               "train_seconds": round(seconds, 4)}
        self.history.append(row)
        self.epochs_done = epoch
        self.save()
        write_jsonl(self.out_dir / "history.jsonl", self.history)
        self.log(f"epoch {epoch:>3}/{cfg.epochs}  train {row['train_loss']:8.2f} "
                 f"(recon {row['train_recon']:.2f} + KL {row['train_kl']:.2f})  "
                 f"test {row['test_loss']:8.2f} (recon {row['test_recon']:.2f} + KL {row['test_kl']:.2f})  "
                 f"AU {row['active_units']}/{self.model.latent_dim}  "
                 + (f"error {100 * row['test_error']:.1f}%  " if "test_error" in row else "")
                 + (f"w {row['kl_weight']:.2f}  " if self.annealing else "") + f"{seconds:.2f} s")
        return "done"

    def _stop_on_nan(self, epoch: int, step: int, steps: int, value: float) -> str:
        where = (f"the checkpoint from the end of epoch {self.epochs_done}" if self.epochs_done
                 else "no checkpoint (none was written yet)")
        self.log(f"error: the loss became {value} at epoch {epoch}, step {step + 1} of {steps}; training stopped "
                 f"and {self.out_dir} keeps {where}. Try a smaller --lr.")
        return "nan"

    # ------------------------------------------------------------ evaluation
    def evaluate(self) -> dict[str, Any]:
        """Test loss recon + β·KL and its parts (nats per example), with the same noise every
        epoch, and the number of active units of the test set's posterior means."""
        xp, model = self.xp, self.model
        noise = self.backend.rng([self.config.seed, 2])
        totals = xp.zeros(2, dtype=np.float64)
        n, means = self.test_x.shape[0], []
        for start in range(0, n, EVAL_BATCH):
            x = to_float(self.test_x[start:start + EVAL_BATCH], self.test_max, model.dtype)
            labels = self.test_y[start:start + EVAL_BATCH] if model.conditional else None
            recon, kl = model.forward(x, model.draw_noise(noise, x.shape[0]), False, labels=labels)
            totals += xp.stack([recon.sum(dtype=np.float64), kl.sum(dtype=np.float64)])
            means.append(model.encode(x, labels)[0])
        recon, kl = (self.backend.to_numpy(totals) / n).tolist()
        active = int(active_units(xp.concatenate(means))[1].sum())
        scores = {"test_loss": recon + model.beta * kl, "test_recon": recon, "test_kl": kl, "active_units": active}
        if getattr(model, "semi_supervised", False):
            scores["test_error"] = classification_error(model, self.test_x, self.test_y, self.test_max)
        return scores

    # --------------------------------------------------------------- outputs
    def write_config(self) -> None:
        labelled = {"labelled": self.labelled} if self.labelled is not None else {}
        write_json(self.out_dir / "config.json", {**labelled,
            "run": asdict(self.config), "model": self.model.config(), "tinyvae": __version__,
            "device": str(self.backend), "dataset": {
                "name": self.dataset.name, "source": self.dataset.source,
                "train": int(self.dataset.train_images.shape[0]), "test": int(self.dataset.test_images.shape[0]),
                "image_shape": list(self.dataset.image_shape)}})

    def write_figures(self) -> None:
        """The run folder's figures: see tinyvae.analysis.figures."""
        write_run_figures(self.model, self.dataset, self.test_x, self.test_y, self.test_max, self.history,
                          self.out_dir, self.config.seed)


def classification_error(model: Any, images: Any, labels: Any, max_value: int) -> float:
    """The fraction of images (N, D) uint8 on the device whose most probable class under the
    model's q(y|x) is not the label (N,)."""
    wrong = 0
    for start in range(0, images.shape[0], EVAL_BATCH):
        x = to_float(images[start:start + EVAL_BATCH], max_value, model.dtype)
        wrong += int((model.predict(x) != labels[start:start + EVAL_BATCH]).sum())
    return wrong / images.shape[0]
