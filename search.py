"""Rank candidate architectures with a trained supernet.

    python search.py --run-dir runs/nb201 [--config configs/search_cpu.yaml] [key=value ...]
    python search.py --run-dir runs/nb201 --ground-truth nb201
    python search.py --list-keys
    torchrun --nproc_per_node=2 search.py --run-dir runs/nb201 ...   # candidates sharded

Writes RUN_DIR/search/ (or RUN_DIR/search/NAME with name=NAME); rerun the same command to resume.
"""
from __future__ import annotations

from speedynas_core.cli import parse_run_args, run_cli, run_parser

#: The config schema, imported only once the arguments ask for it (``--help`` needs no torch).
SCHEMA = "speedynas_search.search_config:SearchConfig"


def main(argv: list[str]) -> int:
    parser = run_parser("Rank candidate architectures with a trained supernet (fine-tune, "
                        "estimate, compare).", "YAML search config (see configs/search_*.yaml)")
    parser.add_argument("--ground-truth", metavar="SOURCE_OR_PATH",
                        help="a registered ground-truth source (nb201: the table shipped with "
                             "the package), or a table file: ground_truth.source=table "
                             "ground_truth.path=PATH")
    args = parse_run_args(parser, SCHEMA, argv)
    if args is None:
        return 0
    from search_spaces.ground_truth import GROUND_TRUTHS
    from speedynas_core.config import import_plugins, load_config
    from speedynas_core.distributed import DistEnv, init_distributed, shutdown
    from speedynas_search.search_config import SearchConfig, search_context
    from speedynas_search.search_run import Search
    from supernet.run_dir import load_run_config

    overrides = list(args.overrides)
    if args.ground_truth in GROUND_TRUTHS:
        overrides.append(f"ground_truth.source={args.ground_truth}")
    elif args.ground_truth:
        overrides += ["ground_truth.source=table", f"ground_truth.path={args.ground_truth}"]
    import_plugins(SearchConfig, args.config, overrides)  # the user's own, before the run's
    cfg = load_config(SearchConfig, args.config, overrides,
                      context=search_context(load_run_config(args.run_dir)))
    env = DistEnv()
    try:
        env, device = init_distributed(cfg.device)
        Search(args.run_dir, cfg, env, device).run()
    finally:
        shutdown(env)
    return 0


if __name__ == "__main__":
    run_cli(main)
