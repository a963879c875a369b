"""experiments/reproduce.py on a toy experiment: table, timing, copied summaries, the recorded
stage commands and resume."""
from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest

from speedynas_core.atomic_io import read_jsonl

from .conftest import CIFAR10_DIR, NB201_TABLE, REPO

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def reproduce() -> dict:
    """The script's namespace with a toy experiment (configs/toy.yaml, search_toy.yaml) added
    to its experiment registry."""
    namespace = runpy.run_path(str(REPO / "experiments" / "reproduce.py"))
    assert namespace["TABLES"] / "nb201.json" == NB201_TABLE
    namespace["EXPERIMENTS"]["toy"] = namespace["Experiment"](
        "toy", "search_toy", "nb201.json", "cifar10_test", {"tse": 0.70}, {"tse": 92.67})
    yield namespace
    del namespace["EXPERIMENTS"]["toy"]


def run_main(reproduce: dict, out: Path, work: Path, seed: int = 5,
             search_set: tuple[str, ...] = ()) -> None:
    assert reproduce["main"]([
        "--out", str(out), "--work-dir", str(work), "--experiments", "toy",
        "--data-root", str(CIFAR10_DIR), "--candidate-seed", str(seed)]
        + (["--search-set", *search_set] if search_set else [])) == 0


def test_one_command_writes_the_table_and_resumes_without_redoing_work(
        reproduce, tmp_path):
    out, work = tmp_path / "results", tmp_path / "work"
    run_main(reproduce, out, work)
    summary = json.loads((out / "toy" / "summary.json").read_text())
    timing = json.loads((out / "toy" / "timing.json").read_text())
    records = read_jsonl(work / "toy" / "search" / "seed5" / "results.jsonl")
    assert [r["index"] for r in records] == list(range(12))
    assert summary["settings"]["candidates"].endswith("seed 5")
    assert timing["search"] == pytest.approx(sum(r["seconds"] for r in records))
    assert timing["search"] == pytest.approx(summary["search_wall_seconds"])
    history = json.loads((out / "toy" / "train_history.json").read_text())
    assert timing["train"] == pytest.approx(sum(entry["seconds"] for entry in history))
    for name in ("summary.md", "scores.csv", "scores_vs_truth.png", "correlation_vs_budget.png"):
        assert (out / "toy" / name).stat().st_size > 0
    recorded = read_jsonl(out / "commands.jsonl")  # each stage's exact command
    assert [r["stage"] for r in recorded] == ["toy/train", "toy/seed5"]
    assert recorded[1]["command"][1:4] == ["search.py", "--run-dir", str(work / "toy")]
    assert "candidates.seed=5" in recorded[1]["command"]

    table = (out / "table.md").read_text()
    assert "## toy: nb201 supernet" in table and "--candidate-seed 5" in table
    tse_row = next(line for line in table.splitlines() if line.startswith("| tse |"))
    cells = [cell.strip() for cell in tse_row.strip("|").split("|")]
    ours = summary["metrics"]["tse"]
    assert cells[1:3] == [f"{ours[b]['spearman']:.2f} [{ours[b]['spearman_ci'][0]:.2f}, "
                          f"{ours[b]['spearman_ci'][1]:.2f}]" for b in ("2", "4")]
    assert cells[-5:] == [f"{ours['4']['kendall_top']:.2f}", f"{ours['4']['precision_top']:.2f}",
                          f"{ours['4']['top10']:.2f}", "0.70", "92.67"]

    # Re-running finds everything done: no new training epoch, no candidate fine-tuned again.
    stored = (work / "toy" / "search" / "seed5" / "results.jsonl").read_bytes()
    run_main(reproduce, out, work)
    assert (work / "toy" / "search" / "seed5" / "results.jsonl").read_bytes() == stored
    assert json.loads((out / "toy" / "timing.json").read_text()) == timing
    assert (out / "table.md").read_text() == table
    assert read_jsonl(out / "commands.jsonl") == recorded  # no stage ran again

    # Another candidate draw on the same supernet, its search config overridden: no new
    # training, its own search folder, and the overrides in the table's command.
    trained = (work / "toy" / "history.json").read_bytes()
    run_main(reproduce, tmp_path / "draw6", work, seed=6,
             search_set=("finetune.budgets=[3]", "estimators.names=[tse,params]"))
    assert (work / "toy" / "history.json").read_bytes() == trained
    other = json.loads((tmp_path / "draw6" / "toy" / "summary.json").read_text())
    assert other["budgets"] == [3] and other["estimators"] == ["tse", "params"]
    assert other["settings"]["candidates"].endswith("seed 6")
    assert "--candidate-seed 6 --search-set 'finetune.budgets=[3]' " \
        "'estimators.names=[tse,params]'" in (tmp_path / "draw6" / "table.md").read_text()


def test_darts_tuning_genotypes_leave_the_reported_draw_out(reproduce, tmp_path):
    darts = reproduce["EXPERIMENTS"]["darts"]
    table = json.loads((reproduce["TABLES"] / darts.table).read_text())["archs"]
    reported = reproduce["draw_genotypes"](darts, 123)
    tuning = reproduce["tuning_genotypes"](darts, 123, 7, 100)
    assert len(set(reported)) == 500 and len(set(tuning)) == 100
    assert not set(tuning) & set(reported) and set(tuning) <= set(table)
    assert reproduce["tuning_genotypes"](darts, 123, 7, 100) == tuning  # seeded
    assert set(reproduce["tuning_genotypes"](darts, 124, 7, 100)) != set(tuning)
    path = tmp_path / "tune.txt"
    assert reproduce["main"](["--tuning-genotypes", str(path)]) == 0
    assert path.read_text().splitlines() == tuning and not (tmp_path / "results").exists()
