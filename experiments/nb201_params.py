"""Stand-alone NB201 parameter counts of all 15,625 cells against the benchmark table.

    python experiments/nb201_params.py [--table ../shared/benchmarks/nb201.json]

Builds every cell's C=16, N=5 network on the meta device (no memory, no init) and compares its
parameter count with the table's ``params_cifar10``. Prints the number of matches and mismatches.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import search_spaces
from supernet.measure import arch_parameters

DEFAULT_TABLE = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "nb201.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", type=Path, default=DEFAULT_TABLE)
    args = parser.parse_args()
    table = json.loads(args.table.read_text())["archs"]
    space = search_spaces.create("nb201")
    start = time.perf_counter()
    mismatches = [str(a) for a in space.enumerate()
                  if arch_parameters(a) != table[str(a)]["params_cifar10"]]
    print(f"{len(table) - len(mismatches)} / {len(table)} cells match params_cifar10 "
          f"({len(mismatches)} mismatches) in {time.perf_counter() - start:.0f} s")
    for text in mismatches[:10]:
        print("  mismatch:", text)


if __name__ == "__main__":
    main()
