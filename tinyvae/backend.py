"""Array backends: NumPy on the CPU, CuPy on the GPU, behind one small object.

This is the ONLY module in tinyvae that imports CuPy. Everything else either
receives a :class:`Backend` (and writes ``backend.xp`` where it would write
``np``) or asks :func:`array_module` which library holds an array it was given.

    >>> backend = get_backend("cpu")
    >>> x = backend.asarray([[1.0, 2.0]], dtype="float32")   # (1, 2) on the device
    >>> backend.to_numpy(backend.xp.exp(x))                  # back on the host
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

BACKEND_NAMES = ("cpu", "gpu", "auto")
GPU_RNG_STATES = 2**14       # cuRAND Philox states of a GPU generator: threads that draw numbers at once
GPU_EXTRA_HINT = 'install the GPU extra (pip install -e ".[gpu]") on a machine with an NVIDIA GPU'


class BackendError(RuntimeError):
    """The requested backend cannot be used. The message is one sentence for the user."""


@dataclass(frozen=True)
class Backend:
    """Which array library runs the maths, and on what device.

    name:        "cpu" or "gpu"
    xp:          the module, ``numpy`` or ``cupy``
    device_name: human-readable device, e.g. "CPU (NumPy 2.1)" or "NVIDIA H100 (CuPy 13.3)"
    """

    name: str
    xp: ModuleType
    device_name: str

    @property
    def is_gpu(self) -> bool:
        return self.name == "gpu"

    def rng(self, seed: int | list[int] | None) -> Any:
        """A seeded random generator that draws arrays directly on this device.

        CPU: NumPy's default (PCG64). GPU: cuRAND's Philox4x32-10 with ``GPU_RNG_STATES``
        states. (CuPy's default_rng would build an XORWOW generator with 2,048 states per
        multiprocessor, hundreds of thousands on a large GPU, each set up by curand_init and
        loaded and stored again by every draw; Philox's set-up is a counter and a key.)
        A GPU generator's state lives on the device and cannot be saved: see noise_state.
        """
        if self.is_gpu:
            random = self.xp.random
            return random.Generator(random.Philox4x3210(seed, size=GPU_RNG_STATES))
        return np.random.default_rng(seed)

    def asarray(self, a: Any, dtype: Any = None) -> Any:
        """Move (or view) ``a`` on this backend's device, optionally casting it."""
        return self.xp.asarray(a, dtype=dtype)

    def to_numpy(self, a: Any) -> np.ndarray:
        """Copy ``a`` to the host as a NumPy array (a no-op view on the CPU)."""
        return to_host(a)

    def synchronize(self) -> None:
        """Wait until all queued device work is done (needed before timing on the GPU)."""
        if self.is_gpu:
            self.xp.cuda.get_current_stream().synchronize()

    def __str__(self) -> str:
        return f"{self.name} — {self.device_name}"


def cpu_backend() -> Backend:
    return Backend("cpu", np, f"CPU (NumPy {np.__version__})")


def _gpu_backend() -> Backend:
    """The CuPy backend, or a BackendError that says in one sentence why not."""
    try:
        import cupy  # the only CuPy import in tinyvae
    except Exception as err:  # ImportError, or a broken CUDA install raising anything
        raise BackendError(f"GPU requested but CuPy could not be imported ({err}); {GPU_EXTRA_HINT}.") from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:
        raise BackendError(f"GPU requested but no CUDA device is usable ({err}); {GPU_EXTRA_HINT}.") from None
    if count < 1:
        raise BackendError(f"GPU requested but no CUDA device was found; {GPU_EXTRA_HINT}.")
    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    gpu_name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    return Backend("gpu", cupy, f"{gpu_name} (CuPy {cupy.__version__})")


def get_backend(name: str = "cpu", verbose: bool = False) -> Backend:
    """Return the backend called ``name``: "cpu", "gpu" or "auto".

    "auto" takes the GPU when CuPy imports and a CUDA device answers, else the CPU;
    with ``verbose=True`` it prints which one it chose and why.
    "gpu" without CuPy or a device raises :class:`BackendError` (one sentence).
    """
    if name not in BACKEND_NAMES:
        raise ValueError(f"unknown device {name!r}: choose one of {', '.join(BACKEND_NAMES)}")
    if name == "cpu":
        return cpu_backend()
    if name == "gpu":
        return _gpu_backend()
    try:
        backend = _gpu_backend()
        reason = "a CUDA device is usable"
    except BackendError as err:
        backend = cpu_backend()
        reason = str(err).split(";")[0].replace("GPU requested but ", "")
    if verbose:
        print(f"tinyvae: device auto chose {backend} ({reason})", file=sys.stderr)
    return backend


def gpu_available() -> bool:
    """True when the CuPy backend can be used on this machine."""
    try:
        _gpu_backend()
    except BackendError:
        return False
    return True


def array_module(x: Any) -> ModuleType:
    """``numpy`` or ``cupy``: whichever library holds the array ``x``.

    Lets pure functions (layers, losses) work on either device without a global switch.
    CuPy is looked up only if the caller already imported it (through :func:`get_backend`).
    """
    if isinstance(x, (np.ndarray, np.generic, float, int)):
        return np
    cupy = sys.modules.get("cupy")
    if cupy is not None and isinstance(x, cupy.ndarray):
        return cupy
    raise TypeError(f"expected a NumPy or CuPy array, got {type(x).__name__}")


def noise_state(rng: Any) -> dict[str, Any] | None:
    """The state of a NumPy generator as plain data (for a checkpoint), or None for a generator
    whose state cannot be saved: CuPy keeps it on the device (its ``bit_generator.state`` is a
    method returning a device pointer, not a dict)."""
    state = getattr(rng.bit_generator, "state", None) if isinstance(rng, np.random.Generator) else None
    return state if isinstance(state, dict) else None


def restore_noise_state(rng: Any, state: dict[str, Any] | None) -> bool:
    """Continue ``rng`` from a saved ``noise_state``; False (``rng`` untouched) where that cannot
    be done: no state was saved, the state is another kind of generator's, or ``rng`` is CuPy's."""
    if not isinstance(rng, np.random.Generator) or not isinstance(state, dict):
        return False
    if state.get("bit_generator") != type(rng.bit_generator).__name__:
        return False
    rng.bit_generator.state = state
    return True


def to_host(x: Any) -> np.ndarray:
    """A NumPy copy (or view) of ``x``, wherever it lives."""
    if array_module(x) is np:
        return np.asarray(x)
    return x.get()
