"""The assignments: which solution regions each one asks students to write, the hint each
stub shows, and where each assignment's checks and public tests live.

Points live on the grader's checks (``aN_*/checks.py``, ``CHECKS``, see oracle.py), which
stay with the instructor. Each public check has a twin that students run with pytest, a
test function of the same name and points in ``test_aN_public.py``::

    @pytest.mark.points(3)
    def test_linear_backward_passes_the_gradient_check() -> None: ...

To add an assignment: add its folder (README.md, checks.py, test_aN_public.py, an empty
__init__.py), mark its regions in the library, and add an entry below
(docs/instructor-guide.md walks through it).
"""

from __future__ import annotations

import ast
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent          # tinyvae/assignments
PACKAGE = HERE.parent                           # tinyvae

@dataclass(frozen=True)
class Assignment:
    id: str                       # "A1"
    folder: str                   # "a1_layers", inside tinyvae/assignments
    title: str
    regions: tuple[str, ...]      # region keys, "file.py:Class.method" (see markers.Region.key)

    def test_file(self, kind: str = "public") -> Path:
        """The public test file of this assignment, the one students run."""
        return HERE / self.folder / f"test_{self.id.lower()}_{kind}.py"

    def checks(self) -> tuple[Any, ...]:
        """The grader's checks (oracle.Check) of this assignment, from its checks.py."""
        try:
            module = importlib.import_module(f"tinyvae.assignments.{self.folder}.checks")
        except ModuleNotFoundError as err:
            raise SpecError(f"{self.id} has no checks: {HERE / self.folder / 'checks.py'} is missing ({err})") from None
        return tuple(module.CHECKS)

    def points(self, kind: str) -> dict[str, int]:
        """{check name: points} of the public or hidden checks."""
        return {check.name: check.points for check in self.checks() if check.kind == kind}

    def max_points(self) -> int:
        return sum(self.points("public").values()) + sum(self.points("hidden").values())


ASSIGNMENTS = (
    Assignment("A1", "a1_layers", "Layers and backprop",
               ("nn/layers.py:Linear.forward", "nn/layers.py:Linear.backward",
                "nn/activations.py:ReLU.forward", "nn/activations.py:ReLU.backward")),
    Assignment("A2", "a2_likelihood_kl", "Likelihood and KL",
               ("nn/losses.py:bernoulli_nll", "nn/losses.py:gaussian_kl")),
    Assignment("A3", "a3_reparam_vae", "Reparameterization and the VAE",
               ("nn/reparam.py:Reparameterize.forward", "nn/reparam.py:Reparameterize.backward",
                "models/vae.py:VAE.backward")),
    Assignment("A4", "a4_adam_training", "Adam and training",
               ("training/optim.py:Adam.step", "training/optim.py:Adam._update")),
    Assignment("A5", "a5_convolution", "Convolution and its adjoint",
               ("nn/conv.py:Conv2d.backward", "nn/conv.py:ConvTranspose2d.forward",
                "nn/conv.py:ConvTranspose2d.backward")),
)

HINTS = {
    "nn/layers.py:Linear.forward":
        "compute y = x W + b, shape (N, D_out): x is (N, D_in), self.W (D_in, D_out), self.b (D_out,) "
        "broadcast over the rows",
    "nn/layers.py:Linear.backward":
        "write dW = xᵀ dy into self.dW and db = Σ_n dy (sum over the batch axis 0) into self.db IN PLACE "
        "(out= or [...] =, never rebind them); return None when not self.input_grad, else set dx = dy Wᵀ (N, D_in)",
    "nn/activations.py:ReLU.forward":
        "keep the mask self.mask = (x > 0) for backward (slope 0 at x = 0) and set y = max(x, 0), "
        "e.g. x * self.mask (works on NumPy and CuPy arrays alike)",
    "nn/activations.py:ReLU.backward":
        "set dx = dy · [x > 0], using the mask that forward cached",
    "nn/losses.py:bernoulli_nll":
        "set dlogits = σ(logits) − x, shape (N, D), without overflow: reuse relu and log1p_e, since "
        "log σ(l) = l − max(l, 0) − log(1 + e^(−|l|)) is never positive, and σ(l) = exp(log σ(l))",
    "nn/losses.py:gaussian_kl":
        "set kl = ½ Σ_j (mu² + var − 1 − logvar), one number per example (sum over axis 1), "
        "dmu = mu and dlogvar = ½ (var − 1), where var = e^logvar",
    "nn/reparam.py:Reparameterize.forward":
        "keep self.std = exp(½ · logvar) for backward (½: logvar is a log-VARIANCE) and set z = mu + std · eps",
    "nn/reparam.py:Reparameterize.backward":
        "set dmu = dz and dlogvar = ½ · dz · std · eps (which is ½ · dz · (z − mu)), both (N, J)",
    "models/vae.py:VAE.backward":
        "average over the batch (dout = self._dout / N), backprop through self.decoder to dz and through "
        "self.reparam to (dmu, dlogvar), add self.kl_term_weight() / N (β·w: β times the annealing weight) "
        "times the KL gradients self._dmu_kl and self._dlogvar_kl, zero dlogvar where the clamp is active "
        "(multiply by self._unclamped), then call self.encoder.backward on [dmu, dlogvar] joined along axis 1",
    "training/optim.py:Adam.step":
        "fold the bias correction into the step: lr_t = α · √(1 − β₂ᵗ) / (1 − β₁ᵗ) and eps_t = ε · √(1 − β₂ᵗ)",
    "nn/conv.py:Conv2d.backward":
        "with dY = to_rows(dy) (N·H_out·W_out, C_out) and the patches X = self.cols kept by forward: write "
        "dW = dYᵀ X (back to (C_out, C_in, k, k) with from_patch_order) and db = Σ dy over axes 0, 2, 3 IN PLACE; "
        "return dx = col2im(dY W) with self.patches.col2im and self.W_mat (None when not self.input_grad)",
    "nn/conv.py:ConvTranspose2d.forward":
        "y = Aᵀx + b, where A is the convolution with this W: that is Conv2d's dx with dy := x, so "
        "col2im(X W) with X = self.X, W = self.W_mat and the output shape self.y_shape; add b per channel",
    "nn/conv.py:ConvTranspose2d.backward":
        "dx = A dy is a convolution of dy: D = self.patches.im2col(dy), dx = D Wᵀ back to NCHW (from_rows); "
        "dW = Xᵀ D (from_patch_order) and db = Σ dy over axes 0, 2, 3, written in place",
    "training/optim.py:Adam._update":
        "update in place, using tmp as scratch and out= so that nothing is allocated: "
        "m ← β₁ m + (1 − β₁) g,  v ← β₂ v + (1 − β₂) g²,  θ ← θ − lr_t · m / (√v + eps_t)",
}


# Regions that are stubbed in the student release but belong to no assignment: models whose
# backward spells out an assignment's answer in another form.
WITHHELD = {
    "models/iwae.py:IWAE.backward":
        "the IWAE's backward is withheld from the student release because it spells out the solution of "
        "VAE.backward (A3); the IWAE objective cannot train in the release",
    "models/m2.py:M2.backward":
        "M2's backward is withheld from the student release because it spells out the solution of "
        "VAE.backward (A3); M2 cannot train in the release",
}

# The fast twins (tinyvae.fast) are no exercise, but their formulas spell out the solutions
# (Adam's update, every derivative of A2 and A3, A5's backward): the release leaves their files out, and
# tinyvae.fast, finding them missing, runs the reference code, which there is the students'.
# The data-parallel step holds no formula, but is left out too: a release trains on one thread.
NOT_SHIPPED = ("fast/cpu_kernels.py", "fast/conv_kernels.py", "fast/conv_blocks.py", "fast/cuda_kernels.py",
               "fast/relu_kernels.py", "fast/data_parallel.py")


class SpecError(ValueError):
    """The assignment definitions and the source disagree; the message says how."""


def get(name: str) -> Assignment:
    """The assignment called ``name``: its id ("A1", "a1") or its folder ("a1_layers")."""
    for assignment in ASSIGNMENTS:
        if name.lower() in (assignment.id.lower(), assignment.folder):
            return assignment
    raise SpecError(f"unknown assignment {name!r}: choose one of {', '.join(a.id for a in ASSIGNMENTS)}")


def label(key: str) -> str:
    """What a stub says it is: the owning assignment's id, or "withheld" (see WITHHELD)."""
    return "withheld" if key in WITHHELD else owner(key).id


def owner(key: str) -> Assignment:
    """The assignment a region belongs to."""
    for assignment in ASSIGNMENTS:
        if key in assignment.regions:
            return assignment
    raise SpecError(f"the solution region {key} belongs to no assignment: add it to ASSIGNMENTS in spec.py")


def read_points(path: Path) -> dict[str, int]:
    """{test function: points} read from the ``@pytest.mark.points(n)`` decorators of a test file.

    Parsed, not imported: the grader learns what a test is worth even when the code it
    tests does not import. A test function without a points mark is refused.
    """
    if not path.exists():
        raise SpecError(f"test file {path} is missing")
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    points: dict[str, int] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            raise SpecError(f"{path.name}: {node.name}: graded tests must be module-level functions, not a class")
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
            marks = [d for d in node.decorator_list if isinstance(d, ast.Call)
                     and isinstance(d.func, ast.Attribute) and d.func.attr == "points"]
            if len(marks) != 1 or len(marks[0].args) != 1 or not isinstance(marks[0].args[0], ast.Constant):
                raise SpecError(f"{path.name}: {node.name} needs exactly one @pytest.mark.points(n) with a number")
            points[node.name] = int(marks[0].args[0].value)
    return points
