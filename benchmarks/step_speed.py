"""Supernet and fine-tune step speed of this tree against a baseline commit, side by side.

    python benchmarks/step_speed.py [--baseline REV] [--rounds 5] [--steps 20]

Checks ``REV`` (default: the commit before the speed work) out into a temporary git worktree
and runs :mod:`benchmarks.step_worker` alternately with each tree first on ``PYTHONPATH``,
``--rounds`` times per setting (one thread per process, as each torchrun process trains), so
both trees see the same machine load. Prints, per setting, the median images per second of a
supernet training step and of a fine-tune step for both trees, their ratio, and the largest
relative difference between the two trees' first five training losses from the same seed
(float noise only when a change keeps results).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: The last commit before the speed changes of issue 17.
BASELINE = "b2588e4"
#: (space, resolution, batch): the CPU-scale table's supernets, and DARTS at 32 px.
SETTINGS = [("nb201", 32, 64), ("nb201", 32, 128), ("darts", 16, 64), ("darts", 32, 64)]


def run_worker(tree: Path, setting: tuple[str, int, int], steps: int) -> dict:
    """One worker run with ``tree``'s packages; its JSON line."""
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "step_worker.py"),
                          *map(str, setting), str(steps)], env=env, cwd=tree,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=BASELINE)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
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
                speed = {(tree, key): batch / statistics.median(r[key] for r in runs[tree])
                         for tree in runs for key in ("train_seconds", "finetune_seconds")}
                diff = max(abs(a - b) / abs(a) for a, b in zip(runs["base"][0]["losses"],
                                                               runs["now"][0]["losses"]))
                cells = []
                for key in ("train_seconds", "finetune_seconds"):
                    cells += [f"{speed['base', key]:.0f}", f"{speed['now', key]:.0f}",
                              f"{speed['now', key] / speed['base', key]:.2f}x"]
                name = f"{setting[0]} {setting[1]} px, batch {batch}"
                print(f"| {name} | " + " | ".join(cells) + f" | {diff:.1e} |", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=REPO,
                           check=False)


if __name__ == "__main__":
    main()
