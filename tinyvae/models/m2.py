"""The semi-supervised generative model M2 (Kingma, Rezende, Mohamed & Welling 2014).

Three networks; the conditional VAE's two (tinyvae.models.cvae) and a classifier::

    q(y|x)     classifier   x (N, D)           ──▶ logits a (N, C), q = softmax(a)
    q(z|x,y)   encoder      [x | onehot(y)]    ──▶ (mu, logvar) (N, J) each
    p(x|y,z)   decoder      [z | onehot(y)]    ──▶ p(x | y, z),   with p(y) = 1/C and p(z) = N(0, I)

For a labelled pair the bound on −log p(x, y) is the CVAE's loss plus −log p(y) = log C::

    L(x, y) = −log p(x|y,z) + KL(q(z|x,y) ‖ N(0, I)) + log C          (one z ~ q(z|x,y))

For an unlabelled x the label is a latent variable too; summing over the C classes exactly::

    U(x) = Σ_y q(y|x) L(x, y) − H(q(y|x))                             ≥ −log p(x)

and the classifier, which U alone would train only as a posterior, also learns from the
labels with weight α (the paper's J^α, §3.1.2). tinyvae's batch objective is a mean over
the rows of a batch, each row labelled (y ≥ 0) or not (y = −1)::

    loss = 1/N Σ_n { L(x_n, y_n) + α · (−log q(y_n|x_n))   labelled
                   { U(x_n)                                 unlabelled

The paper writes J^α = Σ_labelled L + Σ_unlabelled U + α_paper · E_labelled[−log q(y|x)] with
α_paper = 0.1·N_total; divided by N_total, with batches drawn uniformly from the training
set, that is this loss with α = 0.1·N_total / N_labelled per labelled row (the trainer's choice).
The trainer by default also puts a batch of L labelled rows into every step beside B unlabelled
ones, which weighs the labelled examples up (derivations.md, section 19): this loss is unchanged,
only the rows it is given differ.

Gradients (docs/derivations.md, section 19): every class c of row n is one CVAE row, scaled by
π_nc / N with π_nc = [c = y_n] (labelled) or q(c|x_n) (unlabelled). Through the classifier::

    unlabelled:  d U / d a_nk = q_nk (f_nk − Σ_c q_nc f_nc),   f_nc = L(x_n, c) + log q(c|x_n)
    labelled:    d/d a_nk of α·(−log q(y_n|x_n)) = α (q_nk − [k = y_n])

Rows of the expanded batch are class-major: row c·N + n is example n with label c.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinyvae.backend import Backend, to_host
from tinyvae.models.classifier import log_softmax
from tinyvae.models.cvae import ConditionalVAE, one_hot
from tinyvae.models.likelihood import ELBO, check_number
from tinyvae.nn.base import Array
from tinyvae.nn.layers import mlp
from tinyvae.nn.params import Parameters

__all__ = ["M2", "UNLABELLED", "labelled_subset"]

UNLABELLED = -1          # the label of a row whose class the model is not told


def labelled_subset(labels: np.ndarray, n: int, n_classes: int, seed: int) -> np.ndarray:
    """Indices (n,) of n examples balanced across the classes, chosen by ``seed``; sorted.

    Each class gets n // C examples and the first n mod C classes one more. Raises a ValueError
    (one sentence) when n is below the number of classes, above the number of examples, or a
    class has too few examples; ``labels`` None or empty means the dataset has no labels.
    """
    if labels is None or len(labels) == 0:
        raise ValueError("the semi-supervised model needs a dataset with labels, and this one has none")
    if n < n_classes:
        raise ValueError(f"--labels must be at least the number of classes ({n_classes}) so that every class has a "
                         f"labelled example, got {n}")
    if n > len(labels):
        raise ValueError(f"--labels {n} is more than the {len(labels):,} training examples")
    rng = np.random.default_rng([seed, 7])
    chosen = []
    for c in range(n_classes):
        want = n // n_classes + (1 if c < n % n_classes else 0)
        members = np.flatnonzero(labels == c)
        if len(members) < want:
            raise ValueError(f"--labels {n} asks for {want} labelled examples of class {c}, which has only "
                             f"{len(members)}")
        chosen.append(rng.choice(members, size=want, replace=False))
    return np.sort(np.concatenate(chosen))


class M2(ConditionalVAE):
    """M2: the ConditionalVAE's networks plus a classifier q(y|x) with the same hidden sizes.

    Takes the ConditionalVAE's arguments except β and free bits, plus ``alpha`` ≥ 0, the weight
    of the classification loss per labelled row. ``labels`` given to forward/loss may hold
    UNLABELLED (−1) for rows without a label (None: every row unlabelled). ``draw_noise(rng, n)``
    gives eps (C·n, J): one z per class and example. ``forward`` returns, per example, the
    reconstruction term and the rest of the bound (KL + log C, minus the entropy for an
    unlabelled row), whose sum is L(x, y) or U(x); ``loss`` adds α times the cross-entropy.
    """

    semi_supervised = True

    def __init__(self, input_dim: int = 784, hidden: tuple[int, ...] | list[int] = (400,), latent_dim: int = 20,
                 activation: str = "relu", likelihood: str = "bernoulli", sigma: float | None = 1.0,
                 dtype: str = "float32", backend: Backend | str = "cpu", seed: int = 1, init: str = "pytorch",
                 n_classes: int = 10, alpha: float = 0.1) -> None:
        self.alpha = check_number("alpha", alpha, minimum=0)
        super().__init__(input_dim, hidden, latent_dim, activation, likelihood, sigma, 1.0, dtype, backend, seed,
                         init, 0.0, n_classes)
        self.classifier = mlp([self.input_dim, *self.hidden, self.n_classes], self.activation, self.init)
        self._no_input_gradient(self.classifier)
        self.params = Parameters({"encoder": self.encoder, "decoder": self.decoder, "classifier": self.classifier},
                                 self.backend, self.dtype, seed)

    def config(self) -> dict[str, Any]:
        """The ConditionalVAE's arguments without β and free bits (fixed here), plus alpha."""
        kept = {key: value for key, value in super().config().items() if key not in ("beta", "free_bits")}
        return {**kept, "alpha": self.alpha}

    def splits_over_examples(self) -> bool:
        """Not offered: its noise is class-major (C·n, J) and α weighs the labelled rows."""
        return False

    def draw_noise(self, rng: Any, n: int) -> Array:
        """eps (C·n, J) ~ N(0, I): one sample for each class of each example, class-major."""
        return rng.standard_normal((self.n_classes * n, self.latent_dim), dtype=self.dtype)

    # ------------------------------------------------------------- the classifier
    def class_log_probs(self, x: Array) -> Array:
        """log q(y|x), (N, C)."""
        return log_softmax(self.classifier.forward(self._check_batch(x)))

    def predict(self, x: Array) -> Array:
        """The most probable class under q(y|x) of each row, (N,) on the device."""
        return self.classifier.forward(self._check_batch(x)).argmax(axis=1)

    def encode(self, x: Array, labels: Any = None) -> tuple[Array, Array]:
        """q(z|x,y): mu and logvar (N, J); without labels, y is the classifier's prediction."""
        return super().encode(x, self.predict(x) if labels is None else labels)

    def reconstruct(self, x: Array, labels: Any = None) -> Array:
        """Decode the posterior mean with the given labels, or the classifier's prediction."""
        return super().reconstruct(x, self.predict(x) if labels is None else labels)

    # ----------------------------------------------------------- the objective
    def _row_labels(self, labels: Any, n: int, check: bool = True) -> Array:
        """Labels (n,) in −1..C−1 on the device (None: all UNLABELLED), or a ValueError.

        ``check=False`` skips the range check, which reads the labels back from the device.
        """
        if labels is None:
            return self.xp.full(n, UNLABELLED, dtype=np.int64)
        labels = self.xp.asarray(labels)
        if tuple(labels.shape) != (n,) or labels.dtype.kind not in "iu":
            raise ValueError(f"expected {n} integer labels of shape ({n},), got {labels.dtype} of shape "
                             f"{tuple(labels.shape)}")
        if not check:
            return labels
        host = to_host(labels)
        if host.min() < UNLABELLED or host.max() >= self.n_classes:
            raise ValueError(f"labels must lie in 0..{self.n_classes - 1}, or be {UNLABELLED} for an unlabelled "
                             f"example, got {host.min()}..{host.max()}")
        return labels

    def forward(self, x: Array, eps: Array | None = None, check_finite: bool = True,
                labels: Any = None) -> tuple[Array, Array]:
        """Per-example reconstruction term and the rest of L(x, y) or U(x), each (N,); caches
        the objective and what backward needs."""
        xp, C = self.xp, self.n_classes
        x = self._check_batch(x, check_finite)
        N = x.shape[0]
        y = self._row_labels(labels, N, check_finite)
        every_class = xp.repeat(xp.arange(C), N)                 # (C·N,): row c·N + n has label c
        recon, kl = super().forward(xp.tile(x, (C, 1)), eps, False, labels=every_class)   # (C·N,) each
        bound = (recon + kl).reshape(C, N).T + math.log(C)       # L(x_n, c), (N, C)
        logits = self.classifier.forward(x)                      # (N, C)
        log_q = log_softmax(logits)
        q = xp.exp(log_q)
        labelled = (y >= 0)[:, None]                             # (N, 1)
        target = one_hot(xp.where(y >= 0, y, 0), C, self.dtype) * labelled     # (N, C), zero rows when unlabelled
        pi = xp.where(labelled, target, q)                       # (N, C): the weight of each class's L
        neg_entropy = xp.where(labelled[:, 0], 0.0, (q * log_q).sum(axis=1))   # −H(q(y|x)) for unlabelled rows
        cross_entropy = -(target * log_q).sum(axis=1)            # −log q(y_n|x_n), 0 when unlabelled
        self._objective = (pi * bound).sum(axis=1) + neg_entropy + self.alpha * cross_entropy   # (N,)
        self._scale = (pi.T * (1.0 / N)).reshape(C * N, 1)      # d loss / d L(x_n, c), row c·N + n
        f = bound + log_q                                        # (N, C)
        unlabelled_grad = q * (f - (q * f).sum(axis=1, keepdims=True))
        self._dlogits = xp.where(labelled, self.alpha * (q - target), unlabelled_grad) * (1.0 / N)
        rest = (pi * (kl.reshape(C, N).T + math.log(C))).sum(axis=1) + neg_entropy
        return (pi * recon.reshape(C, N).T).sum(axis=1), rest

    def backward(self) -> None:
        """Fill params.grad with d(loss)/dθ for the batch cached by forward()."""
        ### BEGIN SOLUTION
        s = self._scale                                          # (C·N, 1)
        dz = self.decoder.backward(self._dout * s)               # (C·N, J)
        dmu, dlogvar = self.reparam.backward(dz)
        dmu = dmu + s * self._dmu_kl
        dlogvar = (dlogvar + s * self._dlogvar_kl) * self._unclamped
        self.encoder.backward(self.xp.concatenate([dmu, dlogvar], axis=1))
        self.classifier.backward(self._dlogits)                  # (N, C), through q(y|x)
        ### END SOLUTION

    def _elbo(self, recon: Array, rest: Array) -> ELBO:
        """The objective (bound plus α·cross-entropy), with the bound's two parts beside it."""
        return ELBO(self._objective.mean(), recon.mean(), rest.mean())

    def __repr__(self) -> str:
        return (f"M2({self._describe()}, {self.n_classes} classes, alpha={self.alpha:g}, {self.dtype.name}, "
                f"{self.backend.name}, {self.params.size:,} parameters)")
