"""The IDX reader: valid files (raw and gzip) round-trip; every kind of broken file is one clear DataError."""

import gzip

import numpy as np
import pytest

from tinyvae.data.idx import DataError, parse_idx, read_idx, read_idx_bytes, write_idx

IMAGES = np.arange(3 * 28 * 28, dtype=np.uint64).reshape(3, 28, 28).astype(np.uint8)


def broken(path, data, match):
    """Write ``data`` to ``path``; reading it must raise one sentence that names the file."""
    path.write_bytes(data)
    with pytest.raises(DataError, match=match) as info:
        read_idx(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message and message.endswith(".")
    return message


@pytest.mark.parametrize("compress", [False, True])
def test_roundtrip_images_and_labels(tmp_path, compress):
    labels = np.array([7, 2, 1], dtype=np.uint8)
    write_idx(tmp_path / "images", IMAGES, compress=compress)
    write_idx(tmp_path / "labels", labels, compress=compress)
    images = read_idx(tmp_path / "images")
    assert images.dtype == np.uint8 and images.shape == (3, 28, 28) and np.array_equal(images, IMAGES)
    assert images.flags.writeable
    assert np.array_equal(read_idx(tmp_path / "labels"), labels)


def test_header_layout_is_the_documented_one(tmp_path):
    write_idx(tmp_path / "x", IMAGES)
    data = (tmp_path / "x").read_bytes()
    assert data[:16] == bytes([0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 28, 0, 0, 0, 28])
    assert len(data) == 16 + IMAGES.size


def test_gzip_is_detected_by_magic_bytes_not_by_name(tmp_path):
    write_idx(tmp_path / "plain.gz", IMAGES)            # raw bytes under a .gz name
    write_idx(tmp_path / "zipped", IMAGES, compress=True)  # gzip without the suffix
    assert (tmp_path / "zipped").read_bytes()[:2] == b"\x1f\x8b"
    assert np.array_equal(read_idx(tmp_path / "plain.gz"), IMAGES)
    assert np.array_equal(read_idx(tmp_path / "zipped"), IMAGES)


def test_truncated_data(tmp_path):
    write_idx(tmp_path / "ok", IMAGES)
    message = broken(tmp_path / "short", (tmp_path / "ok").read_bytes()[:-5], "truncated")
    assert "2,352" in message and "2,347" in message  # what the header promised, what is there


def test_truncated_header(tmp_path):
    broken(tmp_path / "tiny", b"\x00\x00", "fewer than the 4-byte magic number")
    broken(tmp_path / "cut", bytes([0, 0, 8, 3, 0, 0, 0, 3]), "declares 3 dimensions but the file ends")


def test_trailing_bytes(tmp_path):
    write_idx(tmp_path / "ok", IMAGES)
    broken(tmp_path / "long", (tmp_path / "ok").read_bytes() + b"junk", "4 unexpected bytes follow")


@pytest.mark.parametrize(("header", "match"), [
    (bytes([1, 0, 8, 1, 0, 0, 0, 1, 5]), "starts 01 00 instead of 00 00"),
    (bytes([0, 0, 0x0D, 1, 0, 0, 0, 1, 5]), "type code 0x0d is not 0x08"),
    (bytes([0, 0, 8, 0, 5]), "0 dimensions"),
])
def test_wrong_magic_number(tmp_path, header, match):
    broken(tmp_path / "bad", header, match)


def test_corrupt_and_truncated_gzip(tmp_path):
    write_idx(tmp_path / "ok.gz", IMAGES, compress=True)
    good = (tmp_path / "ok.gz").read_bytes()
    broken(tmp_path / "cut.gz", good[: len(good) // 2], "not a valid gzip file")
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0xFF
    broken(tmp_path / "flipped.gz", bytes(flipped), "not a valid gzip file")
    broken(tmp_path / "magic-only.gz", b"\x1f\x8b" + b"\x00" * 20, "not a valid gzip file")


def test_gzip_of_a_broken_idx_is_still_checked(tmp_path):
    write_idx(tmp_path / "ok", IMAGES)
    broken(tmp_path / "short.gz", gzip.compress((tmp_path / "ok").read_bytes()[:-1]), "truncated")


def test_missing_file_is_one_sentence(tmp_path):
    with pytest.raises(DataError, match="cannot read") as info:
        read_idx_bytes(tmp_path / "nope")
    assert "nope" in str(info.value)


def test_parse_names_its_source_and_write_rejects_other_dtypes(tmp_path):
    with pytest.raises(DataError, match="^memory is not a valid IDX file"):
        parse_idx(b"\x00\x00\x08", "memory")
    with pytest.raises(ValueError, match="uint8"):
        write_idx(tmp_path / "f", np.zeros(3, dtype=np.float32))
