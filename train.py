"""Train a weight-sharing supernet.

    python train.py --config configs/nb201_cpu_randnas.yaml --run-dir runs/nb201 [key=value ...]
    python train.py --run-dir runs/nb201 --resume
    python train.py --list-keys
    torchrun --nproc_per_node=2 train.py --config ... --run-dir ...   # data parallel
"""
from __future__ import annotations

from speedynas_core.cli import parse_run_args, run_cli, run_parser

#: The config schema, imported only once the arguments ask for it (``--help`` needs no torch).
SCHEMA = "supernet.train_config:TrainConfig"


def main(argv: list[str]) -> int:
    parser = run_parser("Train a weight-sharing supernet.", "YAML config file (see configs/)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    args = parse_run_args(parser, SCHEMA, argv)
    if args is None:
        return 0
    from supernet.train_run import train
    return train(args)


if __name__ == "__main__":
    run_cli(main)
