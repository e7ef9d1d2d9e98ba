"""``python -m tinyvae.doctor``: is this machine ready to train? The one command lab staff run.

    python -m tinyvae.doctor --device gpu     # a lab machine: CuPy, CUDA, the kernels, a step
    python -m tinyvae.doctor --device cpu     # a laptop
    python -m tinyvae.doctor                  # --device auto: the GPU where one is usable

It prints one line per check, then one verdict line, ``ready: ...`` or ``not ready: ...``:

    versions  tinyvae, Python, NumPy and its BLAS; on the GPU CuPy, the CUDA runtime, the
              driver and NVRTC
    device    the GPU's name, compute capability and memory (or the CPU's cores)
    kernels   every fast twin compiled: the CUDA kernels on the GPU, the Numba Adam on the CPU
    matmul    a (256×512)·(512×256) float32 product against NumPy's in float64
    step      one training step of the default VAE (784-400-20) in float64 against the CPU's
              reference maths, with the same weights and noise
    speed     the median time of a float32 training step, batch 128

Tolerances, derived the way tests/test_gpu.py derives them: a dot product of K terms in a
different summation order differs by up to about K·eps relative to its terms, so the matmul
(K = 512) must agree to 2·K·eps32, and the step's loss and gradients, whose deepest sum is
K = 784 through L = 4 products, to 2·L·K·eps64.

Exit status 0 when ready, 1 when not (a missing GPU included), 2 for a bad flag.
"""

from __future__ import annotations

import platform
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np

from tinyvae import __version__
from tinyvae.backend import Backend, BackendError, get_backend
from tinyvae.cli import EXIT_FAILED, EXIT_OK, parser
from tinyvae.fast import twins_for
from tinyvae.models.vae import VAE
from tinyvae.nn.gradcheck import rel_error
from tinyvae.training.optim import Adam

MATMUL_K, STEP_K, STEP_L = 512, 784, 4


class NotReady(Exception):
    """A check found a problem; the message says what, in one sentence."""


def versions(backend: Backend) -> str:
    from threadpoolctl import threadpool_info

    blas = next((f"{i['internal_api']} {i['version']}" for i in threadpool_info() if i["user_api"] == "blas"), "none")
    line = f"tinyvae {__version__}, Python {platform.python_version()}, NumPy {np.__version__} ({blas})"
    if backend.is_gpu:
        cuda = backend.xp.cuda
        line += (f", CuPy {backend.xp.__version__}, CUDA runtime {_cuda_version(cuda.runtime.runtimeGetVersion())}"
                 f", driver {_cuda_version(cuda.runtime.driverGetVersion())}"
                 f", NVRTC {'.'.join(map(str, cuda.nvrtc.getVersion()))}")
    return line


def _cuda_version(number: int) -> str:
    return f"{number // 1000}.{number % 1000 // 10}"


def device(backend: Backend) -> str:
    if not backend.is_gpu:
        return f"CPU, {len(__import__('os').sched_getaffinity(0))} cores available"
    runtime = backend.xp.cuda.runtime
    props = runtime.getDeviceProperties(backend.xp.cuda.Device().id)
    free, total = runtime.memGetInfo()
    return (f"{backend.device_name}, compute capability {props['major']}.{props['minor']}, "
            f"{total / 2**30:.1f} GiB ({free / 2**30:.1f} GiB free)")


def kernels(backend: Backend) -> str:
    twins = twins_for(backend)
    if backend.is_gpu:
        if twins.name != "cuda":
            raise NotReady("the CUDA kernels are not in this copy of tinyvae (a student release?): "
                           "the GPU runs the reference maths")
        from tinyvae.fast.cuda_kernels import kernel_names
        return f"{len(kernel_names())} CUDA kernels compiled by NVRTC for this GPU"
    if twins.name == "numba":
        return "Adam's update compiled by Numba"
    return "Numba is not installed: Adam runs its NumPy reference (correct; pip install numba for speed)"


def matmul(backend: Backend) -> str:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((256, MATMUL_K)).astype(np.float32)
    b = rng.standard_normal((MATMUL_K, 256)).astype(np.float32)
    got = backend.to_numpy(backend.asarray(a) @ backend.asarray(b))
    error, tolerance = rel_error(a.astype(np.float64) @ b.astype(np.float64), got), 2 * MATMUL_K * _eps(np.float32)
    if not error <= tolerance:
        raise NotReady(f"a float32 matrix product is off by {error:.1e} (allowed {tolerance:.1e}): "
                       f"the BLAS library or the GPU computes wrong results")
    return f"(256×{MATMUL_K})·({MATMUL_K}×256) float32 agrees with float64 NumPy: {error:.1e} ≤ {tolerance:.1e}"


def step(backend: Backend) -> str:
    """One float64 step on ``backend`` against the CPU's reference maths (same weights, data, noise)."""
    rng = np.random.default_rng(1)
    x = (rng.random((64, 784)) < 0.3).astype(np.float64)
    eps = rng.standard_normal((64, 20))
    models = [VAE(backend=b, dtype="float64", seed=2) for b in (get_backend("cpu"), backend)]
    reference, model = models
    if not backend.is_gpu:                                  # the CPU checks its own twins against the reference
        from tinyvae.fast import REFERENCE
        reference.ops = REFERENCE
    expected = reference.loss_and_grads(x, eps)
    got = model.loss_and_grads(backend.asarray(x), backend.asarray(eps))
    tolerance = 2 * STEP_L * STEP_K * _eps(np.float64)
    errors = [abs(float(got.loss) - float(expected.loss)) / abs(float(expected.loss)),
              rel_error(reference.params.grad, backend.to_numpy(model.params.grad))]
    optimizers = [Adam(m.params, fused_update=m.ops.adam_update) for m in models]   # the reference's: None
    for optimizer in optimizers:
        optimizer.step()
    errors.append(rel_error(reference.params.data, backend.to_numpy(model.params.data)))
    if not max(errors) <= tolerance:
        raise NotReady(f"a training step differs from the CPU's reference maths by {max(errors):.1e} "
                       f"(allowed {tolerance:.1e}): loss, gradients, Adam errors {errors}")
    return (f"a float64 training step (loss, gradients, Adam via {model.ops.name}) agrees with the "
            f"CPU reference: {max(errors):.1e} ≤ {tolerance:.1e}")


def speed(backend: Backend, steps: int = 30) -> str:
    rng = np.random.default_rng(3)
    model = VAE(backend=backend, seed=4)
    optimizer = Adam(model.params, fused_update=model.ops.adam_update)
    x = backend.asarray((rng.random((128, 784)) < 0.3).astype(np.float32))
    times = []
    for _ in range(steps + 3):
        backend.synchronize()
        tic = time.perf_counter()
        model.loss_and_grads(x, check_finite=False)
        optimizer.step()
        backend.synchronize()
        times.append(time.perf_counter() - tic)
    median = statistics.median(times[3:])                      # the first steps compile and warm up
    return f"784-400-20 VAE, batch 128, float32: {median * 1e3:.2f} ms per training step (median of {steps})"


def _eps(dtype: type) -> float:
    return float(np.finfo(dtype).eps)


CHECKS: list[tuple[str, Callable[[Backend], str]]] = [
    ("versions", versions), ("device", device), ("kernels", kernels), ("matmul", matmul), ("step", step),
    ("speed", speed)]


def diagnose(device_name: str, out: Callable[[str], None] = print) -> tuple[bool, str]:
    """Run every check on ``device_name``; returns (ready, the verdict line)."""
    try:
        backend = get_backend(device_name)
    except BackendError as err:
        return False, f"not ready: {err}"
    out(f"tinyvae doctor: {backend}")
    for name, check in CHECKS:
        try:
            out(f"  {name:<9} {check(backend)}")
        except NotReady as err:
            return False, f"not ready: {name}: {err}"
        except Exception as err:  # a broken driver or library raises anything; the verdict names it
            first_line = str(err).strip().splitlines()[0] if str(err).strip() else ""
            return False, f"not ready: {name} failed with {type(err).__name__}: {first_line}"
    how = "--device gpu" if backend.is_gpu else "--device cpu"
    return True, f"ready: python -m tinyvae.train {how} will run here"


def main(argv: list[str] | None = None) -> int:
    p = parser("python -m tinyvae.doctor", __doc__.split("\n\n")[0])
    p.add_argument("--device", choices=["auto", "cpu", "gpu"], default="auto",
                   help="what to check: the GPU, the CPU, or the GPU where one is usable (default auto)")
    args = p.parse_args(argv)
    ready, verdict = diagnose(args.device)
    print(verdict, file=sys.stdout if ready else sys.stderr)
    return EXIT_OK if ready else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
