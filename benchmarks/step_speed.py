"""Supernet and fine-tune step speed of this tree against a baseline commit, side by side.

    python benchmarks/step_speed.py [--baseline REV] [--rounds 5] [--steps 20]
    python benchmarks/step_speed.py --compile [--rounds 5] [--steps 20]

Checks ``REV`` (default: the commit before the speed work) out into a temporary git worktree
and, alternating between the two trees ``--rounds`` times so both see the same machine load:

1. runs :mod:`benchmarks.step_worker` with each tree first on ``PYTHONPATH`` (one thread, as
   each torchrun process trains): the median images per second of a supernet training step and
   of a fine-tune step, their ratio, and the largest relative difference between the two trees'
   first five training losses from the same seed (float noise only when a change keeps
   results);
2. trains one epoch on 12,800 images with each tree's ``train.py`` as the CPU-scale table does
   (``torchrun --nproc_per_node=2``, one thread each; ``configs/nb201_cpu_randnas.yaml``,
   probes off): the trainer's images per second (data, steps, all-reduce, bookkeeping), also
   at a global batch of 128 with the learning rate scaled to 0.05.

With ``--compile`` it instead measures ``torch.compile`` on this tree alone: the worker eager,
with every op below the path choice compiled (``ops``), and with the whole extracted
sub-network compiled for the fine-tune (``subnet``), rounds interleaved; per mode the images
per second of both steps against eager, the warm-up (compile) seconds, and for a compiled
fine-tune that is faster the steps it takes to earn its compile time back. ``--nb201-arch``
fine-tunes a given NB201 arch instead of the worker's sample (NB201 settings only).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from supernet.run_dir import load_run_config

REPO = Path(__file__).resolve().parents[1]
#: The last commit before the speed changes of issue 17.
BASELINE = "b2588e4"
#: (space, resolution, batch): the CPU-scale table's supernets, and DARTS at 32 px.
SETTINGS = [("nb201", 32, 64), ("nb201", 32, 128), ("darts", 16, 64), ("darts", 32, 64)]
#: Trainer runs: (label, train.py overrides) on configs/nb201_cpu_randnas.yaml.
TRAINER = [("batch 64 (the table's recipe)", []),
           ("batch 128, lr 0.05", ["optim.batch_size=128", "optim.lr=0.05"])]
TRAIN_IMAGES = 12_800
#: The worker's torch.compile modes (see benchmarks/step_worker.py).
COMPILE_MODES = ("none", "ops", "subnet")
#: The worker's two timed steps.
STEPS = ("train_seconds", "finetune_seconds")


def run_worker(tree: Path, setting: tuple[str, int, int], steps: int,
               compile_mode: str = "none", arch: tuple[str, ...] = ()) -> dict:
    """One worker run with ``tree``'s packages; its JSON line. A compiling run gets an empty
    inductor cache of its own, so its warm-up is a cold compile."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1",
               "TORCHINDUCTOR_CACHE_DIR": cache}
        out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "step_worker.py"),
                              *map(str, setting), str(steps), compile_mode, *arch],
                             env=env, cwd=tree, capture_output=True, text=True,
                             check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def medians(runs: dict[str, list[dict]], field: str | None = None) -> dict[tuple[str, str], float]:
    """Per (run label, step): the median over rounds of the worker's seconds for that step (or
    of its ``field`` sub-dict's entry, e.g. ``warmup_seconds``)."""
    return {(label, key): statistics.median((r[field] if field else r)[key] for r in rounds)
            for label, rounds in runs.items() for key in STEPS}


def loss_difference(reference: dict, other: dict) -> float:
    """The largest relative difference between two worker runs' first training losses."""
    return max(abs(a - b) / abs(a) for a, b in zip(reference["losses"], other["losses"]))


def compare_compile(rounds: int, steps: int, nb201_arch: str | None) -> None:
    """Eager against the two torch.compile modes on this tree, rounds interleaved; with
    ``nb201_arch``, the NB201 settings only, fine-tuning that arch."""
    settings = SETTINGS if nb201_arch is None else [s for s in SETTINGS if s[0] == "nb201"]
    arch = () if nb201_arch is None else (nb201_arch,)
    shown = nb201_arch or "sampled by the worker"
    print(f"torch.compile on this tree; medians of {rounds} rounds of {steps} steps, 1 thread; "
          f"fine-tuned arch: {shown}\n")
    print("| setting | mode | train img/s | ratio | fine-tune img/s | ratio | warm-up s "
          "(train, fine-tune) | break-even fine-tune steps | max rel. loss diff |")
    print("|---|---|---|---|---|---|---|---|---|")
    for setting in settings:
        runs: dict[str, list[dict]] = {mode: [] for mode in COMPILE_MODES}
        for _ in range(rounds):
            for mode in COMPILE_MODES:
                runs[mode].append(run_worker(REPO, setting, steps, mode, arch))
        seconds, warm = medians(runs), medians(runs, "warmup_seconds")
        batch, fine = setting[2], "finetune_seconds"
        for mode in COMPILE_MODES:
            saved = seconds["none", fine] - seconds[mode, fine]
            extra = warm[mode, fine] - warm["none", fine]
            even = f"{extra / saved:.0f}" if mode != "none" and saved > 0 else "-"
            cells = []
            for key in STEPS:
                cells += [f"{batch / seconds[mode, key]:.0f}",
                          f"{seconds['none', key] / seconds[mode, key]:.2f}x"]
            print(f"| {setting[0]} {setting[1]} px, batch {batch} | {mode} | "
                  + " | ".join(cells) + f" | {warm[mode, 'train_seconds']:.1f}, "
                  f"{warm[mode, fine]:.1f} | {even} | "
                  f"{loss_difference(runs['none'][0], runs[mode][0]):.1e} |", flush=True)


def trainer_images_per_second(tree: Path, overrides: list[str], work: Path) -> float:
    """One epoch of ``tree``'s train.py under torchrun (2 processes, 1 thread each)."""
    run_dir = work / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                    "--nproc_per_node=2", "train.py", "--config",
                    str(REPO / "configs" / "nb201_cpu_randnas.yaml"), "--run-dir", str(run_dir),
                    "optim.epochs=1", f"data.train_size={TRAIN_IMAGES}", "log.probe_archs=0",
                    "log.progress=false", f"data.root={REPO / 'data' / 'cifar10'}", *overrides],
                   env=env, cwd=tree, capture_output=True, check=True)
    epoch = json.loads((run_dir / "history.json").read_text())[0]
    return epoch["step"] * load_run_config(run_dir).optim.batch_size / epoch["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=BASELINE)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--compile", action="store_true",
                        help="measure torch.compile of the static parts on this tree instead")
    parser.add_argument("--nb201-arch", help="with --compile: fine-tune this NB201 arch "
                                             "(NB201 settings only)")
    args = parser.parse_args()
    if args.compile:
        compare_compile(args.rounds, args.steps, args.nb201_arch)
        return
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "baseline"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(base), args.baseline],
                       cwd=REPO, check=True)
        try:
            print(f"baseline {args.baseline} vs this tree; medians of {args.rounds} rounds of "
                  f"{args.steps} steps, 1 thread\n")
            print("| setting | train img/s baseline | train img/s now | ratio | fine-tune img/s "
                  "baseline | fine-tune img/s now | ratio | max rel. loss diff |")
            print("|---|---|---|---|---|---|---|---|")
            for setting in SETTINGS:
                runs: dict[str, list[dict]] = {"base": [], "now": []}
                for _ in range(args.rounds):
                    runs["base"].append(run_worker(base, setting, args.steps))
                    runs["now"].append(run_worker(REPO, setting, args.steps))
                batch = setting[2]
                speed = {label: batch / median for label, median in medians(runs).items()}
                diff = loss_difference(runs["base"][0], runs["now"][0])
                cells = []
                for key in STEPS:
                    cells += [f"{speed['base', key]:.0f}", f"{speed['now', key]:.0f}",
                              f"{speed['now', key] / speed['base', key]:.2f}x"]
                name = f"{setting[0]} {setting[1]} px, batch {batch}"
                print(f"| {name} | " + " | ".join(cells) + f" | {diff:.1e} |", flush=True)
            print(f"\ntrain.py, one epoch of {TRAIN_IMAGES:,} images, torchrun 2 x 1 thread; "
                  f"medians of {args.rounds} rounds\n")
            print("| recipe | images/s baseline (batch 64) | images/s now | ratio |")
            print("|---|---|---|---|")
            for label, overrides in TRAINER:
                speeds: dict[str, list[float]] = {"base": [], "now": []}
                for _ in range(args.rounds):
                    speeds["base"].append(trainer_images_per_second(base, [], Path(tmp)))
                    speeds["now"].append(trainer_images_per_second(REPO, overrides, Path(tmp)))
                base_speed = statistics.median(speeds["base"])
                now = statistics.median(speeds["now"])
                print(f"| {label} | {base_speed:.0f} | {now:.0f} | {now / base_speed:.2f}x |",
                      flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=REPO,
                           check=False)


if __name__ == "__main__":
    main()
