"""The contract every layer keeps, as a base class.

* ``forward(x) -> y`` caches exactly what ``backward`` needs. One forward is in
  flight at a time: a second forward overwrites the cache.
* ``backward(dy) -> dx`` takes dL/dy, OVERWRITES the layer's parameter gradients
  (never accumulates) and returns dL/dx.
* A layer with parameters declares their shapes (``param_shapes``), draws their
  initial values on the host (``init_params``) and receives views into the model's
  flat buffers (``bind``); see :mod:`tinyvae.nn.params`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

Array = Any  # a numpy.ndarray or a cupy.ndarray


class Layer:
    """Base class. Layers without parameters only override forward/backward."""

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {}

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {}

    def bind(self, params: dict[str, Array], grads: dict[str, Array]) -> None:
        """Receive views of this layer's parameters and gradients (see Parameters).

        Layers with parameters extend this to name the views (Linear: W, b, dW, db).
        """
        self.params, self.grads = params, grads

    def named_layers(self, prefix: str = "") -> Iterator[tuple[str, Layer]]:
        yield prefix, self

    def forward(self, x: Array) -> Array:
        raise NotImplementedError

    def backward(self, dy: Array) -> Array:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
