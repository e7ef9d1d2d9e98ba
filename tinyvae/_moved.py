"""Old paths, kept for one release: the modules that moved into packages in tinyvae 0.1.

Until 0.1 every module sat at the top of tinyvae/ (``tinyvae.vae``, ``tinyvae.layers``, ...).
They now live in packages that show the architecture (docs/map.md). Code written for the old
layout keeps working for one release: importing an old path, ``import tinyvae.vae`` or
``from tinyvae.layers import Linear``, gives the module at its new path, the SAME module object
(so its classes are the same classes and monkeypatching either name patches both), with a
DeprecationWarning that names the new path. ``python -m tinyvae.latent`` still runs
``tinyvae.analysis.latent``. Two old modules became packages: ``tinyvae.data`` and
``tinyvae.models`` answer their old names (``tinyvae.data.load_dataset``, ...) through
:func:`old_names`. tests/test_moved.py checks every row. Delete this file in the next release.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from collections.abc import Callable
from types import CodeType, ModuleType
from typing import Any

OLD_PATHS = {               # old module path: new module path
    "tinyvae.base": "tinyvae.nn.base",
    "tinyvae.layers": "tinyvae.nn.layers",
    "tinyvae.activations": "tinyvae.nn.activations",
    "tinyvae.conv": "tinyvae.nn.conv",
    "tinyvae.im2col": "tinyvae.nn.im2col",
    "tinyvae.conv_nets": "tinyvae.nn.conv_nets",
    "tinyvae.params": "tinyvae.nn.params",
    "tinyvae.reparam": "tinyvae.nn.reparam",
    "tinyvae.losses": "tinyvae.nn.losses",
    "tinyvae.gradcheck": "tinyvae.nn.gradcheck",
    "tinyvae.likelihood": "tinyvae.models.likelihood",
    "tinyvae.vae": "tinyvae.models.vae",
    "tinyvae.autoencoder": "tinyvae.models.autoencoder",
    "tinyvae.cvae": "tinyvae.models.cvae",
    "tinyvae.iwae": "tinyvae.models.iwae",
    "tinyvae.m2": "tinyvae.models.m2",
    "tinyvae.classifier": "tinyvae.models.classifier",
    "tinyvae.cpu_kernels": "tinyvae.fast.cpu_kernels",
    "tinyvae.conv_kernels": "tinyvae.fast.conv_kernels",
    "tinyvae.idx": "tinyvae.data.idx",
    "tinyvae.download": "tinyvae.data.download",
    "tinyvae.trainer": "tinyvae.training.trainer",
    "tinyvae.optim": "tinyvae.training.optim",
    "tinyvae.annealing": "tinyvae.training.annealing",
    "tinyvae.checkpoint": "tinyvae.training.checkpoint",
    "tinyvae.runs": "tinyvae.training.runs",
    "tinyvae.fileio": "tinyvae.training.fileio",
    "tinyvae.metrics": "tinyvae.analysis.metrics",
    "tinyvae.latent": "tinyvae.analysis.latent",
    "tinyvae.anomaly": "tinyvae.analysis.anomaly",
    "tinyvae.figures": "tinyvae.analysis.figures",
    "tinyvae.viz": "tinyvae.analysis.viz",
    "tinyvae.sweep": "tinyvae.analysis.sweep",
}

OLD_MODULES_NOW_PACKAGES = {    # the package: the module that holds what the old module held
    "tinyvae.data": "tinyvae.data.loading",
    "tinyvae.models": "tinyvae.models.registry",
}


def _warn(old: str, new: str) -> None:
    warnings.warn(f"{old} has moved to {new}; the old path works for one more release", DeprecationWarning,
                  stacklevel=3)


class _OldPath(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old path in OLD_PATHS and loads it as the module at its new path."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in OLD_PATHS:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        _warn(spec.name, OLD_PATHS[spec.name])
        module = importlib.import_module(OLD_PATHS[spec.name])     # the same module object, not a copy
        self._own_spec = module.__spec__        # the import system will write the old path's spec over it
        return module

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run (the module at the new path is loaded): only give it back its own spec."""
        module.__spec__ = self._own_spec

    def get_code(self, fullname: str) -> CodeType | None:
        """For ``python -m <old path>``: the new module's code, run as __main__ (with a note on stderr)."""
        new = OLD_PATHS[fullname]
        print(f"note: python -m {fullname} is now python -m {new}; the old name works for one more release",
              file=sys.stderr)
        return importlib.util.find_spec(new).loader.get_code(new)


def old_names(package: str) -> Callable[[str], Any]:
    """A module ``__getattr__`` for a package that was a module: its old names, from their new module."""
    def __getattr__(name: str) -> Any:
        module = importlib.import_module(OLD_MODULES_NOW_PACKAGES[package])
        if name.startswith("__") or not hasattr(module, name):
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        _warn(f"{package}.{name}", f"{module.__name__}.{name}")
        return getattr(module, name)
    return __getattr__


def install() -> None:
    """Put the old-path finder on sys.meta_path (once): it answers only the names in OLD_PATHS."""
    if not any(isinstance(finder, _OldPath) for finder in sys.meta_path):
        sys.meta_path.append(_OldPath())
