"""Compare two searches' ``results.jsonl`` score by score, timings aside (a before/after check).

    python experiments/compare_results.py RUN_A/search/results.jsonl RUN_B/search/results.jsonl
"""
from __future__ import annotations

import argparse
from pathlib import Path

from speedynas_core.cli import run_cli
from speedynas_search.analysis import compare_records


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    args = parser.parse_args(argv)
    first, second, same = compare_records(args.a, args.b)
    print(f"{first} vs {second} records; identical (timings aside): {same}")
    return 0


if __name__ == "__main__":
    run_cli(main)
