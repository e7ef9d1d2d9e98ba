"""All of a model's parameters in ONE flat buffer, all its gradients in a second.

Every layer holds named *views* into these two buffers, so

* the optimizer updates the whole model with a handful of whole-array operations,
* a checkpoint is one array (plus the names and shapes, for people),
* two models can be compared with one subtraction.

Layout (example: the default VAE, 784-400-20-400-784, float32)::

    data: (P,)   [ encoder.0.W (784*400) | encoder.0.b (400) | encoder.2.W ... | decoder.2.b ]
    grad: (P,)   same layout, filled by backward()

Initialization happens on the host, in float64 NumPy, from one seed, and only then is
the buffer cast to the model's dtype and moved to the device: a CPU model and a GPU
model built with the same seed start from identical weights.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinyvae.backend import Backend, cpu_backend


class Parameters:
    """The flat parameter buffer ``data`` and gradient buffer ``grad`` of a model.

    modules: an ordered mapping ``{prefix: layer_or_sequential}``. Each leaf layer
             declares ``param_shapes()`` and ``init_params(rng)``; parameters are laid
             out in that order and bound back into the layer with ``layer.bind``.
    """

    def __init__(
        self,
        modules: dict[str, Any],
        backend: Backend | None = None,
        dtype: Any = "float32",
        seed: int = 0,
    ) -> None:
        self.backend = backend or cpu_backend()
        self.dtype = np.dtype(dtype)
        if self.dtype.kind != "f":
            raise ValueError(f"parameters must be floating point, got dtype {self.dtype}")

        self.leaves = leaves = [(f"{prefix}.{name}" if name else prefix, layer)
                                for prefix, module in modules.items()
                                for name, layer in module.named_layers()]

        # 1. Lay out every parameter: name -> (offset, shape).
        self.layout: dict[str, tuple[int, tuple[int, ...]]] = {}
        offset = 0
        for layer_name, layer in leaves:
            for key, shape in layer.param_shapes().items():
                self.layout[f"{layer_name}.{key}"] = (offset, tuple(shape))
                offset += int(np.prod(shape))
        self.size = offset

        # 2. Initialize on the host in float64, from the seed, in layout order.
        host = np.empty(self.size, dtype=np.float64)
        rng = np.random.default_rng(seed)
        for layer_name, layer in leaves:
            for key, value in layer.init_params(rng).items():
                start, shape = self.layout[f"{layer_name}.{key}"]
                host[start:start + value.size] = np.asarray(value, dtype=np.float64).ravel()

        # 3. Cast, move to the device, and hand each layer its views.
        self.data = self.backend.asarray(host, dtype=self.dtype)  # (P,)
        self.grad = self.backend.xp.zeros_like(self.data)         # (P,)
        self._bind_layers()

    def _bind_layers(self) -> None:
        for layer_name, layer in self.leaves:
            keys = layer.param_shapes().keys()
            layer.bind({k: self._view(self.data, f"{layer_name}.{k}") for k in keys},
                       {k: self._view(self.grad, f"{layer_name}.{k}") for k in keys})

    def share_data(self, other: Parameters) -> None:
        """Use ``other``'s parameter buffer (same layout) from now on, and keep this gradient buffer.

        A replica of a model that computes the gradient of part of a batch reads its model's
        weights this way, so an optimizer step on the model is seen by the replica at once
        (tinyvae/fast/data_parallel.py).
        """
        if other.layout != self.layout or other.dtype != self.dtype:
            raise ValueError(f"cannot share the weights of {other!r}: its layout or dtype differs from {self!r}")
        self.data = other.data
        self._bind_layers()

    def _view(self, buffer: Any, name: str) -> Any:
        start, shape = self.layout[name]
        return buffer[start:start + int(np.prod(shape))].reshape(shape)

    def __getitem__(self, name: str) -> Any:
        """The parameter called ``name`` (e.g. "encoder.0.W"), a view into ``data``."""
        return self._view(self.data, name)

    def grad_of(self, name: str) -> Any:
        """The gradient of the parameter called ``name``, a view into ``grad``."""
        return self._view(self.grad, name)

    def names(self) -> list[str]:
        return list(self.layout)

    def load(self, values: Any) -> None:
        """Overwrite all parameters from a flat array of the same size (any device)."""
        values = np.asarray(values) if isinstance(values, (list, tuple)) else values
        if tuple(values.shape) != (self.size,):
            raise ValueError(f"expected a flat parameter array of shape ({self.size},), got {tuple(values.shape)}")
        self.data[...] = self.backend.asarray(values, dtype=self.dtype)

    def __repr__(self) -> str:
        return f"Parameters({len(self.layout)} arrays, {self.size:,} values, {self.dtype}, {self.backend.name})"
