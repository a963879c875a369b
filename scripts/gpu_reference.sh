#!/usr/bin/env bash
# The prepared GPU run (issue 17): the reference-scale RandNAS row within 9 minutes on one GPU.
# On the device machine, from the repo root, with the CIFAR-10 archive carried in .gpu/:
#   here:  mkdir -p .gpu && cp ../shared/data/cifar10-jpg.tar.gz .gpu/
#   there: bash scripts/gpu_reference.sh        (run tool: carry [".gpu"], timeout_s 600)
# Writes report.md, timing.json, summary.json, scores.csv and the logs to $OUT
# (or results/gpu_reference).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
PY=${PY:-python3}
if [ ! -d data/cifar10/train ]; then
  mkdir -p data/cifar10
  tar xzf .gpu/cifar10-jpg.tar.gz -C data/cifar10
fi
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
"$PY" experiments/gpu_reference.py --minutes "${MINUTES:-9}" --precision "${PRECISION:-bf16}" \
  --out "${OUT:-results/gpu_reference}" --work-dir runs/gpu "$@"
