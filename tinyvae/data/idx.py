"""The IDX file format of MNIST and Fashion-MNIST: read it, check it, write it.

An IDX file is a tiny header followed by the raw array, row-major (last index fastest)::

    offset   bytes   content
    0        2       0x00 0x00                   always zero
    2        1       type code                   0x08 = unsigned byte (the only one MNIST uses)
    3        1       n, the number of dimensions 3 for images, 1 for labels
    4        4·n     size of each dimension      big-endian uint32 each
    4 + 4·n  ∏ sizes the data                    one byte per item for type 0x08

So ``train-images-idx3-ubyte`` starts ``00 00 08 03 | 00 00 EA 60 | 00 00 00 1C | 00 00 00 1C``:
uint8, 3 dimensions, 60000 × 28 × 28, then 47,040,000 pixel bytes (0 = background, 255 = ink).
``train-labels-idx1-ubyte`` starts ``00 00 08 01 | 00 00 EA 60``: 60000 labels, one byte each.

The official files are gzipped (``.gz``); :func:`read_idx` accepts either and recognizes
gzip by its first two bytes, 1f 8b, not by the file name. Every way a file can be broken
(bad gzip, wrong magic number, short data, trailing bytes) raises :class:`DataError`
with one sentence that names the file.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

GZIP_MAGIC = b"\x1f\x8b"
UBYTE = 0x08  # IDX type code of unsigned bytes; 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64


class DataError(Exception):
    """A dataset is missing, corrupt or cannot be fetched. The message is one sentence for the user."""


def read_idx_bytes(path: str | os.PathLike) -> bytes:
    """The content of the IDX file at ``path``, decompressed if it is gzipped."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DataError(f"cannot read {path} ({err.strerror or err}).") from None
    if data[:2] != GZIP_MAGIC:
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as err:  # BadGzipFile is an OSError; a cut file an EOFError
        raise DataError(f"{path} is not a valid gzip file ({err}): it is corrupt or truncated.") from None


def parse_idx(data: bytes, source: str | os.PathLike = "<bytes>") -> np.ndarray:
    """Decode IDX bytes (see the module docstring) into a uint8 array shaped by the header.

    ``source`` only names the file in error messages. The array is a writable copy.
    """
    def fail(problem: str) -> DataError:
        return DataError(f"{source} is not a valid IDX file: {problem}.")

    if len(data) < 4:
        raise fail(f"it has {len(data)} bytes, fewer than the 4-byte magic number")
    if data[0] != 0 or data[1] != 0:
        raise fail(f"the magic number starts {data[0]:02x} {data[1]:02x} instead of 00 00")
    if data[2] != UBYTE:
        raise fail(f"type code 0x{data[2]:02x} is not 0x08 (unsigned bytes), the only type tinyvae reads")
    ndim = data[3]
    if ndim == 0:
        raise fail("the header declares 0 dimensions")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise fail(f"the header declares {ndim} dimensions but the file ends after {len(data)} bytes")
    shape = tuple(int(size) for size in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64))
    actual = len(data) - header_len
    if actual < expected:
        raise fail(f"the header promises {expected:,} bytes of data for shape {shape} "
                   f"but only {actual:,} follow (truncated?)")
    if actual > expected:
        raise fail(f"{actual - expected:,} unexpected bytes follow the {expected:,} bytes of data for shape {shape}")
    return np.frombuffer(data, dtype=np.uint8, offset=header_len).reshape(shape).copy()


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzipped or not) into a uint8 array of the shape in its header.

    >>> read_idx("t10k-images-idx3-ubyte.gz").shape
    (10000, 28, 28)
    """
    return parse_idx(read_idx_bytes(path), path)


def write_idx(path: str | os.PathLike, array: np.ndarray, compress: bool = False) -> None:
    """Write a uint8 array as an IDX file, gzipped when ``compress`` (used by tests and examples)."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"write_idx writes uint8 arrays only, got {array.dtype}")
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"an IDX array needs 1 to 255 dimensions, got {array.ndim}")
    header = bytes([0, 0, UBYTE, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    data = header + np.ascontiguousarray(array).tobytes()
    Path(path).write_bytes(gzip.compress(data, mtime=0) if compress else data)
