"""Datasets: lookup order, validation, the shipped digits, real MNIST/Fashion-MNIST where present,
an offline end-to-end download, and the uint8 → float conversions on every backend."""

import hashlib
from pathlib import Path

import numpy as np
import pytest

from tinyvae.backend import array_module
from tinyvae.data import download
from tinyvae.data import loading as data
from tinyvae.data.download import IDX_FILES
from tinyvae.data.idx import write_idx
from tinyvae.data.loading import (
    BINARIZE,
    DATASETS,
    DataError,
    Dataset,
    binarize_static,
    digits_test_mask,
    find_idx_folder,
    load_dataset,
    read_idx_split,
    to_float,
)

SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(autouse=True)
def no_environment(monkeypatch):
    """Neither the user's $TINYVAE_DATA nor the system folders take part unless a test asks."""
    monkeypatch.delenv("TINYVAE_DATA", raising=False)
    monkeypatch.setattr(data, "SYSTEM_FOLDERS", {})


def touch_release(folder, gz=True):
    folder.mkdir(parents=True, exist_ok=True)
    for name in IDX_FILES:
        (folder / (f"{name}.gz" if gz else name)).write_bytes(b"")
    return folder


def fake_release(folder, n_train=5, n_test=3, labels_test=None):
    """A tiny valid (fashion-)MNIST release in ``folder``; returns the MD5s of its content."""
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.arange(n_train, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": np.arange(n_test, dtype=np.uint8) if labels_test is None else labels_test,
    }
    folder.mkdir(parents=True, exist_ok=True)
    md5s = {}
    for name, array in arrays.items():
        write_idx(folder / f"{name}.gz", array, compress=True)
        write_idx(folder / name, array)
        md5s[f"{name}.gz"] = hashlib.md5((folder / f"{name}.gz").read_bytes()).hexdigest()
        md5s[name] = hashlib.md5((folder / name).read_bytes()).hexdigest()
        (folder / name).unlink()
    return md5s


def test_unknown_dataset_names_the_choices():
    with pytest.raises(ValueError, match="unknown dataset 'cifar': choose one of mnist, fashion-mnist, digits"):
        load_dataset("cifar")
    assert DATASETS == ("mnist", "fashion-mnist", "digits") and BINARIZE == ("none", "static", "dynamic")


def test_lookup_order_data_dir_then_environment_then_cache(tmp_path, monkeypatch):
    given = touch_release(tmp_path / "given" / "mnist")           # DIR/<name>/, gzipped
    env = touch_release(tmp_path / "env", gz=False)               # DIR itself, uncompressed
    cache = touch_release(tmp_path / "cache" / "mnist")
    monkeypatch.setenv("TINYVAE_DATA", str(tmp_path / "env"))
    assert find_idx_folder("mnist", tmp_path / "given", tmp_path / "cache") == given
    assert find_idx_folder("mnist", None, tmp_path / "cache") == env
    monkeypatch.delenv("TINYVAE_DATA")
    assert find_idx_folder("mnist", None, tmp_path / "cache") == cache
    (tmp_path / "nothing").mkdir()
    assert find_idx_folder("mnist", tmp_path / "nothing", tmp_path / "empty") is None


def test_system_folders_come_after_the_cache(tmp_path, monkeypatch):
    system = touch_release(tmp_path / "usr-share")
    monkeypatch.setattr(data, "SYSTEM_FOLDERS", {"fashion-mnist": (str(system),)})
    assert find_idx_folder("fashion-mnist", None, tmp_path / "cache") == system
    cache = touch_release(tmp_path / "cache" / "fashion-mnist")
    assert find_idx_folder("fashion-mnist", None, tmp_path / "cache") == cache


def test_a_partial_folder_is_an_error_except_the_cache(tmp_path):
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "t10k-images-idx3-ubyte.gz").write_bytes(b"")
    with pytest.raises(DataError, match="holds only 1 of the 4 MNIST files") as info:
        find_idx_folder("mnist", tmp_path / "half", tmp_path / "cache")
    assert "train-images-idx3-ubyte[.gz]" in str(info.value) and "\n" not in str(info.value)
    (tmp_path / "cache" / "mnist").mkdir(parents=True)
    (tmp_path / "cache" / "mnist" / "t10k-images-idx3-ubyte.gz").write_bytes(b"")
    assert find_idx_folder("mnist", None, tmp_path / "cache") is None  # the download completes it


def test_a_data_dir_that_does_not_exist_is_an_error(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="^the data folder .*typo does not exist.$"):
        find_idx_folder("mnist", tmp_path / "typo")
    monkeypatch.setenv("TINYVAE_DATA", str(tmp_path / "gone"))
    with pytest.raises(DataError, match="TINYVAE_DATA folder .*gone does not exist"):
        load_dataset("fashion-mnist", cache_dir=tmp_path)


def test_not_found_without_download_says_where_it_looked(tmp_path):
    (tmp_path / "dir").mkdir()
    with pytest.raises(DataError) as info:
        load_dataset("mnist", tmp_path / "dir", download=False, cache_dir=tmp_path / "cache")
    message = str(info.value)
    assert message.startswith("MNIST not found") and "downloading is off" in message
    assert str(tmp_path / "cache" / "mnist") in message and "--dataset digits" in message and "\n" not in message


def test_offline_download_then_cache(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    for name, md5 in fake_release(mirror).items():
        monkeypatch.setitem(download.CHECKSUMS["mnist"], name, md5)
    monkeypatch.setitem(download.MIRRORS, "mnist", (mirror.as_uri(),))
    ds = load_dataset("mnist", cache_dir=tmp_path / "cache", progress=False)
    assert isinstance(ds, Dataset) and ds.source == str(tmp_path / "cache" / "mnist")
    assert ds.train_images.shape == (5, 784) and ds.test_images.shape == (3, 784) and ds.input_dim == 784
    assert ds.train_images.dtype == np.uint8 and ds.train_labels.dtype == np.int64
    assert ds.max_value == 255 and ds.image_shape == (28, 28) and ds.class_names[9] == "9"
    monkeypatch.setattr(download, "urlopen", None)  # a second load must not touch the network
    again = load_dataset("mnist", cache_dir=tmp_path / "cache")
    assert np.array_equal(again.test_images, ds.test_images)


def test_local_file_with_the_wrong_checksum_is_refused(tmp_path):
    fake_release(tmp_path / "mnist")
    with pytest.raises(DataError, match="does not match the published MNIST checksum"):
        load_dataset("mnist", tmp_path, download=False, cache_dir=tmp_path / "cache")


def test_split_validation(tmp_path):
    fake_release(tmp_path / "ok")
    images, labels = read_idx_split(tmp_path / "ok", "t10k", "mnist", verify=False)
    assert images.shape == (3, 784) and labels.tolist() == [0, 1, 2]
    fake_release(tmp_path / "bad-label", labels_test=np.array([0, 1, 10], dtype=np.uint8))
    with pytest.raises(DataError, match="label 10"):
        read_idx_split(tmp_path / "bad-label", "t10k", "mnist", verify=False)
    fake_release(tmp_path / "short", labels_test=np.array([0, 1], dtype=np.uint8))
    with pytest.raises(DataError, match="labels for the 3 images"):
        read_idx_split(tmp_path / "short", "t10k", "mnist", verify=False)
    write_idx(tmp_path / "ok" / "t10k-images-idx3-ubyte.gz", np.zeros((3, 8, 8), np.uint8), compress=True)
    with pytest.raises(DataError, match="not N×28×28 images"):
        read_idx_split(tmp_path / "ok", "t10k", "mnist", verify=False)


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="../shared/data/mnist is absent")
def test_real_mnist_test_split():
    images, labels = read_idx_split(SHARED_MNIST, "t10k", "mnist")  # checksums verified too
    assert images.shape == (10000, 784) and images.dtype == np.uint8 and images.max() == 255
    assert labels.dtype == np.int64 and sorted(set(labels.tolist())) == list(range(10))


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_debian_fashion_mnist(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "SYSTEM_FOLDERS", {"fashion-mnist": (str(DEBIAN_FASHION),)})
    ds = load_dataset("fashion-mnist", download=False, cache_dir=tmp_path)
    assert (len(ds.train_images), len(ds.test_images)) == (60000, 10000) and ds.source == str(DEBIAN_FASHION)
    assert ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot"
    assert np.bincount(ds.test_labels).tolist() == [1000] * 10


def test_digits_ship_with_the_package():
    ds = load_dataset("digits", data_dir="/ignored")
    assert (len(ds.train_images), len(ds.test_images)) == (1501, 296)  # 1,797 in all
    assert ds.train_images.shape[1] == 64 and ds.image_shape == (8, 8) and ds.max_value == 16
    assert ds.train_images.dtype == np.uint8 and ds.test_labels.dtype == np.int64
    assert ds.train_images.min() == 0 and max(ds.train_images.max(), ds.test_images.max()) == 16
    assert set(ds.train_labels.tolist()) == set(ds.test_labels.tolist()) == set(range(10))
    again = load_dataset("digits")
    assert np.array_equal(again.train_images, ds.train_images) and np.array_equal(again.test_labels, ds.test_labels)
    assert ds.source == "tinyvae/data/datasets/digits.csv.gz" and "1,501 train + 296 test" in str(ds)


def test_digits_split_rule():
    labels = np.array([0, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0])
    # class 0 sits at 0,2,3,4,5,6,7,13,...: its 6th is index 6 and its 12th index 17; class 1's 6th is 12
    assert np.flatnonzero(digits_test_mask(labels)).tolist() == [6, 12, 17]


def test_binarize_static_is_seeded_and_binary():
    images = np.random.default_rng(0).integers(0, 17, (200, 64), dtype=np.uint8)
    a, b = binarize_static(images, 16, seed=1), binarize_static(images, 16, seed=1)
    assert a.dtype == np.uint8 and set(np.unique(a).tolist()) <= {0, 1} and np.array_equal(a, b)
    assert not np.array_equal(a, binarize_static(images, 16, seed=2))
    assert np.all(a[images == 0] == 0) and np.all(a[images == 16] == 1)
    assert abs(a.mean() - images.mean() / 16) < 0.02
    same = to_float(images, 16, np.float32, "dynamic", np.random.default_rng(1))
    assert np.array_equal(a, same.astype(np.uint8))  # one dynamic draw, frozen


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_to_float_none(backend, dtype):
    batch = backend.asarray(np.arange(256, dtype=np.uint8).reshape(4, 64))
    x = to_float(batch, 255, dtype)
    assert array_module(x) is backend.xp and x.dtype == np.dtype(dtype)
    host = backend.to_numpy(x)
    assert host.min() == 0.0 and host.max() == 1.0
    np.testing.assert_allclose(host, np.arange(256).reshape(4, 64) / 255, rtol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_to_float_dynamic(backend, dtype):
    batch = backend.asarray(np.full((500, 64), 4, dtype=np.uint8))  # p = 4/16 = 0.25
    rng = backend.rng(0)
    a, b = to_float(batch, 16, dtype, "dynamic", rng), to_float(batch, 16, dtype, "dynamic", rng)
    assert a.dtype == np.dtype(dtype) and set(np.unique(backend.to_numpy(a)).tolist()) == {0.0, 1.0}
    assert not bool((a == b).all())  # a fresh draw on every call
    assert abs(float(a.mean()) - 0.25) < 0.01


def test_to_float_refuses_what_it_does_not_do():
    batch = np.zeros((2, 4), dtype=np.uint8)
    with pytest.raises(ValueError, match="binarize_static"):
        to_float(batch, 255, np.float32, "static")
    with pytest.raises(ValueError, match="needs rng"):
        to_float(batch, 255, np.float32, "dynamic")
    with pytest.raises(ValueError, match="unknown binarization 'otsu'"):
        to_float(batch, 255, np.float32, "otsu")
