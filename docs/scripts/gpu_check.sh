#!/usr/bin/env bash
# The GPU checks in one prepared call, for a machine with CuPy and a CUDA GPU (docs/benchmarks.md, "GPU").
# Run from the repository root:  bash docs/scripts/gpu_check.sh [OUTPUT_FOLDER]
# Without a virtual environment it uses the installed packages with PYTHONPATH=. ; every step's
# output goes to OUTPUT_FOLDER (default: a new temporary folder), and the summary to stdout.
# The benchmarks train on Fashion-MNIST: set DATA="--data-dir FOLDER" (the four IDX files) where it
# is neither downloadable nor in /usr/share/datasets/fashion-mnist.
set -uo pipefail
out=${1:-$(mktemp -d)}
mkdir -p "$out"
export PYTHONPATH=${PYTHONPATH:-.} PYTHONUNBUFFERED=1
read -r -a data <<<"${DATA:-}"
step() {  # step NAME COMMAND...: run it, keep its output, print one line
  local name=$1; shift
  local start=$SECONDS
  "$@" >"$out/$name.txt" 2>&1
  local rc=$?
  echo "$name: exit $rc in $((SECONDS - start)) s ($out/$name.txt)"
  tail -n 3 "$out/$name.txt" | sed 's/^/    /'
}
step doctor python -m tinyvae.doctor --device gpu
step gpu-tests python -m pytest -q -p no:cacheprovider -m gpu tests
step benchmark-128 python -m tinyvae.benchmark --device gpu "${data[@]}" --epochs 5 --no-memory --json "$out/benchmark-128.json"
step benchmark-1024 python -m tinyvae.benchmark --device gpu "${data[@]}" --epochs 5 --batch-size 1024 --no-memory \
  --json "$out/benchmark-1024.json"
step benchmark-conv python -m tinyvae.benchmark --device gpu "${data[@]}" --arch conv --epochs 3 --no-memory \
  --json "$out/benchmark-conv.json"
