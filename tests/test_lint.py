"""ruff over the package and the tests: style, imports, and type hints on public functions."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_is_clean():
    if shutil.which("ruff") is None and subprocess.run([sys.executable, "-m", "ruff", "--version"],
                                                        capture_output=True).returncode != 0:
        pytest.fail('ruff is not installed: pip install -e ".[dev]"')
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--config", "tests/ruff.toml",
                             "tinyvae", "tests", "docs/scripts"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
