"""Size and load time of the shipped NAS-Bench-201 table, against the shared JSON table.

    python benchmarks/nb201_table_load.py [--repeats 20] [--json ../shared/benchmarks/nb201.json]

Prints the file size; the first load in a fresh process (the figure a user waits for) and the
median of repeated loads; the time to create the ``nb201`` ground truth and to look up 1,000
archs; and, when the shared file is there, the same for the ``table`` source reading it.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import search_spaces
from search_spaces import create_ground_truth
from search_spaces.nb201_table import TABLE_PATH, read_table

REPO = Path(__file__).resolve().parents[1]
DEFAULT_JSON = REPO.parent / "shared" / "benchmarks" / "nb201.json"
FIRST_LOAD = """
import time
import search_spaces.nb201_table as t
start = time.perf_counter()
t.read_table(t.TABLE_PATH)
print(time.perf_counter() - start)
"""


def seconds(fn, repeats: int) -> float:
    """Median wall seconds of ``fn()`` over ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def first_load_seconds() -> float:
    """Seconds of the first table load in a fresh interpreter (imports not counted)."""
    out = subprocess.run([sys.executable, "-c", FIRST_LOAD], capture_output=True, text=True,
                         check=True, cwd=REPO)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()
    space = search_spaces.create("nb201")
    archs = space.sample_many(1000, np.random.default_rng(0))
    print(f"{TABLE_PATH}: {TABLE_PATH.stat().st_size:,} bytes")
    print(f"first load, fresh process: {first_load_seconds() * 1e3:.1f} ms")
    print(f"load (median of {args.repeats}): "
          f"{seconds(lambda: read_table(TABLE_PATH), args.repeats) * 1e3:.1f} ms")
    truth = create_ground_truth("nb201", space=space)
    create = seconds(lambda: create_ground_truth("nb201", space=space), args.repeats)
    print(f"create_ground_truth('nb201'), table cached: {create * 1e3:.2f} ms")
    print(f"lookup_many of 1,000 archs: "
          f"{seconds(lambda: truth.lookup_many(archs), args.repeats) * 1e3:.1f} ms")
    if args.json.exists():
        def from_json() -> None:
            create_ground_truth("table", path=args.json, space=space, column="cifar10_test")

        print(f"{args.json.name}: {args.json.stat().st_size:,} bytes")
        print(f"create_ground_truth('table', path={args.json.name}) (median of 3): "
              f"{seconds(from_json, 3):.2f} s")


if __name__ == "__main__":
    main()
