"""Train a weight-sharing supernet.

    python train.py --config configs/nb201_cpu_randnas.yaml --run-dir runs/nb201 [key=value ...]
    python train.py --run-dir runs/nb201 --resume
    python train.py --list-keys
"""
from __future__ import annotations

from supernet.cli import parse_run_args, run_cli, run_parser
from supernet.run_dir import resolve_train_config
from supernet.train_config import TrainConfig
from supernet.trainer import SupernetTrainer


def main(argv: list[str]) -> int:
    parser = run_parser("Train a weight-sharing supernet.", "YAML config file (see configs/)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    args = parse_run_args(parser, TrainConfig, argv)
    if args is None:
        return 0
    cfg = resolve_train_config(args.run_dir, args.config, args.overrides, args.resume)
    history = SupernetTrainer(cfg, args.run_dir).run()
    if history:
        last = history[-1]
        print(f"finished {cfg.optim.epochs} epochs in {args.run_dir}: train loss "
              f"{last['train_loss']:.4f}, train acc {last['train_acc']:.4f}"
              + (f", probe acc {last['probe_acc_mean']:.4f}" if "probe_acc_mean" in last else ""))
    return 0


if __name__ == "__main__":
    run_cli(main)
