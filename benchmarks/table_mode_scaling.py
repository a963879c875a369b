"""Seconds per 1,000 evaluations of a table-mode search as it grows: flat when the search's
bookkeeping is linear, rising when each evaluation rescans the ones before it.

    python benchmarks/table_mode_scaling.py --run-dir RUN [--candidates 10000] [--every 2500]

Runs ``search.py``'s search in this process on a trained run dir (a toy one is enough: table
lookups touch no weights) with the ``table`` estimator alone, ``candidates.unique=none`` and no
retraining, in a fresh search dir, and prints the wall seconds of each 1,000 evaluations that end
at every ``--every``-th one, then the report's seconds. The search is the one ``search.py
--run-dir RUN name=scaling-N "estimators.names=[table]" candidates.num=N retrain.enabled=false
progress=false --ground-truth nb201`` runs.
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from speedynas_core.config import load_config
from speedynas_search.evaluator import Evaluator
from speedynas_search.search_config import SearchConfig, search_context
from speedynas_search.search_run import Search, search_dir
from supernet.run_dir import load_run_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--candidates", type=int, default=10_000)
    parser.add_argument("--every", type=int, default=2_500)
    args = parser.parse_args()
    overrides = [f"name=scaling-{args.candidates}", "estimators.names=[table]",
                 f"candidates.num={args.candidates}", "retrain.enabled=false", "progress=false",
                 "count_flops=false", "ground_truth.source=nb201", "threads=1"]
    cfg = load_config(SearchConfig, None, overrides,
                      context=search_context(load_run_config(args.run_dir)))
    shutil.rmtree(search_dir(args.run_dir, cfg), ignore_errors=True)

    ends: dict[int, float] = {}
    evaluate = Evaluator.evaluate

    def timed(self: Evaluator, *call_args, **kwargs):  # noqa: ANN202 - the wrapped method's
        try:
            return evaluate(self, *call_args, **kwargs)
        finally:
            ends[len(self.records)] = time.perf_counter()

    Evaluator.evaluate = timed
    search = Search(args.run_dir, cfg)
    report = search.report

    def timed_report(*call_args, **kwargs):  # noqa: ANN202
        start = time.perf_counter()
        try:
            return report(*call_args, **kwargs)
        finally:
            ends[-1] = time.perf_counter() - start

    search.report = timed_report
    start = ends[0] = time.perf_counter()
    search.run()
    rows = {at: round(ends[at] - ends[at - 1000], 2)
            for at in range(args.every, args.candidates + 1, args.every)
            if at in ends and at - 1000 in ends}
    print(json.dumps({"candidates": args.candidates,
                      "seconds_per_1000_ending_at": rows,
                      "report_seconds": round(ends[-1], 1),
                      "total_seconds": round(time.perf_counter() - start, 1)}))


if __name__ == "__main__":
    main()
