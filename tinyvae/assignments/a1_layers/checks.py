"""A1 checks, kept by the grader (not in the student release): Linear and ReLU, forward and backward.

Each case's outputs are compared with the instructor's Linear and ReLU on the same inputs
(oracle.py): gradients within a relative error of 1e-8, forward values to rounding, the
ReLU's mask exactly.
"""

import numpy as np

from tinyvae.assignments.oracle import Case, Check, Inputs


def fixed_linear(rng: np.random.Generator) -> dict:
    return {"W": np.array([[1.0, 0.0, -1.0], [2.0, 1.0, 0.0]]), "b": np.array([0.5, -1.0, 2.0]),
            "x": np.array([[1.0, 2.0], [0.0, -1.0]])}


def random_linear(n: int, d_in: int, d_out: int, stale: bool = False) -> Inputs:
    def inputs(rng: np.random.Generator) -> dict:
        arrays = {"W": rng.standard_normal((d_in, d_out)), "b": rng.standard_normal(d_out),
                  "x": rng.standard_normal((n, d_in)), "dy": rng.standard_normal((n, d_out))}
        if stale:
            arrays.update(x0=rng.standard_normal((4, d_in)), dy0=rng.standard_normal((4, d_out)))
        return arrays

    return inputs


def relu_inputs(rng: np.random.Generator) -> dict:
    x = rng.standard_normal((4, 6))
    return {"x": x + np.sign(x) * 0.05, "dy": rng.standard_normal((4, 6))}


def relu_twice(rng: np.random.Generator) -> dict:
    return {"x0": np.array([[1.0, -1.0, 2.0]]), "x": np.array([[-1.0, 3.0, 2.0]]), "dy": np.array([[5.0, 6.0, 7.0]])}


def relu_kink(rng: np.random.Generator) -> dict:
    return {"x": np.array([[0.0, -0.0, 1e-300, -1e-300]]), "dy": np.ones((1, 4))}


def mlp_inputs(rng: np.random.Generator) -> dict:
    return {"theta": rng.standard_normal(5 * 4 + 4 + 4 * 3 + 3) * 0.7, "x": rng.standard_normal((6, 5)),
            "dy": rng.standard_normal((6, 3))}


CHECKS = (
    Check("test_linear_forward_computes_xW_plus_b", 2, "public",
          (Case("linear", fixed_linear, {"d_in": 2, "d_out": 3, "backward": False}, 1e-12),)),
    Check("test_linear_backward_passes_the_gradient_check", 3, "public",
          (Case("linear", random_linear(4, 7, 5), {"d_in": 7, "d_out": 5}),)),
    Check("test_relu_forward_values_and_gradient_check", 2, "public", (Case("relu", relu_inputs, tolerance=0.0),)),
    Check("linear gradients for a batch of one and uneven shapes", 2, "hidden",
          tuple(Case("linear", random_linear(n, d_in, d_out), {"d_in": d_in, "d_out": d_out})
                for n, d_in, d_out in [(1, 3, 6), (9, 6, 2)])),
    Check("linear backward overwrites its gradients", 1, "hidden",
          (Case("linear", random_linear(5, 3, 2, stale=True), {"d_in": 3, "d_out": 2, "stale": True}),)),
    Check("first layer skips the input gradient", 1, "hidden",
          (Case("linear", random_linear(4, 3, 2), {"d_in": 3, "d_out": 2, "input_grad": False}),)),
    Check("every parameter gradient of an MLP", 2, "hidden",
          (Case("mlp", mlp_inputs, {"sizes": [5, 4, 3], "activation": "relu"}),)),
    Check("relu backward uses the latest forward", 1, "hidden",
          (Case("relu", relu_twice, {"earlier": True}, tolerance=0.0),)),
    Check("relu uses slope zero at the kink", 1, "hidden", (Case("relu", relu_kink, tolerance=0.0),)),
)
