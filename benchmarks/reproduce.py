"""Reproduce the paper's one-shot table (Table 2) at CPU scale, resumably, in one command.

    python benchmarks/reproduce.py --out results/cpu-nb201 [--samplers randnas fairnas multipaths]
                                   [--work-dir runs/reproduce] [--candidate-seed 123]

For each sampler: train its CPU-scale NB201 supernet (configs/nb201_cpu_<sampler>.yaml), search
200 uniform candidates (configs/search_cpu.yaml: B = 100, 200, 300) against the NAS-Bench-201
table, and copy the search's summary.json/summary.md into OUT/<sampler>/. Then write
OUT/table.md: our Spearman/Kendall per estimator and B, top-10 true accuracy, the best possible
top-10, wall time per stage, and the paper's numbers beside ours. Re-running skips finished
work (training resumes from its checkpoint, the search from its results.jsonl).
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

from estimators.search import Search, search_dir
from estimators.search_config import SearchConfig
from supernet.atomic_io import atomic_write_json, atomic_write_text, read_jsonl
from supernet.config import load_config
from supernet.run_dir import resolve_train_config
from supernet.trainer import SupernetTrainer

REPO = Path(__file__).resolve().parents[1]
NB201_TABLE = REPO.parent / "shared" / "benchmarks" / "nb201.json"
ROWS = ["tse", "tse_e", "tse_ema", "sovl", "valacc", "valacc_inherited", "tlmini", "params"]
# Ru et al. 2021, Table 2 (NB201, 200 sub-networks, B = 100): Spearman, and top-10 true accuracy.
PAPER = {
    "randnas": {"tse": 0.70, "valacc": 0.44, "sovl": 0.54, "tlmini": 0.62,
                "top10": {"tse": 92.67, "valacc": 91.47}},
    "fairnas": {"tse": 0.84, "valacc": 0.56, "sovl": 0.84, "tlmini": 0.72,
                "top10": {"tse": 92.70, "valacc": 91.73}},
    "multipaths": {"tse": 0.83, "valacc": 0.67, "sovl": 0.83, "tlmini": 0.74,
                   "top10": {"tse": 92.63, "valacc": 91.77}},
}


def train_stage(sampler: str, run_dir: Path, data_root: Path | None) -> float:
    """Train (or finish training) the sampler's supernet; its total training seconds."""
    config = REPO / "configs" / f"nb201_cpu_{sampler}.yaml"
    resume = (run_dir / "config.yaml").exists()
    overrides = [] if resume else ["log.progress=false"] + (
        [f"data.root={data_root}"] if data_root else [])
    cfg = resolve_train_config(run_dir, None if resume else str(config), overrides, resume)
    trainer = SupernetTrainer(cfg, run_dir)
    history = trainer.run()
    return sum(entry["seconds"] for entry in history)


def search_stage(run_dir: Path, candidate_seed: int,
                 table: Path) -> tuple[dict[str, Any], float, Path]:
    """Search the supernet (resumable); the summary, total search seconds and output folder."""
    cfg = load_config(SearchConfig, REPO / "configs" / "search_cpu.yaml",
                      [f"ground_truth.table={table}", f"candidates.seed={candidate_seed}",
                       f"name=seed{candidate_seed}", "progress=false"])
    summary = Search(run_dir, cfg).run()
    out = search_dir(run_dir, cfg)
    return summary, sum(r["seconds"] for r in read_jsonl(out / "results.jsonl")), out


def fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def sampler_table(sampler: str, summary: dict[str, Any], timing: dict[str, float]) -> str:
    """One sampler's rows: ours at every B next to the paper's B = 100 Spearman."""
    budgets = summary["budgets"]
    head = ["estimator"] + [f"Spearman B={b}" for b in budgets] + [f"Kendall B={b}" for b in budgets]
    head += [f"top-10 acc B={budgets[-1]}", "paper Spearman (B=100)", "paper top-10"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    paper = PAPER[sampler]
    for name in ROWS:
        metrics = summary["metrics"][name]
        row = [name] + [fmt(metrics[str(b)]["spearman"]) for b in budgets]
        row += [fmt(metrics[str(b)]["kendall"]) for b in budgets]
        row += [fmt(metrics[str(budgets[-1])]["top10"]), fmt(paper.get(name)),
                fmt(paper["top10"].get(name))]
        lines.append("| " + " | ".join(row) + " |")
    best = summary["best_possible"]["top10"]
    lines += ["", f"best possible top-10 among these candidates: {fmt(best)}; supernet training "
                  f"{timing['train'] / 60:.1f} min, search {timing['search'] / 60:.1f} min "
                  f"({summary['seconds_per_candidate']:.1f} s per candidate at B={budgets[-1]})."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "results" / "cpu-nb201")
    parser.add_argument("--work-dir", type=Path, default=REPO / "runs" / "reproduce")
    parser.add_argument("--samplers", nargs="+", default=list(PAPER), choices=list(PAPER))
    parser.add_argument("--candidate-seed", type=int, default=123)
    parser.add_argument("--table", type=Path, default=NB201_TABLE)
    parser.add_argument("--data-root", type=Path, help="data folder (default: the configs')")
    args = parser.parse_args()
    for sampler in args.samplers:
        run_dir = args.work_dir / f"nb201_cpu_{sampler}"
        timing = {"train": train_stage(sampler, run_dir, args.data_root)}
        summary, timing["search"], search_out = search_stage(run_dir, args.candidate_seed,
                                                             args.table)
        out = args.out / sampler
        out.mkdir(parents=True, exist_ok=True)
        for name in ("summary.json", "summary.md", "scores_vs_truth.png",
                     "correlation_vs_budget.png"):
            shutil.copyfile(search_out / name, out / name)
        shutil.copyfile(run_dir / "history.json", out / "train_history.json")
        atomic_write_json(out / "timing.json", timing)
        print(sampler_table(sampler, summary, timing), flush=True)
    write_table(args.out, args.candidate_seed)


def write_table(out: Path, candidate_seed: int) -> None:
    """``OUT/table.md`` from every sampler finished so far in ``OUT`` (so runs of one sampler
    at a time add up)."""
    sections = []
    for sampler in PAPER:
        if (out / sampler / "summary.json").exists():
            summary = json.loads((out / sampler / "summary.json").read_text())
            timing = json.loads((out / sampler / "timing.json").read_text())
            sections.append(f"## {sampler}\n\n" + sampler_table(sampler, summary, timing))
    command = (f"python benchmarks/reproduce.py --out {out} --samplers SAMPLER "
               f"--candidate-seed {candidate_seed}")
    atomic_write_text(out / "table.md", "\n\n".join(
        ["# One-shot NB201 ranking at CPU scale vs Ru et al. 2021 (Table 2)",
         f"Produced by `{command}` for each sampler below. Spearman/Kendall against "
         "NAS-Bench-201 `cifar10_test` over 200 uniform candidates (seed "
         f"{candidate_seed}); the paper's figures are B = 100 with a C=16, N=5 supernet "
         "trained 100 epochs on a GPU."] + sections) + "\n")

if __name__ == "__main__":
    main()
