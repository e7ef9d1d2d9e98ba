"""Downloads from a local fake mirror (file:// URLs or a replaced urlopen): never the network.

Also checks the checksum table against the real files where this machine has them.
"""

import gzip
import hashlib
import io
import urllib.error
from pathlib import Path

import pytest

from tinyvae.data import download
from tinyvae.data.download import CHECKSUMS, IDX_FILES, check_content, download_file, download_missing, file_md5
from tinyvae.data.idx import DataError

SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
NAME = "t10k-labels-idx1-ubyte.gz"
GOOD, BAD = gzip.compress(b"the real file", mtime=0), b"something else"


@pytest.fixture
def mirrors(tmp_path, monkeypatch):
    """Two file:// mirrors, the first serving a corrupt copy; the checksum table expects GOOD."""
    monkeypatch.setitem(CHECKSUMS["mnist"], NAME, hashlib.md5(GOOD).hexdigest())
    urls = []
    for mirror, payload in (("bad", BAD), ("good", GOOD)):
        (tmp_path / mirror).mkdir()
        (tmp_path / mirror / NAME).write_bytes(payload)
        urls.append((tmp_path / mirror).as_uri() + "/")
    (tmp_path / "dest").mkdir()
    return urls


def test_checksum_table_is_complete():
    for dataset in ("mnist", "fashion-mnist"):
        assert sorted(CHECKSUMS[dataset]) == sorted([*IDX_FILES, *(f"{n}.gz" for n in IDX_FILES)])
        assert all(len(md5) == 32 and int(md5, 16) >= 0 for md5 in CHECKSUMS[dataset].values())


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="../shared/data/mnist is absent")
def test_real_mnist_test_files_match_the_published_checksums():
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        path = SHARED_MNIST / f"{name}.gz"
        assert file_md5(path) == CHECKSUMS["mnist"][f"{name}.gz"]
        check_content(gzip.decompress(path.read_bytes()), "mnist", name, path)


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_debian_fashion_mnist_content_matches_the_published_checksums():
    for name in IDX_FILES:  # Debian gzips the files again: other .gz bytes, the same content
        path = DEBIAN_FASHION / f"{name}.gz"
        check_content(gzip.decompress(path.read_bytes()), "fashion-mnist", name, path)


def test_check_content_mismatch_is_one_sentence():
    with pytest.raises(DataError, match="does not match the published MNIST checksum") as info:
        check_content(b"not mnist", "mnist", "t10k-labels-idx1-ubyte", "somewhere/t10k-labels")
    assert "somewhere/t10k-labels" in str(info.value) and "\n" not in str(info.value)


def test_checksum_mismatch_deletes_the_part_file_and_tries_the_next_mirror(tmp_path, mirrors, capsys):
    path = download_file("mnist", NAME, tmp_path / "dest", mirrors, progress=False)
    assert path == tmp_path / "dest" / NAME and path.read_bytes() == GOOD
    assert [p.name for p in (tmp_path / "dest").iterdir()] == [NAME]  # no .part left behind
    err = capsys.readouterr().err
    assert mirrors[0] + NAME in err and "does not match the published MD5" in err
    assert "deleted the partial file, trying the next mirror" in err


def test_every_mirror_corrupt_saves_nothing(tmp_path, mirrors):
    with pytest.raises(DataError, match="no mirror served it with the published MD5") as info:
        download_file("mnist", NAME, tmp_path / "dest", [mirrors[0], mirrors[0]], progress=False)
    assert "\n" not in str(info.value)
    assert list((tmp_path / "dest").iterdir()) == []


def test_final_name_appears_only_when_complete(tmp_path, mirrors, monkeypatch):
    dest = tmp_path / "dest"
    seen = []

    class Spy(io.BytesIO):
        def read(self, size=-1):
            seen.append(((dest / NAME).exists(), sorted(p.name for p in dest.iterdir())))
            return super().read(size)

    monkeypatch.setattr(download, "urlopen", lambda url, timeout=30.0: Spy(GOOD))
    download_file("mnist", NAME, dest, mirrors, progress=True)
    final_existed, listing = seen[0]
    assert not final_existed and len(listing) == 1 and listing[0].endswith(".part")  # same folder
    assert (dest / NAME).read_bytes() == GOOD


def test_connection_dropped_mid_file_tries_the_next_mirror(tmp_path, mirrors, monkeypatch, capsys):
    class Dropped(io.BytesIO):
        def read(self, size=-1):
            raise ConnectionResetError("connection reset by peer")

    real = download.urlopen
    monkeypatch.setattr(download, "urlopen", lambda url, timeout=30.0: Dropped() if "bad" in url else real(url))
    download_file("mnist", NAME, tmp_path / "dest", mirrors, progress=False)
    assert [p.name for p in (tmp_path / "dest").iterdir()] == [NAME]
    assert "connection reset by peer" in capsys.readouterr().err


def test_no_network_says_what_to_do(tmp_path, monkeypatch):
    def offline(url, timeout=30.0):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(download, "urlopen", offline)
    with pytest.raises(DataError) as info:
        download_missing("mnist", tmp_path / "cache", progress=False)
    message = str(info.value)
    assert message.startswith("could not download MNIST (no network?")
    assert "--data-dir DIR" in message and "--dataset digits" in message and "\n" not in message
    assert list((tmp_path / "cache").iterdir()) == []


def test_download_missing_fetches_only_what_is_missing(tmp_path, mirrors, monkeypatch):
    folder = tmp_path / "cache"
    folder.mkdir()
    for name in IDX_FILES[:3]:
        (folder / name).write_bytes(b"present")  # raw or .gz, either counts
    monkeypatch.setitem(download.MIRRORS, "mnist", (mirrors[1],))
    assert download_missing("mnist", folder, progress=False) == folder
    assert (folder / NAME).read_bytes() == GOOD
    assert sorted(p.name for p in folder.iterdir()) == sorted([*IDX_FILES[:3], NAME])
