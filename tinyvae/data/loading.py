"""Datasets: MNIST, Fashion-MNIST and the UCI digits, as uint8 arrays, plus their conversion to floats.

    ds = load_dataset("digits")                 # ships with tinyvae: works offline, anywhere
    ds.train_images                             # (1501, 64) uint8 in 0..16 = ds.max_value
    x = to_float(ds.train_images[:128], ds.max_value, "float32")   # (128, 64) in [0, 1]

Images stay uint8 (on the device, if you move them there) and become floats one batch at a
time: 4× less memory and host↔device traffic than float32.

Where ``load_dataset("mnist")`` (or "fashion-mnist") looks, first match wins; each folder may
hold the four files directly or in a sub-folder named after the dataset, gzipped or not::

    1. data_dir                        (--data-dir DIR)
    2. $TINYVAE_DATA
    3. the cache: cache_dir/<name>/, by default ~/.cache/tinyvae/<name>/ (or $XDG_CACHE_HOME/tinyvae)
    4. system folders: Debian's dataset-fashion-mnist in /usr/share/datasets/fashion-mnist
    5. download into the cache from the official mirrors (tinyvae.data.download), unless download=False

Every file is checked against the published MD5 of its content before use.

Binarization, for a Bernoulli decoder that expects x ∈ {0, 1}:
  "none"     x = pixel / max_value, grey levels in [0, 1] (what pytorch/examples trains on)
  "static"   one seeded draw x ~ Bernoulli(pixel / max_value), frozen for good: :func:`binarize_static`
             (the fixed binarization of Larochelle & Murray 2011, used for likelihood benchmarks)
  "dynamic"  a fresh draw every time a batch is used: :func:`to_float` (Burda et al. 2016, IWAE)
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinyvae.backend import array_module
from tinyvae.data.download import IDX_FILES, OFFLINE_HINT, TITLES, check_content, download_missing
from tinyvae.data.idx import DataError, parse_idx, read_idx_bytes
from tinyvae.nn.base import Array

__all__ = ["BINARIZE", "DATASETS", "DataError", "Dataset", "binarize_static", "load_dataset", "test_pixels",
           "to_float", "train_pixels"]

DATASETS = ("mnist", "fashion-mnist", "digits")
BINARIZE = ("none", "static", "dynamic")

CLASS_NAMES = {
    "mnist": tuple("0123456789"),
    "fashion-mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    "digits": tuple("0123456789"),
}
SYSTEM_FOLDERS = {"fashion-mnist": ("/usr/share/datasets/fashion-mnist",)}  # Debian: dataset-fashion-mnist
DIGITS_FILE = Path(__file__).parent / "datasets" / "digits.csv.gz"
DIGITS_TEST_EVERY = 6  # every 6th image of each class is a test image


@dataclass(frozen=True, eq=False)  # eq=False: comparing arrays with == has no single truth value
class Dataset:
    """A dataset split into train and test, as flat uint8 images and int64 labels.

    train_images: (N_train, D) uint8, each row an image flattened row-major (D = H·W)
    train_labels: (N_train,) int64 in 0..9
    test_images, test_labels: the same for the test split
    image_shape:  (H, W): (28, 28) for (fashion-)mnist, (8, 8) for digits
    max_value:    the largest pixel value: 255, or 16 for digits; pixel / max_value ∈ [0, 1]
    class_names:  the names of labels 0..9
    source:       where it was read from: a folder, or "tinyvae/data/datasets/digits.csv.gz"
    """

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    image_shape: tuple[int, int]
    max_value: int
    class_names: tuple[str, ...]
    source: str

    @property
    def input_dim(self) -> int:
        """D, the number of pixels per image."""
        return self.image_shape[0] * self.image_shape[1]

    def __str__(self) -> str:
        h, w = self.image_shape
        return (f"{self.name}: {len(self.train_images):,} train + {len(self.test_images):,} test images "
                f"of {h}×{w}, pixels 0..{self.max_value}, from {self.source}")


def load_dataset(name: str, data_dir: str | os.PathLike | None = None, download: bool = True,
                 progress: bool = True, cache_dir: str | os.PathLike | None = None) -> Dataset:
    """Load ``name`` (one of DATASETS), looking for files as the module docstring lists.

    data_dir:  a folder with the four IDX files (or a sub-folder named ``name``); ignored for digits
    download:  fetch missing (fashion-)MNIST files into the cache; False raises DataError instead
    progress:  show a progress bar while downloading
    cache_dir: where downloads go (in cache_dir/<name>/); default ~/.cache/tinyvae
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}")
    if name == "digits":
        return load_digits()
    folder = find_idx_folder(name, data_dir, cache_dir)
    if folder is None:
        if not download:
            looked = ", ".join(str(f) for f in search_folders(name, data_dir, cache_dir))
            raise DataError(f"{TITLES[name]} not found (looked in {looked}) and downloading is off: {OFFLINE_HINT}.")
        folder = download_missing(name, cache_folder(name, cache_dir), progress)
    train_images, train_labels = read_idx_split(folder, "train", name)
    test_images, test_labels = read_idx_split(folder, "t10k", name)
    return Dataset(name, train_images, train_labels, test_images, test_labels, (28, 28), 255,
                   CLASS_NAMES[name], str(folder))


# --- finding (fashion-)MNIST on disk ---------------------------------------------------------

def cache_folder(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where downloads of ``name`` go: cache_dir/<name>, by default ~/.cache/tinyvae/<name>."""
    if cache_dir is None:
        cache_dir = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tinyvae"
    return Path(cache_dir).expanduser() / name


def search_folders(name: str, data_dir: str | os.PathLike | None = None,
                   cache_dir: str | os.PathLike | None = None) -> list[Path]:
    """The folders that may hold ``name``'s files, in lookup order."""
    folders = []
    for root in (data_dir, os.environ.get("TINYVAE_DATA") or None):
        if root is not None:
            folders += [Path(root).expanduser() / name, Path(root).expanduser()]
    folders.append(cache_folder(name, cache_dir))
    return folders + [Path(p) for p in SYSTEM_FOLDERS.get(name, ())]


def idx_path(folder: str | os.PathLike, stem: str) -> Path | None:
    """folder/stem if it exists, else folder/stem.gz if that exists, else None."""
    for path in (Path(folder) / stem, Path(folder) / f"{stem}.gz"):
        if path.is_file():
            return path
    return None


def find_idx_folder(name: str, data_dir: str | os.PathLike | None = None,
                    cache_dir: str | os.PathLike | None = None) -> Path | None:
    """The first folder in lookup order that holds all four files of ``name``, or None.

    A folder holding only some of them is an error (a wrong --data-dir, say), except the
    cache, where the download completes it; so is a data_dir or $TINYVAE_DATA that does not exist.
    """
    for label, root in (("data folder", data_dir), ("$TINYVAE_DATA folder", os.environ.get("TINYVAE_DATA") or None)):
        if root is not None and not Path(root).expanduser().is_dir():
            raise DataError(f"the {label} {root} does not exist.")
    cache = cache_folder(name, cache_dir)
    for folder in search_folders(name, data_dir, cache_dir):
        missing = [stem for stem in IDX_FILES if idx_path(folder, stem) is None]
        if not missing:
            return folder
        if len(missing) < len(IDX_FILES) and folder != cache:
            raise DataError(f"{folder} holds only {len(IDX_FILES) - len(missing)} of the 4 {TITLES[name]} files "
                            f"(missing {', '.join(m + '[.gz]' for m in missing)}).")
    return None


def read_idx_split(folder: str | os.PathLike, split: str, dataset: str,
                   verify: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 784) uint8 and labels (N,) int64 of ``split`` ("train" or "t10k") in ``folder``.

    verify: check each file against the published MD5 of its content (tests of the reader turn it off).
    """
    if split not in ("train", "t10k"):
        raise ValueError(f"unknown split {split!r}: choose train or t10k")
    arrays, paths = [], []
    for kind, ndim in (("images", 3), ("labels", 1)):
        stem = f"{split}-{kind}-idx{ndim}-ubyte"
        path = idx_path(folder, stem)
        if path is None:
            raise DataError(f"{Path(folder) / stem}[.gz] does not exist.")
        data = read_idx_bytes(path)
        if verify:
            check_content(data, dataset, stem, path)
        arrays.append(parse_idx(data, path))
        paths.append(path)
    (images, labels), (images_path, labels_path) = arrays, paths
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(f"{images_path} holds arrays of shape {images.shape}, not N×28×28 images.")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(f"{labels_path} holds {labels.shape} labels for the {len(images):,} images "
                        f"in {images_path}: the two files do not belong together.")
    if labels.size and labels.max() > 9:
        raise DataError(f"{labels_path} holds label {labels.max()}, but labels must be digits 0..9.")
    return images.reshape(len(images), -1), labels.astype(np.int64)


# --- the UCI digits, shipped with tinyvae ---------------------------------------------------

def digits_test_mask(labels: np.ndarray) -> np.ndarray:
    """(N,) bool: True for the 6th, 12th, 18th, ... image of each class, in file order.

    A fixed rule rather than a random permutation: the split is stratified (~1/6 of every
    class is held out) and the same on every machine and every NumPy version.
    """
    mask = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        mask[np.flatnonzero(labels == c)[DIGITS_TEST_EVERY - 1::DIGITS_TEST_EVERY]] = True
    return mask


def load_digits() -> Dataset:
    """The 1,797 UCI digits (8×8, pixels 0..16), split by :func:`digits_test_mask` into 1,501 + 296.

    The file is gzipped CSV, one image per line: 64 pixels (row-major) then the label.
    """
    source = "tinyvae/data/datasets/digits.csv.gz"
    try:
        with gzip.open(DIGITS_FILE, "rt") as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.int64, ndmin=2)
    except (OSError, EOFError, ValueError) as err:
        raise DataError(f"cannot read {source} ({err}): reinstall tinyvae.") from None
    if table.shape[1] != 65 or table.min() < 0 or table[:, :64].max() > 16 or table[:, 64].max() > 9:
        raise DataError(f"{source} is not 64 pixels in 0..16 and a label in 0..9 per line: reinstall tinyvae.")
    images, labels = table[:, :64].astype(np.uint8), table[:, 64]
    test = digits_test_mask(labels)
    return Dataset("digits", images[~test], labels[~test], images[test], labels[test], (8, 8), 16,
                   CLASS_NAMES["digits"], source)


# --- from uint8 to floats, one batch at a time ----------------------------------------------

def to_float(batch: Array, max_value: int, dtype: Any, binarize: str = "none", rng: Any = None) -> Array:
    """A uint8 batch (N, D) as floats of ``dtype``, on the batch's own device (NumPy or CuPy).

    binarize="none":    x = batch / max_value ∈ [0, 1], in one pass (uint8 → float and scale together)
    binarize="dynamic": x ~ Bernoulli(batch / max_value) ∈ {0, 1}, drawn afresh from ``rng``
                        (a numpy or cupy Generator on the batch's device) on every call
    "static" binarization happens once, beforehand: see :func:`binarize_static`.
    """
    xp = array_module(batch)
    dtype = xp.dtype(dtype)
    if binarize not in BINARIZE:
        raise ValueError(f"unknown binarization {binarize!r}: choose one of {', '.join(BINARIZE)}")
    if binarize == "static":
        raise ValueError("binarize='static' is applied once to the whole dataset with binarize_static(), "
                         "not per batch: pass the result to to_float with binarize='none'")
    x = xp.multiply(batch, dtype.type(1.0 / max_value), dtype=dtype)  # (N, D) in [0, 1]
    if binarize == "none":
        return x
    if rng is None:
        raise ValueError("binarize='dynamic' needs rng, a random Generator on the batch's device")
    return (rng.random(x.shape, dtype=dtype) < x).astype(dtype)     # P(1) = x, since u ~ U[0, 1)


def binarize_static(images: np.ndarray, max_value: int, seed: int) -> np.ndarray:
    """One seeded Bernoulli draw per pixel, p = pixel / max_value: uint8 in {0, 1} (max_value becomes 1).

    This is the *fixed* binarization of Larochelle & Murray (2011): draw once, keep it, so every
    epoch and every model sees the same binary images (binarize the train and test splits with
    different seeds). The same seed gives the same images for a given NumPy version.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(f"binarize_static expects uint8 images, got {images.dtype}")
    rng = np.random.default_rng(seed)
    p = to_float(images, max_value, np.float32)                          # (N, D) in [0, 1]
    return (rng.random(p.shape, dtype=np.float32) < p).astype(np.uint8)  # the draw to_float "dynamic" makes


def test_pixels(dataset: Dataset, binarize: str, seed: int) -> tuple[np.ndarray, int]:
    """(test, test_max): the uint8 test images as training scores them, and their maximum.

    With binarize "static" or "dynamic" the test set is binarized once with seed + 1 (the same
    images every epoch, every evaluation); otherwise pixels / max_value are grey levels.
    """
    if binarize in ("static", "dynamic"):
        return binarize_static(dataset.test_images, dataset.max_value, seed + 1), 1
    return dataset.test_images, dataset.max_value


def train_pixels(dataset: Dataset, binarize: str, seed: int) -> tuple[np.ndarray, int]:
    """(train, train_max): the uint8 training images with a binarization frozen by ``seed``.

    For "static" these are the images training uses; for "dynamic" one draw of the kind
    training makes afresh every batch (what an evaluation's classifiers are fitted on).
    """
    if binarize in ("static", "dynamic"):
        return binarize_static(dataset.train_images, dataset.max_value, seed), 1
    return dataset.train_images, dataset.max_value
