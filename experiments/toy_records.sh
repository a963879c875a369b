#!/usr/bin/env bash
# The toy train-and-search whose records must not change when code moves (a before/after check):
# a RandNAS and a DARTS-TSE toy supernet (configs/toy.yaml), the toy search of each, and a
# table-mode evolution of 60 evaluations. Run it on both commits, then compare each search:
#   bash experiments/toy_records.sh OUT_BEFORE   # on the old commit
#   bash experiments/toy_records.sh OUT_AFTER    # on the new one
#   for s in rand/search rand/search/table dtse/search; do
#     python experiments/compare_results.py OUT_BEFORE/$s/results.jsonl OUT_AFTER/$s/results.jsonl
#   done
# About 30 s on 2 CPU cores. Older commits spell the keys budget.evaluations and
# sampler.name=darts_tse: set LIMIT and DARTS_ARGS to their spelling.
set -euo pipefail
OUT=${1:?usage: bash experiments/toy_records.sh OUT_DIR}
LIMIT=${LIMIT:-"limit.evaluations=60"}
DARTS_ARGS=${DARTS_ARGS:-"method.name=darts_tse method.tse_steps=2"}
export OMP_NUM_THREADS=1
rm -rf "$OUT"
mkdir -p "$OUT"
python train.py --config configs/toy.yaml --run-dir "$OUT/rand" > "$OUT/rand.train.log" 2>&1
python search.py --run-dir "$OUT/rand" --config configs/search_toy.yaml > "$OUT/rand.search.log" 2>&1
python search.py --run-dir "$OUT/rand" --config configs/search_strategies_table.yaml name=table \
  $LIMIT candidates.num=200 > "$OUT/table.search.log" 2>&1
python train.py --config configs/toy.yaml --run-dir "$OUT/dtse" $DARTS_ARGS > "$OUT/dtse.train.log" 2>&1
python search.py --run-dir "$OUT/dtse" --config configs/search_toy.yaml > "$OUT/dtse.search.log" 2>&1
echo "records in $OUT/{rand/search,rand/search/table,dtse/search}/results.jsonl"
