import numpy as np
import pytest

from tinyvae.backend import BackendError, array_module, get_backend, gpu_available, to_host
from tinyvae.nn.layers import Linear, mlp
from tinyvae.nn.params import Parameters


def test_cpu_backend_roundtrip():
    b = get_backend("cpu")
    assert b.name == "cpu" and b.xp is np and not b.is_gpu
    x = b.asarray([[1, 2]], dtype="float32")
    assert x.dtype == np.float32 and b.to_numpy(x).tolist() == [[1.0, 2.0]]
    b.synchronize()  # a no-op, but it must exist


def test_unknown_backend_name():
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        get_backend("tpu")


def test_auto_falls_back_and_says_which(capsys):
    b = get_backend("auto", verbose=True)
    assert b.name == ("gpu" if gpu_available() else "cpu")
    assert "device auto chose" in capsys.readouterr().err


@pytest.mark.skipif(gpu_available(), reason="this machine has a GPU")
def test_gpu_without_gpu_is_one_sentence_naming_the_extra():
    with pytest.raises(BackendError) as info:
        get_backend("gpu")
    message = str(info.value)
    assert "[gpu]" in message and "\n" not in message


def test_seeded_rng_repeats(backend):
    a = backend.to_numpy(backend.rng(7).standard_normal((3, 2), dtype="float32"))
    b = backend.to_numpy(backend.rng(7).standard_normal((3, 2), dtype="float32"))
    assert a.dtype == np.float32 and np.array_equal(a, b)


def test_array_module(backend):
    x = backend.asarray(np.zeros(3))
    assert array_module(x) is backend.xp
    assert isinstance(to_host(x), np.ndarray)
    with pytest.raises(TypeError):
        array_module([1, 2, 3])


def test_parameters_are_views_of_one_buffer(backend):
    net = mlp([5, 4, 3])
    params = Parameters({"net": net}, backend, "float64", seed=0)
    assert params.names() == ["net.0.W", "net.0.b", "net.2.W", "net.2.b"]
    assert params.size == 5 * 4 + 4 + 4 * 3 + 3
    first = net.layers[0]
    first.W[0, 0] = 42.0                      # writing through the layer's view...
    assert float(params.data[0]) == 42.0      # ...changes the flat buffer
    params.grad[:] = 1.0
    assert float(first.db.sum()) == 4.0       # and gradients are views too


def test_initialization_is_identical_on_every_device_and_seeded(backend):
    cpu = Parameters({"fc": Linear(6, 3)}, get_backend("cpu"), "float32", seed=3)
    dev = Parameters({"fc": Linear(6, 3)}, backend, "float32", seed=3)
    other = Parameters({"fc": Linear(6, 3)}, backend, "float32", seed=4)
    assert np.array_equal(cpu.data, backend.to_numpy(dev.data))
    assert not np.array_equal(cpu.data, backend.to_numpy(other.data))


def test_parameters_reject_integer_dtype():
    with pytest.raises(ValueError, match="floating point"):
        Parameters({"fc": Linear(2, 2)}, dtype="int32")


def test_pytorch_kaiming_and_xavier_scales():
    big = Linear(1000, 500, init="kaiming")
    Parameters({"fc": big}, dtype="float64", seed=0)
    assert big.W.std() == pytest.approx(np.sqrt(2 / 1000), rel=0.02)
    assert np.all(big.b == 0)
    glorot = Linear(1000, 500, init="xavier")
    Parameters({"fc": glorot}, dtype="float64", seed=0)
    assert np.abs(glorot.W).max() <= np.sqrt(6 / 1500)
    assert glorot.W.std() == pytest.approx(np.sqrt(2 / 1500), rel=0.02)
    torchlike = Linear(1000, 500, init="pytorch")
    Parameters({"fc": torchlike}, dtype="float64", seed=0)
    bound = 1 / np.sqrt(1000)
    assert np.abs(torchlike.W).max() <= bound and np.abs(torchlike.b).max() <= bound
    assert torchlike.W.std() == pytest.approx(bound / np.sqrt(3), rel=0.02) and np.abs(torchlike.b).min() > 0
    with pytest.raises(ValueError, match="unknown init"):
        Linear(2, 2, init="orthogonal")
