"""The GPU twins of the hot spots of a training step, as CUDA C, each beside the NumPy
reference it equals.

A step of a small model on a GPU is bound by kernel launches, not by arithmetic: the
reference Bernoulli NLL alone is about a dozen array operations, each one a launch. Each
kernel below does one formula of the reference code in ONE launch::

    kernel                        reference it twins                    launches, reference → twin
    tinyvae_bernoulli_nll_*       losses.bernoulli_nll                  ~13 → 2 (+ the row sum)
    tinyvae_gaussian_kl_*         losses.gaussian_kl                    ~9 → 2  (+ the row sum)
    tinyvae_reparameterize_*      reparam.Reparameterize.forward        4 → 1
    tinyvae_reparameterize_bwd_*  reparam.Reparameterize.backward       3 → 1
    tinyvae_adam_update_*         optim.Adam._update                    12 → 1

The source is plain C++ with one formula per function, written once and compiled three ways:

* by CuPy (``RawModule``, NVRTC) on a GPU, where ``TV_KERNEL``/``TV_FOR`` make each loop a
  ``__global__`` kernel whose threads stride over the elements;
* by NVRTC in the test suite on a machine without a GPU (tests/test_cuda_kernels.py): proof
  that the text a lab machine compiles does compile, for every GPU generation listed in
  ``ARCHS``;
* by the host's C++ compiler in the same tests, where each loop is an ordinary ``for`` over
  the elements: the formulas then run on the CPU and are compared with the NumPy references
  on random and extreme inputs.

The kernels run on the current CUDA stream and take C-contiguous arrays of one dtype
(float32 or float64: ``_f32`` and ``_f64`` variants). Options: CuPy adds ``-ftz=true``
(float32 denormals flush to zero); ``--fmad=false`` keeps ``a * b + c`` as two roundings,
as NumPy computes it, so the GPU does the reference's arithmetic operation for operation.

This module never imports CuPy: :class:`CudaKernels` receives ``xp`` (the cupy module)
from the backend.
"""

from __future__ import annotations

from functools import cache
from types import ModuleType
from typing import Any

import numpy as np

from tinyvae.nn.base import Array
from tinyvae.nn.reparam import Reparameterize

NVRTC_OPTIONS = ("-std=c++17", "--fmad=false")
ARCHS = (75, 80, 86, 89, 90, 100, 120)       # Turing … Blackwell: what CUDA 13 compiles for
THREADS = 256                                 # threads per block
MAX_BLOCKS = 4096                             # more elements than 256·4096: each thread takes several
KERNELS = ("bernoulli_nll", "gaussian_kl", "reparameterize", "reparameterize_bwd", "adam_update")


def cuda_source() -> str:
    """The kernels' CUDA C++ source. (The student release does not ship this module, whose
    formulas spell out the exercises: there tinyvae.fast runs the reference maths on the GPU.)"""
    return r"""
#ifdef __CUDACC__                       /* NVRTC: each loop is a kernel, threads stride over i */
#define TV_FN __device__ __forceinline__
#define TV_KERNEL extern "C" __global__ void
#define TV_FOR(i, n) for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; \
                          i += (long long)blockDim.x * gridDim.x)
#else                                   /* host C++ compiler: the same loops, one element at a time */
#include <math.h>
#define TV_FN static inline
#define TV_KERNEL extern "C" void
#define TV_FOR(i, n) for (long long i = 0; i < n; ++i)
#endif

/* Bernoulli NLL from a logit l and a target x (losses.bernoulli_nll):
   nll = max(l, 0) - x l + log(1 + e^-|l|),   dl = sigmoid(l) - x,
   sigmoid(l) = 1 / (1 + e^-l) for l >= 0 and e^l / (1 + e^l) otherwise: e = e^-|l| never overflows. */
template <typename T> TV_FN void bernoulli_nll(T l, T x, T &nll, T &dl) {
    T e = exp(-fabs(l));
    nll = (l > (T)0 ? l : (T)0) - x * l + log1p(e);
    dl = (l >= (T)0 ? (T)1 : e) / ((T)1 + e) - x;
}

/* KL(N(mu, e^lv) || N(0, 1)) of one latent dimension (losses.gaussian_kl) and its lv-gradient
   (the mu-gradient is mu itself): kl = 1/2 (mu^2 + e^lv - 1 - lv),  dlv = 1/2 (e^lv - 1). */
template <typename T> TV_FN void gaussian_kl(T mu, T lv, T &kl, T &dlv) {
    T var = exp(lv);
    kl = (T)0.5 * (mu * mu + var - (T)1 - lv);
    dlv = (T)0.5 * (var - (T)1);
}

/* The reparameterization (reparam.Reparameterize): std = e^(lv/2),  z = mu + std eps. */
template <typename T> TV_FN void reparameterize(T mu, T lv, T eps, T &z, T &std) {
    std = exp((T)0.5 * lv);
    z = mu + std * eps;
}

/* ... and its backward: dL/dlv = 1/2 dz std eps  (dL/dmu = dz needs no kernel). */
template <typename T> TV_FN T reparameterize_bwd(T dz, T std, T eps) {
    return (T)0.5 * dz * std * eps;
}

/* Adam's update of one parameter (optim.Adam._update), c1 = 1 - beta1, c2 = 1 - beta2:
   m += c1 (g - m),  v += c2 (g^2 - v),  theta -= m / (sqrt(v) + eps_t) lr_t. */
template <typename T> TV_FN void adam_update(T &theta, T g, T &m, T &v, T lr_t, T eps_t, T c1, T c2) {
    m = m + c1 * (g - m);
    v = v + c2 * (g * g - v);
    theta = theta - m / (sqrt(v) + eps_t) * lr_t;
}

/* The loops, one per formula and dtype: n elements of C-contiguous arrays. */
#define TV_LOOPS(T, S)                                                                            \
TV_KERNEL tinyvae_bernoulli_nll_##S(const T *l, const T *x, T *nll, T *dl, long long n) {         \
    TV_FOR(i, n) bernoulli_nll(l[i], x[i], nll[i], dl[i]);                                       \
}                                                                                                 \
TV_KERNEL tinyvae_gaussian_kl_##S(const T *mu, const T *lv, T *kl, T *dlv, long long n) {         \
    TV_FOR(i, n) gaussian_kl(mu[i], lv[i], kl[i], dlv[i]);                                       \
}                                                                                                 \
TV_KERNEL tinyvae_reparameterize_##S(const T *mu, const T *lv, const T *eps, T *z, T *std,        \
                                     long long n) {                                               \
    TV_FOR(i, n) reparameterize(mu[i], lv[i], eps[i], z[i], std[i]);                             \
}                                                                                                 \
TV_KERNEL tinyvae_reparameterize_bwd_##S(const T *dz, const T *std, const T *eps, T *dlv,         \
                                         long long n) {                                           \
    TV_FOR(i, n) dlv[i] = reparameterize_bwd(dz[i], std[i], eps[i]);                             \
}                                                                                                 \
TV_KERNEL tinyvae_adam_update_##S(T *theta, const T *g, T *m, T *v, T lr_t, T eps_t, T c1, T c2,  \
                                  long long n) {                                                  \
    TV_FOR(i, n) adam_update(theta[i], g[i], m[i], v[i], lr_t, eps_t, c1, c2);                   \
}

TV_LOOPS(float, f32)
TV_LOOPS(double, f64)
"""


def kernel_names() -> list[str]:
    """Every kernel the source defines: "tinyvae_<formula>_<f32|f64>"."""
    return [f"tinyvae_{kernel}_{suffix}" for kernel in KERNELS for suffix in ("f32", "f64")]


SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}


class CudaKernels:
    """The kernels compiled for the current GPU by CuPy (``xp``), with NumPy-like wrappers.

    Each wrapper takes arrays of one floating dtype, makes them C-contiguous (the kernels
    index raw memory), allocates its outputs and launches one kernel on the current stream.
    Nothing is read back to the host.
    """

    def __init__(self, xp: ModuleType, source: str) -> None:
        self.xp = xp
        self.module = xp.RawModule(code=source, options=NVRTC_OPTIONS)
        self.functions = {name: self.module.get_function(name) for name in kernel_names()}

    def _launch(self, kernel: str, arrays: list[Any], scalars: tuple[float, ...] = ()) -> None:
        """Launch tinyvae_<kernel>_<dtype> over arrays[0].size elements."""
        dtype = arrays[0].dtype
        n = arrays[0].size
        blocks = max(1, min((n + THREADS - 1) // THREADS, MAX_BLOCKS))
        args = (*arrays, *(dtype.type(s) for s in scalars), np.int64(n))
        self.functions[f"tinyvae_{kernel}_{SUFFIX[dtype]}"]((blocks,), (THREADS,), args)

    def _inputs(self, *arrays: Array) -> list[Array]:
        dtype = arrays[0].dtype
        if dtype not in SUFFIX or any(a.dtype != dtype or a.shape != arrays[0].shape for a in arrays):
            raise TypeError(f"the CUDA kernels take float32 or float64 arrays of one dtype and shape, got "
                            f"{[(str(a.dtype), tuple(a.shape)) for a in arrays]}")
        return [self.xp.ascontiguousarray(a) for a in arrays]

    def bernoulli_nll(self, logits: Array, x: Array) -> tuple[Array, Array]:
        """losses.bernoulli_nll: nll (N,) and dnll/dlogits (N, D)."""
        logits, x = self._inputs(logits, x)
        nll, dlogits = self.xp.empty_like(logits), self.xp.empty_like(logits)
        self._launch("bernoulli_nll", [logits, x, nll, dlogits])
        return nll.sum(axis=1), dlogits

    def gaussian_kl(self, mu: Array, logvar: Array) -> tuple[Array, Array, Array]:
        """losses.gaussian_kl: kl (N,), dkl/dmu = mu (N, J), dkl/dlogvar (N, J)."""
        mu_c, logvar = self._inputs(mu, logvar)
        kl, dlogvar = self.xp.empty_like(mu_c), self.xp.empty_like(mu_c)
        self._launch("gaussian_kl", [mu_c, logvar, kl, dlogvar])
        return kl.sum(axis=1), mu, dlogvar

    def reparameterize(self, mu: Array, logvar: Array, eps: Array) -> tuple[Array, Array]:
        """z = mu + std·eps and std = exp(½·logvar), each (N, J)."""
        mu, logvar, eps = self._inputs(mu, logvar, eps)
        z, std = self.xp.empty_like(mu), self.xp.empty_like(mu)
        self._launch("reparameterize", [mu, logvar, eps, z, std])
        return z, std

    def reparameterize_bwd(self, dz: Array, std: Array, eps: Array) -> Array:
        """dL/dlogvar = ½·dz·std·eps (N, J)."""
        dz, std, eps = self._inputs(dz, std, eps)
        dlogvar = self.xp.empty_like(dz)
        self._launch("reparameterize_bwd", [dz, std, eps, dlogvar])
        return dlogvar

    def adam_update(self, theta: Array, g: Array, m: Array, v: Array,
                    lr_t: float, eps_t: float, c1: float, c2: float) -> None:
        """optim.Adam._update in place over the flat buffers θ, g, m, v (all (P,), contiguous);
        the same signature as tinyvae.fast.cpu_kernels.adam_update."""
        self._inputs(theta, g, m, v)
        if not all(a.flags.c_contiguous for a in (theta, m, v)):
            raise TypeError("adam_update updates θ, m and v in place: they must be C-contiguous")
        self._launch("adam_update", [theta, g, m, v], (lr_t, eps_t, c1, c2))


@cache
def load_cuda_kernels(xp: ModuleType) -> CudaKernels:
    """The kernels compiled with ``xp`` (cupy), once per process."""
    return CudaKernels(xp, cuda_source())


class CudaReparameterize(Reparameterize):
    """Reparameterize with one launch forward (z and std together) and one backward."""

    def __init__(self, kernels: CudaKernels) -> None:
        self.kernels = kernels

    def forward(self, mu: Array, logvar: Array, eps: Array | None = None, rng: Any = None) -> Array:
        self.eps = self.noise_for(mu, eps, rng)
        z, self.std = self.kernels.reparameterize(mu, logvar, self.eps)
        return z

    def backward(self, dz: Array) -> tuple[Array, Array]:
        return dz, self.kernels.reparameterize_bwd(dz, self.std, self.eps)
