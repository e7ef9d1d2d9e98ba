"""Mutation check (a tool, not a test: pytest does not collect this file).

    python tests/mutation.py            # every mutant; prints killed / SURVIVED / not applicable
    python tests/mutation.py slerp      # only the mutants whose name contains "slerp"

Each mutant is one small deliberate break of tinyvae (issue 14's classes: atomic checkpoint
writes, allow_pickle=False, the dataset checksum, the checkpoint format check, the gradient
checker's relative error, slerp, the anomaly score, SGD's update). For each, the repository is
copied to a temporary folder, the break applied there, and the test files that guard that
behaviour run against the copy. A mutant is killed when those tests fail. Nothing is written
inside the repository. Exit status: 0 when every applicable mutant was killed, 1 otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP = (".git", ".venv", "venv", "__pycache__", ".pytest_cache", ".ruff_cache", "*.egg-info", "runs", "notebooks",
        ".whl", ".gl")

CHECKPOINT_TESTS = ["tests/test_checkpoint.py"]
SURVIVORS = ["tests/test_survivors.py"]
DATA_PARALLEL = ["tests/test_data_parallel.py"]
CONV_BLOCKS = ["tests/test_conv_blocks.py"]

# name: (file, [(old text, new text), ...], test files that must catch it)
MUTANTS: dict[str, tuple[str, list[tuple[str, str]], list[str]]] = {
    "atomic write: write the checkpoint in place": (
        "tinyvae/training/fileio.py",
        [('fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)',
          "fd, tmp = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666), str(path)"),
         ("os.replace(tmp, path)", "pass")],
        CHECKPOINT_TESTS),
    "atomic write: keep a failed write's file": (
        "tinyvae/training/fileio.py",
        [("    except BaseException:\n        if os.path.exists(tmp):\n            os.remove(tmp)\n        raise",
          "    except BaseException:\n        os.replace(tmp, path)\n        raise")],
        CHECKPOINT_TESTS),
    "load with allow_pickle=True": (
        "tinyvae/training/checkpoint.py", [("np.load(path, allow_pickle=False)", "np.load(path, allow_pickle=True)")],
        CHECKPOINT_TESTS),
    "format check: no 'newer' sentence": (
        "tinyvae/training/checkpoint.py", [('if meta["format"] > FORMAT_VERSION:', "if False:")], CHECKPOINT_TESTS),
    "format check: accept any version": (
        "tinyvae/training/checkpoint.py",
        [('if meta["format"] > FORMAT_VERSION:', "if False:"),
         ('if meta["format"] != FORMAT_VERSION or "params" not in arrays:', 'if "params" not in arrays:')],
        CHECKPOINT_TESTS),
    "checksum of files on disk: first 8 digits only": (
        "tinyvae/data/download.py", [("if actual != expected:", "if actual[:8] != expected[:8]:")],
        SURVIVORS + ["tests/test_download.py"]),
    "checksum of files on disk: last 8 digits only": (
        "tinyvae/data/download.py", [("if actual != expected:", "if actual[-8:] != expected[-8:]:")],
        SURVIVORS + ["tests/test_download.py"]),
    "checksum of downloads: first 8 digits only": (
        "tinyvae/data/download.py", [("if actual == expected:", "if actual[:8] == expected[:8]:")],
        SURVIVORS + ["tests/test_download.py"]),
    "checksum of downloads: last 8 digits only": (
        "tinyvae/data/download.py", [("if actual == expected:", "if actual[-8:] == expected[-8:]:")],
        SURVIVORS + ["tests/test_download.py"]),
    "rel_error: a + b in the numerator": (
        "tinyvae/nn/gradcheck.py", [("np.max(np.abs(a - b))", "np.max(np.abs(a + b))")],
        SURVIVORS + ["tests/test_planted_bugs.py"]),
    "rel_error: |a + b| in the denominator": (
        "tinyvae/nn/gradcheck.py", [("np.max(np.abs(a) + np.abs(b))", "np.max(np.abs(a + b))")],
        SURVIVORS + ["tests/test_planted_bugs.py"]),
    "slerp: swap the endpoints' weights": (
        "tinyvae/analysis/latent.py",
        [("xp.sin((1.0 - t) * omega) * z0[None, :] + xp.sin(t * omega) * z1[None, :]",
          "xp.sin(t * omega) * z0[None, :] + xp.sin((1.0 - t) * omega) * z1[None, :]")],
        SURVIVORS + ["tests/test_latent.py"]),
    "slerp: no division by sin Ω": (
        "tinyvae/analysis/latent.py", [("* z1[None, :]) / sin_omega", "* z1[None, :])")],
        SURVIVORS + ["tests/test_latent.py"]),
    "slerp: half the angle": (
        "tinyvae/analysis/latent.py", [("omega = float(np.arccos(np.clip(cos, -1.0, 1.0)))",
                               "omega = 0.5 * float(np.arccos(np.clip(cos, -1.0, 1.0)))")],
        SURVIVORS + ["tests/test_latent.py"]),
    "slerp: never fall back to lerp": (
        "tinyvae/analysis/latent.py", [("if sin_omega < PARALLEL:", "if False:")],
        SURVIVORS + ["tests/test_latent.py"]),
    "anomaly score: recon − KL": (
        "tinyvae/analysis/anomaly.py", [("recon.astype(np.float64) + kl.astype(np.float64)",
                                "recon.astype(np.float64) - kl.astype(np.float64)")],
        SURVIVORS + ["tests/test_anomaly.py"]),
    "anomaly score: reconstruction only": (
        "tinyvae/analysis/anomaly.py",
        [("recon.astype(np.float64) + kl.astype(np.float64)", "recon.astype(np.float64)")],
        SURVIVORS + ["tests/test_anomaly.py"]),
    "anomaly score: negated": (
        "tinyvae/analysis/anomaly.py", [("scores.append(model.backend.to_numpy(value))",
                                "scores.append(-model.backend.to_numpy(value))")],
        SURVIVORS + ["tests/test_anomaly.py"]),
    "SGD: step along the gradient, not the velocity": (
        "tinyvae/training/optim.py", [("theta -= self.lr * v", "theta -= self.lr * g")],
        SURVIVORS + ["tests/test_optim.py"]),
    "SGD: forget the momentum": (
        "tinyvae/training/optim.py", [("v *= self.momentum", "v *= 0.0")], SURVIVORS + ["tests/test_optim.py"]),
    "SGD: ascend": (
        "tinyvae/training/optim.py", [("theta -= self.lr * v", "theta += self.lr * v")],
        SURVIVORS + ["tests/test_optim.py"]),
    # this branch's own fixes (issue 14)
    "resume --out: continue in the source folder": (
        "tinyvae/train.py", [('out_dir = Path(args.out or args.resume or f"runs/{config.dataset}")',
                              'out_dir = Path(args.resume or args.out or f"runs/{config.dataset}")')],
        ["tests/test_train.py"]),
    "parsers take abbreviated flags": (
        "tinyvae/cli.py", [("allow_abbrev=False", "allow_abbrev=True")], ["tests/test_cli_errors.py"]),
    "Bernoulli takes pixels outside [0, 1]": (
        "tinyvae/models/likelihood.py", [("if low < 0 or high > 1:", "if False:")], ["tests/test_vae.py"]),
    "no probe of the output folder": (
        "tinyvae/cli.py", [("    if not existing.is_dir():", "    return None\n    if not existing.is_dir():")],
        ["tests/test_cli_errors.py"]),
    # the blocked convolutions (tinyvae/fast/conv_blocks.py)
    "blocked Conv2d: dW from the last block only": (
        "tinyvae/fast/conv_blocks.py", [("dW_mat += dY_b.T @ cols", "dW_mat[...] = dY_b.T @ cols")], CONV_BLOCKS),
    "blocked ConvTranspose2d: dW from the last block only": (
        "tinyvae/fast/conv_blocks.py",
        [("dW_mat += self.X[start * P:stop * P].T @ D", "dW_mat[...] = self.X[start * P:stop * P].T @ D")],
        CONV_BLOCKS),
    "blocked Conv2d: every block's dx into the first": (
        "tinyvae/fast/conv_blocks.py", [("dx[start:stop], (H_out, W_out))", "dx[:stop - start], (H_out, W_out))")],
        CONV_BLOCKS),
    "blocked Conv2d: no bias": (
        "tinyvae/fast/conv_blocks.py", [("Y_b += self.b ", "pass  ")], CONV_BLOCKS),
    "blocked ConvTranspose2d: a block not zeroed before col2im": (
        "tinyvae/fast/conv_blocks.py", [("y_b[...] = 0 ", "pass  ")], CONV_BLOCKS),
    # the data-parallel step (tinyvae/fast/data_parallel.py)
    "data parallel: a plain mean of the shares' gradients": (
        "tinyvae/fast/data_parallel.py",
        [("grad *= (bounds[0][1] - bounds[0][0]) / N", "grad *= 1 / len(bounds)"),
         ("share_grad *= (stop - start) / N", "share_grad *= 1 / len(bounds)")],
        DATA_PARALLEL),
    "data parallel: the replicas miss KL annealing's weight": (
        "tinyvae/fast/data_parallel.py", [('replica.kl_weight = getattr(model, "kl_weight", 1.0)', "pass")],
        DATA_PARALLEL),
    "data parallel: the labels are not cut with their rows": (
        "tinyvae/fast/data_parallel.py", [("labels = None if labels is None else labels[start:stop]", "")],
        DATA_PARALLEL),
    "data parallel: evaluation keeps the split's one BLAS thread": (
        "tinyvae/training/trainer.py",
        [("self._evaluation_threads = usable_cores() if self.parallel is not None else None",
          "self._evaluation_threads = None")],
        DATA_PARALLEL),
    "data parallel: the free-bits VAE is split": (
        "tinyvae/models/vae.py", [("return self.free_bits == 0", "return True")], DATA_PARALLEL),
}


def run_mutant(name: str, workdir: Path) -> tuple[str, float]:
    """'killed by TEST', 'SURVIVED' or 'not applicable (...)', and the seconds its tests took."""
    file, edits, tests = MUTANTS[name]
    target = workdir / file
    original = target.read_text(encoding="utf-8")
    text = original
    for old, new in edits:
        if text.count(old) != 1:
            return f"not applicable (the text to change occurs {text.count(old)} times in {file})", 0.0
        text = text.replace(old, new)
    target.write_text(text, encoding="utf-8")
    try:
        tic = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests],
                                cwd=workdir, env=dict(os.environ, PYTHONPATH=str(workdir), PYTHONDONTWRITEBYTECODE="1"),
                                capture_output=True, text=True, timeout=900)
        seconds = time.perf_counter() - tic
    finally:
        target.write_text(original, encoding="utf-8")
    if result.returncode == 0:
        return "SURVIVED", seconds
    first = next((line.split(" - ")[0].removeprefix("FAILED ") for line in result.stdout.splitlines()
                  if line.startswith(("FAILED", "ERROR"))), "the test run")
    return f"killed by {first}", seconds


def main(argv: list[str]) -> int:
    names = [n for n in MUTANTS if not argv or any(word in n for word in argv)]
    with tempfile.TemporaryDirectory(prefix="tinyvae-mutants-") as tmp:
        workdir = Path(tmp) / "tinyvae"
        shutil.copytree(ROOT, workdir, ignore=shutil.ignore_patterns(*SKIP))
        outcomes = {}
        for name in names:
            outcomes[name], seconds = run_mutant(name, workdir)
            print(f"{seconds:5.1f} s  {name}: {outcomes[name]}", flush=True)
    survived = [n for n, o in outcomes.items() if o == "SURVIVED"]
    applied = [n for n, o in outcomes.items() if not o.startswith("not applicable")]
    print(f"{len(applied) - len(survived)} of {len(applied)} applicable mutants killed"
          + (f"; survivors: {', '.join(survived)}" if survived else ""))
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
