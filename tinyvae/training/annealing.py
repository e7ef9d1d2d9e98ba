"""KL annealing: the weight w ∈ [0, 1] of the KL term at each training step.

Early in training the decoder is poor and the KL term is easy to lower: the encoder can
learn to ignore x (q(z|x) = p(z), posterior collapse) before the decoder learns to use z.
Annealing starts with a small KL weight so that z carries information first::

    loss_t = recon + β · w(t) · KL

    linear warm-up (Bowman et al. 2016), over T_w steps:
        w(t) = min(1, t / T_w)
    cyclical (Fu et al. 2019), C cycles over the run's T steps, period P = T / C:
        τ(t) = (t mod P) / P ∈ [0, 1)         position inside the cycle
        w(t) = min(1, τ / R),  R = ½          ramp 0 → 1 over the first half, hold 1 for the second

t counts optimizer steps from 0 over the whole run (so a resumed run continues the same
schedule). The trainer passes T_w = warm-up epochs × steps per epoch and T = epochs × steps
per epoch. The weight changes only the gradient; reported losses stay recon + β·KL.
"""

from __future__ import annotations

CYCLE_RAMP = 0.5   # R: the fraction of each cycle spent ramping up (Fu et al. 2019 use 0.5)


def linear_warmup(step: int, warmup_steps: float) -> float:
    """w = min(1, step / warmup_steps); 1 when there is no warm-up."""
    if warmup_steps <= 0:
        return 1.0
    return min(1.0, step / warmup_steps)


def cyclical(step: int, total_steps: int, cycles: int, ramp: float = CYCLE_RAMP) -> float:
    """w = min(1, τ / ramp) with τ = (step mod P) / P, P = total_steps / cycles; 1 with no cycles."""
    if cycles <= 0 or total_steps <= 0:
        return 1.0
    period = total_steps / cycles
    tau = (step % period) / period
    return min(1.0, tau / ramp)


def kl_weight(step: int, steps_per_epoch: int, epochs: int, warmup_epochs: float = 0.0, cycles: int = 0) -> float:
    """The KL weight at optimizer step ``step`` (0-based over the run) for the trainer's flags:
    ``--kl-warmup`` (epochs of linear warm-up) or ``--kl-cycles`` (cycles over the whole run)."""
    if warmup_epochs > 0 and cycles > 0:
        raise ValueError("--kl-warmup and --kl-cycles are two different schedules: choose one")
    if cycles > 0:
        return cyclical(step, epochs * steps_per_epoch, cycles)
    return linear_warmup(step, warmup_epochs * steps_per_epoch)
