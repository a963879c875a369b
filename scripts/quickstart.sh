#!/usr/bin/env bash
# Quick start on a fresh machine: a virtual environment in .venv (made if missing), torch and the
# package installed as .ci/run does, CIFAR-10 (from ../shared when there, else torchvision
# downloads it), then a small NB201 supernet is trained (configs/quickstart.yaml) and 80
# candidates are ranked against the NAS-Bench-201 table shipped with the package
# (configs/search_quickstart.yaml); outputs in runs/quickstart.
# About 5.5 minutes on 2 CPU cores from a fresh clone (5 min 23 s measured: install 1 min 43 s,
# training 92 s, search 128 s); a new user's first run took 7 min 47 s.
# Running it again reuses the trained supernet and the finished candidates (under a minute).
# One thread per process (OMP_NUM_THREADS, unless set): these networks are too small to gain
# from a second thread (about 18 ms per step either way on 2 cores), and two threads slow down
# about tenfold as soon as another job shares the cores.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
RUN_DIR=${RUN_DIR:-runs/quickstart}
PY="$VENV/bin/python"

begin=$(date +%s)
echo "quick start 1/3: installing torch and the package into $VENV" \
     "(1.5-2 minutes on a fresh machine, seconds when already installed; pip prints nothing)"
[ -x "$PY" ] || python3 -m venv "$VENV"
export PIP_DISABLE_PIP_VERSION_CHECK=1
"$VENV/bin/pip" install -q torch==2.14.1 torchvision==0.29.1 2>&1 | grep -v "^WARNING: Location" || true
"$VENV/bin/pip" install -q -e . 2>&1 | grep -v "^WARNING: Location" || true
"$PY" -c "import torch, torchvision, search_spaces, supernet, estimators, speedynas_search"

SHARED_DATA=../shared/data/cifar10-jpg.tar.gz
if [ -f "$SHARED_DATA" ] && [ ! -d data/cifar10/train ]; then
  echo "unpacking $SHARED_DATA into data/cifar10"
  mkdir -p data/cifar10
  tar xzf "$SHARED_DATA" -C data/cifar10
fi

export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
start=$(date +%s)
echo "quick start 2/3: training a small supernet into $RUN_DIR (about 1.5 minutes)"
if [ -f "$RUN_DIR/config.yaml" ]; then
  "$PY" train.py --run-dir "$RUN_DIR" --resume
else
  "$PY" train.py --config configs/quickstart.yaml --run-dir "$RUN_DIR"
fi
trained=$(date +%s)
echo "quick start 3/3: ranking 80 candidates against the NAS-Bench-201 table (about 2 minutes)"
"$PY" search.py --run-dir "$RUN_DIR" --config configs/search_quickstart.yaml
done_at=$(date +%s)
echo "quick start: install and data $((start - begin)) s, training $((trained - start)) s," \
     "search $((done_at - trained)) s; summary in $RUN_DIR/search/summary.md"
