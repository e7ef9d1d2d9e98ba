"""Optimizers against hand-written references of their update rules."""

import numpy as np
import pytest

from tinyvae import SGD, Adam, Parameters
from tinyvae.backend import get_backend
from tinyvae.fast import cpu_kernels, twins_for
from tinyvae.nn.layers import Linear

STEPS = 6


def make_params(backend, seed=0):
    return Parameters({"fc": Linear(4, 3)}, backend, "float64", seed=seed)  # 15 values


def gradient_sequence(size, seed=5):
    """Gradients of very different scales, so bias correction and eps both matter."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(size) * 10.0 ** rng.integers(-4, 2, size) for _ in range(STEPS)]


def adam_algorithm_1(theta, grads, lr, beta1, beta2, eps):
    """Kingma & Ba (2014), Algorithm 1, written out literally."""
    theta = theta.copy()
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    for t, g in enumerate(grads, start=1):
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        m_hat = m / (1 - beta1**t)
        v_hat = v / (1 - beta2**t)
        theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
    return theta


def adam_max_error(optimizer_class, backend, fused=True, **hyper):
    """max |θ_ours − θ_reference| after STEPS updates with the same gradients."""
    params = make_params(backend)
    start = backend.to_numpy(params.data).copy()
    grads = gradient_sequence(params.size)
    twin = twins_for(params.backend).adam_update if fused else None
    optimizer = optimizer_class(params, **hyper, fused_update=twin)
    for g in grads:
        params.grad[...] = backend.asarray(g)
        optimizer.step()
    expected = adam_algorithm_1(start, grads, **hyper)
    return float(np.max(np.abs(backend.to_numpy(params.data) - expected)))


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "reference"])
@pytest.mark.parametrize("hyper", [
    dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8),     # the defaults
    dict(lr=0.1, beta1=0.5, beta2=0.9, eps=1e-2),        # eps large enough to matter
])
def test_adam_matches_algorithm_1(backend, hyper, fused):
    assert adam_max_error(Adam, backend, **hyper, fused=fused) <= 1e-7


def run_adam(dtype, steps=12, seed=3, fused=True, **hyper):
    """θ, m, v after ``steps`` updates of a 652-number model, gradients spanning 1e-6 to 10; with the
    CPU's fused twin of the update where ``fused`` (as the trainer runs it), else the reference."""
    params = Parameters({"fc": Linear(25, 24), "out": Linear(24, 1)}, None, dtype, seed=0)
    adam = Adam(params, **hyper, fused_update=twins_for(get_backend("cpu")).adam_update if fused else None)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        params.grad[...] = rng.standard_normal(params.size) * 10.0 ** rng.integers(-6, 2, params.size)
        adam.step()
    return adam, [params.data, adam.m, adam.v]


@pytest.mark.parametrize("bias_correction", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_cpu_adam_gives_the_references_bits(dtype, bias_correction):
    """The Numba kernel does the reference's arithmetic in the same order and dtype: equal bits."""
    pytest.importorskip("numba")
    fused, ours = run_adam(dtype, bias_correction=bias_correction)
    reference, theirs = run_adam(dtype, bias_correction=bias_correction, fused=False)
    assert fused.fused_update is not None and reference.fused_update is None
    for a, b in zip(ours, theirs, strict=True):
        assert a.dtype == np.dtype(dtype) and np.array_equal(a, b)


def test_adam_update_loop_equals_the_reference_without_numba(monkeypatch):
    """The kernel's Python source itself (run uncompiled, so this needs no Numba) is the reference's maths."""
    monkeypatch.setattr(Adam, "__init__", with_kernel(cpu_kernels.adam_update))
    _, ours = run_adam("float32", steps=3)
    monkeypatch.undo()
    _, theirs = run_adam("float32", steps=3, fused=False)
    for a, b in zip(ours, theirs, strict=True):
        assert np.array_equal(a, b)


def test_fused_cpu_adam_compiles_where_its_cache_cannot_be_written(monkeypatch):
    numba = pytest.importorskip("numba")
    njit = numba.njit

    def njit_without_a_cache_folder(*args, cache=False, **kwargs):
        if cache:
            raise RuntimeError("cannot cache function 'adam_update': no locator available")
        return njit(*args, **kwargs)

    monkeypatch.setattr(numba, "njit", njit_without_a_cache_folder)
    cpu_kernels.compiled_adam_update.cache_clear()
    try:
        fused, ours = run_adam("float32", steps=3)
    finally:
        cpu_kernels.compiled_adam_update.cache_clear()
    _, theirs = run_adam("float32", steps=3, fused=False)
    assert fused.fused_update is not None
    assert all(np.array_equal(a, b) for a, b in zip(ours, theirs, strict=True))


def with_kernel(kernel):
    """An Adam.__init__ that installs ``kernel`` as the fused CPU update."""
    init = Adam.__init__

    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.fused_update = kernel
    return __init__


def test_adam_defaults_are_the_papers():
    adam = Adam(make_params(None))
    assert (adam.lr, adam.beta1, adam.beta2, adam.eps) == (1e-3, 0.9, 0.999, 1e-8)


def sgd_reference(theta, grads, lr, momentum):
    theta, velocity = theta.copy(), np.zeros_like(theta)
    for g in grads:
        velocity = momentum * velocity + g
        theta = theta - lr * velocity
    return theta


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_matches_reference(backend, momentum):
    params = make_params(backend)
    start = backend.to_numpy(params.data).copy()
    grads = gradient_sequence(params.size)
    sgd = SGD(params, lr=0.05, momentum=momentum)
    for g in grads:
        params.grad[...] = backend.asarray(g)
        sgd.step()
    expected = sgd_reference(start, grads, 0.05, momentum)
    assert np.max(np.abs(backend.to_numpy(params.data) - expected)) <= 1e-7


@pytest.mark.parametrize("optimizer_class", [Adam, SGD])
def test_state_dict_resumes_bitwise(optimizer_class):
    grads = gradient_sequence(15)
    straight = make_params(None)
    opt = optimizer_class(straight, lr=0.01)
    for g in grads:
        straight.grad[...] = g
        opt.step()

    first = make_params(None)
    opt = optimizer_class(first, lr=0.01)
    for g in grads[:3]:
        first.grad[...] = g
        opt.step()
    state, weights = opt.state_dict(), first.data.copy()

    second = make_params(None, seed=99)                      # different start, then restored
    second.load(weights)
    opt2 = optimizer_class(second, lr=0.5)                    # hyperparameters come from the state
    opt2.load_state_dict(state)
    for g in grads[3:]:
        second.grad[...] = g
        opt2.step()
    assert np.array_equal(second.data, straight.data)


def test_adam_minimizes_a_quadratic():
    params = make_params(None)
    target = np.linspace(-1, 1, params.size)
    adam = Adam(params, lr=0.05)
    for _ in range(500):
        params.grad[...] = params.data - target               # ∇ ½‖θ − target‖²
        adam.step()
    assert np.max(np.abs(params.data - target)) < 1e-3


@pytest.mark.parametrize("make, kwargs, says", [
    (Adam, {"lr": 0}, "lr must be a finite number > 0, got 0"),
    (Adam, {"lr": float("nan")}, "lr must be a finite number > 0, got nan"),
    (Adam, {"beta2": 1.0}, "beta2 must be a finite number ≥ 0 and < 1, got 1.0"),
    (Adam, {"eps": -1e-8}, "eps must be a finite number ≥ 0, got -1e-08"),
    (SGD, {"lr": float("nan")}, "lr must be a finite number > 0, got nan"),
    (SGD, {"momentum": 1.5}, "momentum must be a finite number ≥ 0 and < 1, got 1.5"),
])
def test_bad_hyperparameters_are_refused_by_name(make, kwargs, says):
    with pytest.raises(ValueError) as err:
        make(make_params(None), **kwargs)
    assert str(err.value) == says


def test_bad_state_is_refused():
    adam = Adam(make_params(None))
    state = adam.state_dict()
    state["m"] = np.zeros(7)
    with pytest.raises(ValueError, match="has shape"):
        adam.load_state_dict(state)
