#!/usr/bin/env bash
# The opt-in fast path: host-trainer on burn's libtorch backend (`tch`), with libtorch taken from
# PyPI's torch 2.9.0 (the version burn-tch 0.22 expects). This script
#   1. makes a Python venv with torch 2.9.0 (about 6.7 GB on disk: PyPI's torch wheels bring
#      CUDA libraries even for CPU use) unless it exists,
#   2. builds host-trainer with `--no-default-features --features tch` into a target folder of its
#      own (so the default flex binary is not replaced),
#   3. times a training step next to PyTorch itself (`host-trainer bench`, bench/pytorch_step.py),
#   4. trains the v2 recipe for one epoch of 200 steps on real faces, then extends the run by a
#      second epoch with --resume, and prints both epochs' training loss (it must fall).
# It is not part of CI (the torch download and a second burn build do not fit CI's budget).
#
#   bench/tch.sh /path/to/fer2013
#
# Afterwards, train with the printed environment:
#   LD_LIBRARY_PATH=<torch/lib> <target>/release/host-trainer --data ... --out ...
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:?usage: bench/tch.sh /path/to/fer2013}
venv=${TORCH_VENV:-$HOME/.cache/fer-edge/torch-venv}
export CARGO_TARGET_DIR=${TCH_TARGET_DIR:-$HOME/.cache/fer-edge/target-tch}

if ! "$venv/bin/python" -c 'import torch' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install torch==2.9.0 numpy
fi
torch_lib=$("$venv/bin/python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LIBTORCH_USE_PYTORCH=1
export PATH="$venv/bin:$PATH"
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

time cargo build --release -p host-trainer --no-default-features --features tch
bin="$CARGO_TARGET_DIR/release/host-trainer"

"$bin" bench --steps 20
"$venv/bin/python" bench/pytorch_step.py --threads 2 --steps 20

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$bin" train --data "$data" --out "$out" --preset v2 --epochs 1 --limit-train 8000 --limit-val 1000 --quiet
"$bin" train --data "$data" --out "$out" --preset v2 --epochs 2 --limit-train 8000 --limit-val 1000 --quiet --resume
"$venv/bin/python" - "$out/fer_cnn_v2.history.json" <<'PY'
import json, sys
history = json.load(open(sys.argv[1]))["history"]
losses = [e["train_loss"] for e in history]
print("training loss per epoch:", ", ".join(f"{l:.4f}" for l in losses))
if len(losses) != 2 or not losses[1] < losses[0]:
    sys.exit("the loss did not fall over the resumed epoch")
PY
echo "tch: LD_LIBRARY_PATH=$torch_lib $bin"
