"""Fetch MNIST and Fashion-MNIST from their official mirrors, checked against the published MD5s.

For each of the four files missing from the target folder, :func:`download_missing` tries the
mirrors in turn::

    stream  MIRROR/NAME.gz  →  FOLDER/.NAME.gz.PID.part   (hashing while it writes, tqdm bar)
    MD5 as published?  yes → os.replace(part, FOLDER/NAME.gz): the final name only ever
                             appears complete and verified, even if the process is killed
                       no  → delete the part file, say so, try the next mirror
    network error          → say so, try the next mirror
    every mirror failed    → DataError, one sentence

Files found on disk instead (``--data-dir``, Debian's package, the cache) are checked with
:func:`check_content` against the MD5 of their *decompressed* content, because a copy can be
gzipped again by someone else (Debian's Fashion-MNIST is) and still hold the same bytes.

Tests replace :func:`urlopen` (or pass ``file://`` mirrors), so they never touch the network.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from tqdm import tqdm

from tinyvae.data.idx import DataError

# The four files of a release, without ".gz". "t10k" is the official name of the test split.
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
TITLES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}

# MD5 of every file: "NAME.gz" is the gzip file as published (the same values as on the
# datasets' pages and in torchvision), "NAME" is its decompressed content.
CHECKSUMS = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
        "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
        "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
        "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
    },
}

MIRRORS = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion-mnist": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
}

OFFLINE_HINT = ("put the four IDX files in a folder and pass --data-dir DIR, "
                "or use --dataset digits, which ships with tinyvae")
NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError)
CHUNK = 1 << 20  # bytes per read while streaming


def urlopen(url: str, timeout: float = 30.0) -> BinaryIO:
    """Open ``url`` for reading. The one door to the network: tests replace it with a fake mirror."""
    return urllib.request.urlopen(url, timeout=timeout)


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def file_md5(path: str | os.PathLike) -> str:
    """The MD5 of the bytes of the file at ``path``, as ``md5sum`` prints it."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_content(data: bytes, dataset: str, name: str, source: str | os.PathLike) -> None:
    """Raise DataError unless ``data``, the decompressed content of ``source``, is the official file ``name``."""
    expected, actual = CHECKSUMS[dataset][name], md5_hex(data)
    if actual != expected:
        raise DataError(f"{source} does not match the published {TITLES[dataset]} checksum (its content has "
                        f"MD5 {actual}, not {expected}): it is corrupt or another dataset's file, so replace it "
                        "with the official one.")


def _say(message: str) -> None:
    print(f"tinyvae: {message}", file=sys.stderr)


def _stream(url: str, out: BinaryIO, label: str, progress: bool) -> str:
    """Copy ``url`` into ``out`` with a progress bar; return the MD5 of what was written."""
    digest = hashlib.md5(usedforsecurity=False)
    with urlopen(url) as response:
        headers = getattr(response, "headers", None)
        length = headers.get("Content-Length") if headers is not None else None
        with tqdm(total=int(length) if length else None, desc=label, unit="B", unit_scale=True,
                  unit_divisor=1024, disable=not progress) as bar:
            while chunk := response.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
                bar.update(len(chunk))
    return digest.hexdigest()


def download_file(dataset: str, filename: str, folder: str | os.PathLike,
                  mirrors: Sequence[str] | None = None, progress: bool = True) -> Path:
    """Download ``filename`` (e.g. "train-images-idx3-ubyte.gz") of ``dataset`` into ``folder``.

    Tries each mirror in turn until one serves the file with the published MD5; returns the path.
    """
    title, expected = TITLES[dataset], CHECKSUMS[dataset][filename]
    mirrors = MIRRORS[dataset] if mirrors is None else mirrors
    final, failures, last_error = Path(folder) / filename, [], ""
    for i, mirror in enumerate(mirrors):
        url = mirror.rstrip("/") + "/" + filename
        then = "trying the next mirror" if i + 1 < len(mirrors) else "no mirror left to try"
        part = Path(folder) / f".{filename}.{os.getpid()}.part"  # same folder, so os.replace is atomic
        try:
            with open(part, "wb") as out:
                actual = _stream(url, out, filename, progress)
            if actual == expected:
                os.replace(part, final)
                return final
            failures.append("checksum")
            part.unlink()
            _say(f"{url} does not match the published MD5 ({actual} instead of {expected}): "
                 f"deleted the partial file, {then}.")
        except NETWORK_ERRORS as err:
            failures.append("network")
            last_error = str(getattr(err, "reason", err))
            _say(f"could not download {url} ({last_error}), {then}.")
        except OSError as err:
            raise DataError(f"could not save {filename} in {folder} ({err}).") from None
        finally:
            part.unlink(missing_ok=True)
    if "checksum" in failures:
        raise DataError(f"could not download {filename} of {title}: no mirror served it with the published "
                        f"MD5 {expected}, so nothing was saved.")
    raise DataError(f"could not download {title} (no network? {last_error or 'no mirrors'}): {OFFLINE_HINT}.")


def download_missing(dataset: str, folder: str | os.PathLike, progress: bool = True) -> Path:
    """Download into ``folder`` each of the four files that is not already there (as NAME or NAME.gz)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"cannot create the download folder {folder} ({err.strerror or err}).") from None
    for name in IDX_FILES:
        if not (folder / name).exists() and not (folder / f"{name}.gz").exists():
            download_file(dataset, f"{name}.gz", folder, progress=progress)
    return folder
