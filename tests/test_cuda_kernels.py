"""Every CUDA kernel checked without a GPU (tinyvae/fast/cuda_kernels.py).

1. NVRTC (the ``nvidia-cuda-nvrtc`` wheel of the dev extra; no GPU or driver needed) compiles the
   source with the options CuPy uses, to machine code for every GPU generation in ``ARCHS``, and
   every kernel is in the result. A source with a broken kernel body must fail the same compile.
2. The host's C++ compiler builds the same source, where each kernel is a plain loop, and each
   formula is compared with the NumPy reference it twins, float32 and float64, on random inputs
   and extremes (|logits| = 80, logvar = ±30, zeros). Mutated formulas (a sign, a missing term, a
   swapped constant) must fail the same comparison.

Tolerances. Adam's update and the reparameterization's backward are +, −, ×, ÷ and √ only, in
the reference's order; IEEE 754 rounds each of those exactly, so the host build must give the
reference's bits: compared with ==. The other formulas call exp and log1p, whose libm (C) and
NumPy implementations may differ by a few ulp. Each formula is at most 6 rounded operations and 2
such calls, so its error is below 16 ulp of the magnitude of its terms: |kernel − reference| ≤
16·eps·scale, with ``scale`` the sum of the terms' absolute values (so that a result that
cancels, like the NLL of a confident right answer, is not held to a relative bound it cannot meet).

In CI (``CI`` set) a missing NVRTC or C++ compiler fails these tests instead of skipping them.
"""

import ctypes
import math
import os
import shutil
import subprocess

import numpy as np
import pytest

from tinyvae.fast import nvrtc
from tinyvae.fast.cuda_kernels import ARCHS, NVRTC_OPTIONS, cuda_source, kernel_names
from tinyvae.nn.layers import Linear
from tinyvae.nn.losses import bernoulli_nll, gaussian_kl
from tinyvae.nn.params import Parameters
from tinyvae.nn.reparam import Reparameterize
from tinyvae.training.optim import Adam

CUPY_ADDS = ("-ftz=true",)              # CuPy adds this to every NVRTC compile (cupy/cuda/compiler.py)
ULPS = 16
DTYPES = [np.float32, np.float64]

# (what, original text, mutated text): each mutant must fail the formula comparison
MUTANTS = [
    ("BCE: sign of x·l", "- x * l + log1p(e)", "+ x * l + log1p(e)"),
    ("BCE: missing log1p term", "- x * l + log1p(e);", "- x * l;"),
    ("BCE: sigmoid branches swapped", "(l >= (T)0 ? (T)1 : e)", "(l >= (T)0 ? e : (T)1)"),
    ("KL: missing −logvar", "var - (T)1 - lv)", "var - (T)1)"),
    ("KL gradient: missing ½", "dlv = (T)0.5 * (var - (T)1);", "dlv = var - (T)1;"),
    ("reparameterize: exp(lv), a variance as std", "std = exp((T)0.5 * lv);", "std = exp(lv);"),
    ("reparameterize backward: missing ½", "return (T)0.5 * dz * std * eps;", "return dz * std * eps;"),
    ("Adam: 1 − β₁ for the second moment", "v + c2 * (g * g - v)", "v + c1 * (g * g - v)"),
    ("Adam: ε inside the square root", "m / (sqrt(v) + eps_t) * lr_t", "m / sqrt(v + eps_t) * lr_t"),
]


def required(tool: str, found: bool) -> None:
    """Skip a test whose tool is missing, except in CI, where it must run."""
    if not found:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} is missing in CI: the kernels must be checked there (see .ci/run)")
        pytest.skip(f"{tool} is not installed")


# ------------------------------------------------------------------------------------ NVRTC
def compile_for(source: str, arch: int) -> bytes:
    required("NVRTC (pip install nvidia-cuda-nvrtc)", nvrtc.find_library() is not None)
    return nvrtc.compile_cuda(source, (*NVRTC_OPTIONS, *CUPY_ADDS, f"-arch=sm_{arch}"))


@pytest.mark.parametrize("arch", ARCHS)
def test_every_kernel_compiles_to_machine_code(arch):
    cubin = compile_for(cuda_source(), arch)
    assert cubin.startswith(b"\x7fELF")
    for name in kernel_names():
        assert name.encode() in cubin, name


def test_the_ptx_defines_exactly_the_kernels_the_wrappers_launch():
    required("NVRTC", nvrtc.find_library() is not None)
    ptx = nvrtc.compile_cuda(cuda_source(), (*NVRTC_OPTIONS, *CUPY_ADDS, "-arch=compute_75")).decode()
    entries = sorted(line.split()[2].rstrip("(") for line in ptx.splitlines() if ".entry" in line)
    assert entries == sorted(kernel_names())


def test_every_arch_is_one_nvrtc_supports():
    required("NVRTC", nvrtc.find_library() is not None)
    assert set(ARCHS) <= set(nvrtc.supported_archs()), nvrtc.supported_archs()


def test_a_broken_kernel_body_fails_the_same_compile():
    broken = cuda_source().replace("dl = (l >= (T)0", "dl = (sigma_of_l >= (T)0")
    assert broken != cuda_source()
    with pytest.raises(nvrtc.NvrtcError, match="sigma_of_l"):
        compile_for(broken, ARCHS[0])


# ----------------------------------------------------------------------- host C++ compiler
def host_library(source: str, folder) -> ctypes.CDLL:
    """The source compiled by the host's C++ compiler into a shared library (plain loops)."""
    compiler = os.environ.get("CXX", "g++")
    required(f"a C++ compiler ({compiler})", shutil.which(compiler) is not None)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kernels.cpp").write_text(source)
    command = [compiler, "-std=c++17", "-O1", "-ffp-contract=off", "-shared", "-fPIC",
               str(folder / "kernels.cpp"), "-o", str(folder / "kernels.so")]
    subprocess.run(command, check=True, capture_output=True, text=True)
    return ctypes.CDLL(str(folder / "kernels.so"))


def launch(lib, kernel, dtype, arrays, scalars=()):
    """Run tinyvae_<kernel>_<f32|f64> over arrays[0].size elements, in place."""
    scalar = ctypes.c_float if dtype == np.float32 else ctypes.c_double
    function = getattr(lib, f"tinyvae_{kernel}_{'f32' if dtype == np.float32 else 'f64'}")
    function.restype = None
    function(*(a.ctypes.data_as(ctypes.c_void_p) for a in arrays), *(scalar(s) for s in scalars),
             ctypes.c_longlong(arrays[0].size))


def inputs(dtype, n=4000, seed=0):
    """Random values with the extremes appended: |logits| = 80, logvar = ±30, zeros."""
    rng = np.random.default_rng(seed)
    extremes = np.array([80.0, -80.0, 30.0, -30.0, 0.0, 0.0, 1e-3, -1e-3])
    def column(scale):
        return np.concatenate([rng.standard_normal(n) * scale, extremes]).astype(dtype)
    x = np.concatenate([rng.random(n), [1.0, 0.0, 1.0, 0.0, 0.5, 0.0, 1.0, 0.0]]).astype(dtype)
    return column(8.0), x, column(5.0), column(1.0)          # logits, targets, logvar (and mu, eps, g)


def bound(dtype, scale):
    return ULPS * float(np.finfo(dtype).eps) * np.asarray(scale, dtype=np.float64)


def worst(got, expected, scale, dtype):
    """The largest |got − expected| as a fraction of its allowed bound (≤ 1 passes)."""
    return float(np.max(np.abs(got.astype(np.float64) - expected) / np.maximum(bound(dtype, scale), 1e-300)))


def formula_errors(lib, dtype):
    """{output: worst error ÷ allowed bound} of every kernel against its reference (≤ 1 passes);
    Adam and the reparameterization's backward must match exactly: their entries are 0 or inf."""
    logits, x, logvar, mu = inputs(dtype)
    logvar = np.clip(logvar, -30, 30)
    eps, g = inputs(dtype, seed=1)[3], inputs(dtype, seed=2)[0]
    out = {}

    nll, dl = np.empty_like(logits), np.empty_like(logits)
    launch(lib, "bernoulli_nll", dtype, [logits, x, nll, dl])
    ref_nll, ref_dl = bernoulli_nll(logits[:, None], x[:, None])          # one column: per element
    terms = np.abs(np.maximum(logits, 0)) + np.abs(x * logits) + np.log1p(np.exp(-np.abs(logits)))
    out["bernoulli nll"] = worst(nll, ref_nll, terms, dtype)
    out["bernoulli dlogits"] = worst(dl, ref_dl[:, 0], 2.0, dtype)

    kl, dlv = np.empty_like(mu), np.empty_like(mu)
    launch(lib, "gaussian_kl", dtype, [mu, logvar, kl, dlv])
    ref_kl, _, ref_dlv = gaussian_kl(mu[:, None], logvar[:, None])
    var = np.exp(logvar.astype(np.float64))
    out["kl"] = worst(kl, ref_kl, 0.5 * (mu.astype(np.float64) ** 2 + var + 1 + np.abs(logvar)), dtype)
    out["kl dlogvar"] = worst(dlv, ref_dlv[:, 0], 0.5 * (var + 1), dtype)

    z, std = np.empty_like(mu), np.empty_like(mu)
    launch(lib, "reparameterize", dtype, [mu, logvar, eps, z, std])
    reference = Reparameterize()
    ref_z = reference.forward(mu[:, None], logvar[:, None], eps[:, None])[:, 0]
    ref_std = reference.std[:, 0]
    out["z"] = worst(z, ref_z, np.abs(mu) + ref_std * np.abs(eps), dtype)
    out["std"] = worst(std, ref_std, ref_std, dtype)
    dz = g.copy()
    dlogvar = np.empty_like(mu)
    launch(lib, "reparameterize_bwd", dtype, [dz, ref_std, eps, dlogvar])
    out["reparameterize dlogvar (exact)"] = 0.0 if np.array_equal(dlogvar, reference.backward(dz[:, None])[1][:, 0]) \
        else np.inf

    out["adam (exact)"] = 0.0 if adam_matches(lib, dtype, g) else np.inf
    return out


def adam_matches(lib, dtype, g):
    """Three steps of the kernel and of Adam._update, the reference, from the same state."""
    params = Parameters({"fc": Linear(g.size - 1, 1)}, None, dtype, seed=0)
    reference = Adam(params, lr=0.01, beta1=0.9, beta2=0.999)
    rng = np.random.default_rng(3)
    theta = rng.standard_normal(g.size).astype(dtype)
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    state = [theta.copy(), m.copy(), v.copy()]
    tmp = np.empty_like(theta)
    for t in (1, 2, 3):
        grad = (g * t).astype(dtype)
        grad[:8] = 0.0                                       # zero gradients: v stays 0 there, √0 + ε̂
        lr_t = 0.01 * math.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)     # Python floats, as Adam.step makes them
        eps_t = 1e-8 * math.sqrt(1 - 0.999 ** t)
        reference._update(*state[:1], grad, *state[1:], tmp, lr_t, eps_t)
        launch(lib, "adam_update", dtype, [theta, grad, m, v], (lr_t, eps_t, 1 - 0.9, 1 - 0.999))
    return all(np.array_equal(a, b) for a, b in zip([theta, m, v], state, strict=True))


@pytest.fixture(scope="module")
def host_kernels(tmp_path_factory):
    return host_library(cuda_source(), tmp_path_factory.mktemp("host"))


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_kernel_formula_equals_its_reference(host_kernels, dtype):
    errors = formula_errors(host_kernels, dtype)
    assert len(errors) == 8
    assert max(errors.values()) <= 1.0, errors


@pytest.mark.parametrize("what, original, mutated", MUTANTS, ids=[m[0] for m in MUTANTS])
def test_a_mutated_formula_is_caught(tmp_path, what, original, mutated):
    source = cuda_source()
    assert source.count(original) == 1, f"the mutant no longer applies: {original!r}"
    lib = host_library(source.replace(original, mutated), tmp_path)
    errors = formula_errors(lib, np.float64)
    assert max(errors.values()) > 1.0, f"{what} was not caught: {errors}"
