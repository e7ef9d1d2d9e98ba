"""The package layout: at most 30 entries at the top of tinyvae/, and the old module paths
(tinyvae.vae, tinyvae.layers, ...) still import for one release, as the SAME modules, with a
DeprecationWarning that names the new path (tinyvae/_moved.py)."""

import importlib
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import tinyvae
from tinyvae import _moved

PACKAGE = Path(tinyvae.__file__).parent
OLD_TOP_LEVEL = {old.split(".")[1] for old in _moved.OLD_PATHS}


def test_the_top_level_holds_at_most_30_entries():
    entries = [p.name for p in PACKAGE.iterdir() if p.name != "__pycache__"]
    assert len(entries) <= 30, sorted(entries)
    assert not OLD_TOP_LEVEL & {p.stem for p in PACKAGE.iterdir()}     # the old names are no files any more


@pytest.mark.parametrize("old, new", sorted(_moved.OLD_PATHS.items()))
def test_every_old_path_imports_the_same_module_with_a_warning(old, new):
    module = importlib.import_module(new)
    sys.modules.pop(old, None)                              # import the old path afresh, so that it warns
    with pytest.warns(DeprecationWarning, match=f"{old} has moved to {new}"):
        alias = importlib.import_module(old)
    assert alias is module and alias.__name__ == new and module.__spec__.name == new
    public = [name for name in vars(module) if not name.startswith("_")]
    assert public and all(getattr(alias, name) is getattr(module, name) for name in public)


def test_from_import_of_an_old_path_gives_the_same_objects():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from tinyvae.layers import Linear
        from tinyvae.optim import Adam
        from tinyvae.vae import VAE
    from tinyvae.models.vae import VAE as new_vae
    from tinyvae.nn.layers import Linear as new_linear
    assert (VAE, Adam, Linear) == (new_vae, tinyvae.Adam, new_linear)


@pytest.mark.parametrize("package, new", sorted(_moved.OLD_MODULES_NOW_PACKAGES.items()))
def test_modules_that_became_packages_keep_their_old_names(package, new):
    old, module = importlib.import_module(package), importlib.import_module(new)
    names = [name for name in vars(module) if not name.startswith("_") and not hasattr(type(module), name)]
    with pytest.warns(DeprecationWarning, match=f"{package}.{names[0]} has moved to {new}.{names[0]}"):
        getattr(old, names[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert all(getattr(old, name) is getattr(module, name) for name in names)
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = old.no_such_name


def test_an_unknown_name_is_still_an_import_error():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("tinyvae.no_such_module")


def test_an_old_command_path_still_runs():
    result = subprocess.run([sys.executable, "-m", "tinyvae.latent", "--help"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0 and "usage" in result.stdout, result.stderr[-1500:]
    assert "python -m tinyvae.latent is now python -m tinyvae.analysis.latent" in result.stderr
