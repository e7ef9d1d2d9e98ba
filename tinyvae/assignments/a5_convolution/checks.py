"""A5 checks, kept by the grader (not in the student release): Conv2d's backward, and the
transposed convolution as its adjoint (forward and backward).

Each case's outputs are compared with the instructor's layers on the same inputs (oracle.py):
outputs and gradients within a relative error of 1e-8.
"""

import numpy as np

from tinyvae.assignments.oracle import Case, Check, Inputs


def conv_arrays(transposed: bool, n: int, c_in: int, c_out: int, k: int, size: tuple[int, int], out: tuple[int, int],
                stale: bool = False) -> Inputs:
    """W, b, x (n, c_in, *size) and dy (n, c_out, *out): the layer's output size ``out`` is given."""
    w_shape = (c_in, c_out, k, k) if transposed else (c_out, c_in, k, k)

    def inputs(rng: np.random.Generator) -> dict:
        arrays = {"W": rng.standard_normal(w_shape), "b": rng.standard_normal(c_out),
                  "x": rng.standard_normal((n, c_in, *size)), "dy": rng.standard_normal((n, c_out, *out))}
        if stale:
            arrays.update(x0=rng.standard_normal((2, c_in, *size)), dy0=rng.standard_normal((2, c_out, *out)))
        return arrays

    return inputs


def conv_case(n: int, c_in: int, c_out: int, k: int, size: tuple[int, int], out: tuple[int, int], stride: int = 1,
              padding: int = 0, **options: bool) -> Case:
    return Case("conv", conv_arrays(False, n, c_in, c_out, k, size, out, options.get("stale", False)),
                {"transposed": False, "c_in": c_in, "c_out": c_out, "k": k, "stride": stride, "padding": padding,
                 **options})


def transposed_case(n: int, c_in: int, c_out: int, k: int, size: tuple[int, int], out: tuple[int, int],
                    stride: int = 1, padding: int = 0, output_padding: int = 0, **options: bool) -> Case:
    return Case("conv", conv_arrays(True, n, c_in, c_out, k, size, out, options.get("stale", False)),
                {"transposed": True, "c_in": c_in, "c_out": c_out, "k": k, "stride": stride, "padding": padding,
                 "output_padding": output_padding, **options})


CHECKS = (
    Check("test_conv2d_backward_passes_the_gradient_check", 3, "public",
          (conv_case(2, 3, 4, 3, (6, 5), (4, 3)),)),
    Check("test_conv_transpose_is_the_adjoint_of_conv2d", 2, "public",
          (transposed_case(2, 4, 3, 3, (4, 3), (6, 5)),)),
    Check("test_conv_transpose_backward_passes_the_gradient_check", 2, "public",
          (transposed_case(2, 3, 2, 3, (3, 4), (5, 6)),)),
    Check("conv2d gradients with stride and padding", 2, "hidden",
          (conv_case(3, 2, 3, 4, (8, 8), (4, 4), stride=2, padding=1),
           conv_case(1, 1, 2, 3, (7, 9), (3, 4), stride=2, padding=0),
           conv_case(2, 2, 2, 2, (5, 6), (3, 3), stride=3, padding=2))),
    Check("conv2d backward overwrites its gradients", 1, "hidden",
          (conv_case(2, 2, 3, 3, (5, 5), (3, 3), stale=True),)),
    Check("conv2d as a first layer skips the input gradient", 1, "hidden",
          (conv_case(2, 1, 2, 3, (5, 5), (3, 3), input_grad=False),)),
    Check("transposed convolution with stride, padding and output_padding", 2, "hidden",
          (transposed_case(2, 3, 2, 4, (4, 4), (8, 8), stride=2, padding=1),
           transposed_case(1, 2, 1, 4, (3, 3), (7, 7), stride=2, padding=1, output_padding=1),
           transposed_case(2, 2, 3, 3, (2, 5), (5, 11), stride=2, padding=0))),
    Check("transposed convolution backward overwrites its gradients", 1, "hidden",
          (transposed_case(2, 2, 2, 3, (3, 3), (5, 5), stale=True),)),
)
