"""Compare two searches' ``results.jsonl`` score by score, timings aside (a before/after check).

    python benchmarks/compare_results.py RUN_A/search/results.jsonl RUN_B/search/results.jsonl
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def strip_timings(value):
    """``value`` without its timing fields (``*seconds``, ``processes``), at any depth."""
    if isinstance(value, dict):
        return {k: strip_timings(v) for k, v in value.items()
                if not (k.endswith("seconds") or k == "processes")}
    if isinstance(value, list):
        return [strip_timings(v) for v in value]
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    args = parser.parse_args()
    records = [[strip_timings(json.loads(line)) for line in path.read_text().splitlines()]
               for path in (args.a, args.b)]
    by_index = [{r["index"]: r for r in rs} for rs in records]
    same = sum(by_index[0].get(i) == r for i, r in by_index[1].items())
    print(f"{len(by_index[0])} vs {len(by_index[1])} records; identical (timings aside): {same}")


if __name__ == "__main__":
    main()
