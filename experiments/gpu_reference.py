"""The reference-scale RandNAS row on one GPU within a wall-clock budget, in one command.

    python experiments/gpu_reference.py [--minutes 9] [--precision bf16]
        [--out results/gpu_reference] [--work-dir runs/gpu]
        [--train-config configs/nb201_randnas.yaml] [--search-config configs/search_gpu.yaml]
        [--train KEY=VALUE ...] [--search KEY=VALUE ...]

1. Calibrate (about 20 s): time supernet training steps (a random single path, the config's
   batch) and candidate fine-tune steps (an extracted path, the search's batch) on the device,
   with random tensors, after a warm-up.
2. Choose the epochs that fit: the reference recipe (``--train-config``: NB201 C = 16, N = 5,
   SGD 0.025 cosine, batch 64) runs for as many whole epochs as the budget leaves after the
   search's estimate (its candidates x max(B) fine-tune steps, times 2 for validation and
   scoring) and a 60 s margin; at least one.
3. ``train.py`` with those epochs, then ``search.py`` (200 candidates at B = 100 by default),
   each a subprocess with ``precision`` set (:mod:`speedynas_core.stages`: logs
   ``OUT/train.log`` and ``OUT/search.log``, commands recorded in ``OUT/commands.jsonl``); a
   killed run resumes when the command is repeated (the epoch count is read back from the
   run's saved config), and a finished stage is skipped.
4. ``OUT/timing.json`` (seconds per epoch and per candidate, measured; the calibration; the
   epochs; each stage's wall time, kept from the run that ran it) and ``OUT/report.md`` (the
   same, the command, and the search's ranking table), beside the search's ``summary.json``
   and ``scores.csv``.

On a machine without a GPU it runs on the CPU (a toy config makes a quick test of it).
"""
from __future__ import annotations

import argparse
import json
import shlex
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from speedynas_core.atomic_io import atomic_write_json, atomic_write_text
from speedynas_core.cli import run_cli
from speedynas_core.config import load_config
from speedynas_core.runtime import mixed_precision, resolve_device
from speedynas_core.stages import StageRunner, search_stage, train_stage
from speedynas_search.search_config import SearchConfig, search_context
from supernet import create_supernet
from supernet.train_config import TrainConfig
from supernet.trainer import accumulate_paths

REPO = Path(__file__).resolve().parents[1]
#: Seconds kept free for process start-up, data loading and reports.
MARGIN = 60.0
#: A candidate's wall time over its fine-tune steps alone (validation losses, valacc, scoring).
SEARCH_FACTOR = 2.0


def seconds_per_step(step: Any, device: torch.device, warmup: int = 5, steps: int = 20) -> float:
    """Mean seconds of ``step()`` after ``warmup`` calls (synchronised on a GPU)."""
    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / steps


def calibrate(train_cfg: TrainConfig, search_cfg: SearchConfig,
              device: torch.device) -> dict[str, float]:
    """Seconds per supernet training step and per candidate fine-tune step, on ``device``."""
    torch.manual_seed(0)
    net = create_supernet(train_cfg.model.space, **train_cfg.model.options()).to(device)
    memory = torch.channels_last if train_cfg.model.channels_last else torch.contiguous_format
    net = net.to(memory_format=memory)
    size = train_cfg.data.resolution
    rng = np.random.default_rng(0)

    def batch(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randn(n, 3, size, size, device=device).to(memory_format=memory)
        return x, torch.randint(0, 10, (n,), device=device)

    x, y = batch(train_cfg.optim.batch_size)
    optimizer = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        accumulate_paths(net, x, y, [net.space.sample(rng)], precision=train_cfg.precision)
        optimizer.step()

    sub = net.extract(net.space.sample(rng)).train()
    fx, fy = batch(search_cfg.finetune.batch_size)
    sub_optimizer = torch.optim.SGD(sub.parameters(), lr=1e-3, momentum=0.9)

    def finetune_step() -> None:
        with mixed_precision(device, search_cfg.precision):
            loss = F.cross_entropy(sub(fx), fy)
        sub_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        sub_optimizer.step()

    return {"train_step_seconds": seconds_per_step(train_step, device),
            "finetune_step_seconds": seconds_per_step(finetune_step, device)}


def plan_epochs(train_cfg: TrainConfig, search_cfg: SearchConfig, calibration: dict[str, float],
                minutes: float, train_images: int) -> dict[str, float]:
    """The whole epochs that fit in ``minutes`` beside the search's estimate (at least 1)."""
    steps_per_epoch = train_images // train_cfg.optim.batch_size
    epoch = steps_per_epoch * calibration["train_step_seconds"]
    search = (search_cfg.candidates.num * max(search_cfg.finetune.budgets)
              * calibration["finetune_step_seconds"] * SEARCH_FACTOR)
    epochs = int(max(1, (60.0 * minutes - MARGIN - search) // epoch))
    return {"epochs": epochs, "estimated_epoch_seconds": epoch,
            "estimated_search_seconds": search}


def stage_seconds(measured: dict[str, float], previous: Path) -> dict[str, float]:
    """Each stage's wall seconds: this run's, or for a stage found done, the seconds recorded
    by the run that ran it (``previous``: the timing.json it wrote)."""
    before = json.loads(previous.read_text()) if previous.exists() else {}
    return {f"{name}_seconds": measured.get(name, before.get(f"{name}_seconds", 0.0))
            for name in ("train", "search")}


def report(out: Path, timing: dict[str, Any], summary_md: str, command: str) -> str:
    """report.md: timings, then the search's ranking table."""
    lines = ["# Reference-scale RandNAS row on one device", "", f"Command: `{command}`", "",
             f"- device: {timing['device']}, precision {timing['precision']}",
             f"- budget {timing['minutes']} min; calibration: "
             f"{timing['calibration']['train_step_seconds'] * 1e3:.1f} ms per training step, "
             f"{timing['calibration']['finetune_step_seconds'] * 1e3:.1f} ms per fine-tune step",
             f"- supernet: {timing['epochs']} epochs, {timing['seconds_per_epoch']:.1f} s per "
             f"epoch (measured), training {timing['train_seconds']:.0f} s",
             f"- search: {timing['candidates']} candidates, {timing['seconds_per_candidate']:.2f}"
             f" s per candidate (measured), {timing['search_seconds']:.0f} s",
             f"- total {timing['total_seconds']:.0f} s", "", "## Search summary", "",
             summary_md.split("## Ranking quality", 1)[-1].split("\n## ", 1)[0].strip()]
    text = "\n".join(lines) + "\n"
    atomic_write_text(out / "report.md", text)
    return text


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=9.0)
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="bf16")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "gpu_reference")
    parser.add_argument("--work-dir", type=Path, default=REPO / "runs" / "gpu")
    parser.add_argument("--train-config", default=str(REPO / "configs" / "nb201_randnas.yaml"))
    parser.add_argument("--search-config", default=str(REPO / "configs" / "search_gpu.yaml"))
    parser.add_argument("--train", nargs="*", default=[], help="train.py overrides")
    parser.add_argument("--search", nargs="*", default=[], help="search.py overrides")
    args = parser.parse_args(argv)
    begin = time.perf_counter()
    run_dir = args.work_dir / "randnas"
    train_overrides = [f"precision={args.precision}", *args.train]
    search_overrides = [f"precision={args.precision}", "progress=false", *args.search]
    train_cfg = load_config(TrainConfig, args.train_config, train_overrides)
    search_cfg = load_config(SearchConfig, args.search_config, search_overrides,
                             context=search_context(train_cfg))
    device = resolve_device(train_cfg.device)
    calibration = calibrate(train_cfg, search_cfg, device)
    saved = run_dir / "config.yaml"
    if saved.exists():  # a resumed run keeps the epochs it was planned with
        plan = {"epochs": load_config(TrainConfig, saved).optim.epochs}
    else:
        train_images = (train_cfg.data.train_size
                        or round(50_000 * (1 - train_cfg.data.val_fraction)))
        plan = plan_epochs(train_cfg, search_cfg, calibration, args.minutes, train_images)
    print(f"calibration {calibration}; plan {plan}", flush=True)
    train = train_stage("train", run_dir, args.train_config,
                        [*train_overrides, f"optim.epochs={plan['epochs']}"],
                        log=args.out / "train.log")
    search = search_stage("search", run_dir, args.search_config, search_overrides,
                          log=args.out / "search.log")
    measured = StageRunner(args.out / "commands.jsonl", cwd=REPO).run([train, search])
    summary = json.loads(search.output.read_text())
    history = json.loads((run_dir / "history.json").read_text())
    timing = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "precision": args.precision, "minutes": args.minutes, "calibration": calibration,
        "plan": plan, "epochs": len(history),
        "seconds_per_epoch": float(np.mean([h["seconds"] for h in history])),
        "candidates": summary["n_candidates"],
        "seconds_per_candidate": summary["seconds_per_candidate"],
        **stage_seconds(measured, args.out / "timing.json"),
        "total_seconds": time.perf_counter() - begin,
    }
    atomic_write_json(args.out / "timing.json", timing)
    for name in ("summary.json", "scores.csv"):
        shutil.copyfile(search.output.parent / name, args.out / name)
    command = shlex.join(["python", "experiments/gpu_reference.py", *argv])
    print(report(args.out, timing, (search.output.parent / "summary.md").read_text(), command))
    return 0


if __name__ == "__main__":
    run_cli(main)
