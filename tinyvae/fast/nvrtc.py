"""NVRTC, CUDA's runtime compiler, called directly through ctypes: compile CUDA C++ to PTX on a
machine with or without a GPU.

CuPy compiles tinyvae's kernels with NVRTC on the GPU machine at first use. The same library
ships as a wheel (``nvidia-cuda-nvrtc``, in the ``dev`` extra) that needs no GPU and no
driver, so the test suite compiles every kernel here, on every run, with the options CuPy
will use: a kernel that would not compile on a lab machine fails CI instead.

    >>> ptx = compile_cuda(source, options=("-std=c++17", "-arch=compute_90"))    # PTX
    >>> cubin = compile_cuda(source, options=("-std=c++17", "-arch=sm_90"))      # machine code

CuPy asks for machine code (``-arch=sm_XX``) where NVRTC knows the GPU, so the tests do too:
that also runs the assembler (ptxas) over every kernel.
"""

from __future__ import annotations

import ctypes
import glob
import os
import sys
from collections.abc import Sequence
from functools import cache
from pathlib import Path

# Where the library may be: the pip wheels (CUDA 13, then 12), a CUDA toolkit, the system.
WHEEL_PATTERNS = ("nvidia/cu13/lib/libnvrtc.so.*", "nvidia/cuda_nvrtc/lib/libnvrtc.so.*")
TOOLKIT_PATTERNS = ("lib64/libnvrtc.so*", "lib/libnvrtc.so*")


class NvrtcError(RuntimeError):
    """NVRTC is missing, or refused the source: the message says which, with the compiler's log."""


def find_library() -> Path | None:
    """The libnvrtc shared library: from a pip wheel on sys.path, $CUDA_PATH, /usr/local/cuda."""
    roots = [Path(p) for p in sys.path if p]
    candidates = [match for root in roots for pattern in WHEEL_PATTERNS
                  for match in sorted(glob.glob(str(root / pattern)))]
    for toolkit in (os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if toolkit:
            candidates += [m for pattern in TOOLKIT_PATTERNS for m in sorted(glob.glob(str(Path(toolkit) / pattern)))]
    for path in candidates:
        if "builtins" not in path and "alt" not in Path(path).name:
            return Path(path)
    return None


@cache
def _library() -> ctypes.CDLL:
    path = find_library()
    if path is None:
        raise NvrtcError('NVRTC is not installed: pip install "nvidia-cuda-nvrtc>=13,<14" (it needs no GPU)')
    lib = ctypes.CDLL(str(path))
    lib.nvrtcGetErrorString.restype = ctypes.c_char_p
    return lib


def version() -> tuple[int, int]:
    """NVRTC's (major, minor) version."""
    major, minor = ctypes.c_int(), ctypes.c_int()
    _check(_library().nvrtcVersion(ctypes.byref(major), ctypes.byref(minor)), "nvrtcVersion")
    return major.value, minor.value


def supported_archs() -> list[int]:
    """The compute capabilities this NVRTC can compile for (75 means sm_75)."""
    lib, count = _library(), ctypes.c_int()
    _check(lib.nvrtcGetNumSupportedArchs(ctypes.byref(count)), "nvrtcGetNumSupportedArchs")
    archs = (ctypes.c_int * count.value)()
    _check(lib.nvrtcGetSupportedArchs(archs), "nvrtcGetSupportedArchs")
    return list(archs)


def compile_cuda(source: str, options: Sequence[str] = (), name: str = "tinyvae.cu") -> bytes:
    """Compile ``source`` with NVRTC: the CUBIN (machine code) for an ``-arch=sm_XX`` option, else
    the PTX. NvrtcError carries the compiler's log."""
    lib = _library()
    program = ctypes.c_void_p()
    _check(lib.nvrtcCreateProgram(ctypes.byref(program), source.encode(), name.encode(), 0, None, None),
           "nvrtcCreateProgram")
    try:
        encoded = [option.encode() for option in options]
        argv = (ctypes.c_char_p * len(encoded))(*encoded)
        status = lib.nvrtcCompileProgram(program, len(encoded), argv)
        if status != 0:
            raise NvrtcError(f"NVRTC could not compile {name} ({' '.join(options)}):\n{_log(lib, program)}")
        kind = "CUBIN" if any(option.startswith("-arch=sm_") for option in options) else "PTX"
        size = ctypes.c_size_t()
        _check(getattr(lib, f"nvrtcGet{kind}Size")(program, ctypes.byref(size)), f"nvrtcGet{kind}Size")
        output = ctypes.create_string_buffer(size.value)
        _check(getattr(lib, f"nvrtcGet{kind}")(program, output), f"nvrtcGet{kind}")
        return output.raw
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(program))


def _log(lib: ctypes.CDLL, program: ctypes.c_void_p) -> str:
    size = ctypes.c_size_t()
    lib.nvrtcGetProgramLogSize(program, ctypes.byref(size))
    log = ctypes.create_string_buffer(size.value)
    lib.nvrtcGetProgramLog(program, log)
    return log.value.decode(errors="replace")


def _check(status: int, call: str) -> None:
    if status != 0:
        raise NvrtcError(f"{call} failed: {_library().nvrtcGetErrorString(status).decode()}")
