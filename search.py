"""Rank candidate architectures with a trained supernet.

    python search.py --run-dir runs/nb201 [--config configs/search_cpu.yaml] [section.key=value ...]
    python search.py --run-dir runs/nb201 ground_truth.table=PATH/nb201.json
    python search.py --list-keys

Writes RUN_DIR/search/ (or RUN_DIR/search/NAME with name=NAME); rerun the same command to resume.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from estimators.search import Search
from estimators.search_config import SearchConfig
from supernet.cli import run_cli
from supernet.config import format_schema_help, load_config


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Rank candidate architectures with a trained "
                                                 "supernet (fine-tune, estimate, compare).")
    parser.add_argument("--run-dir", type=Path, help="a train.py run directory")
    parser.add_argument("--config", help="YAML search config (see configs/search_*.yaml)")
    parser.add_argument("--ground-truth", help="shortcut for ground_truth.table=PATH")
    parser.add_argument("--list-keys", action="store_true", help="print every config key")
    parser.add_argument("overrides", nargs="*", metavar="section.key=value")
    args = parser.parse_args(argv)
    if args.list_keys:
        print(format_schema_help(SearchConfig))
        return 0
    if args.run_dir is None:
        parser.error("--run-dir is required")
    overrides = list(args.overrides)
    if args.ground_truth:
        overrides.append(f"ground_truth.table={args.ground_truth}")
    cfg = load_config(SearchConfig, args.config, overrides)
    Search(args.run_dir, cfg).run()
    return 0


if __name__ == "__main__":
    run_cli(main)
