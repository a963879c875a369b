"""experiments/gpu_reference.py on the toy configs (on this CPU): the planned epochs, measured
timings, the report and a resume that does not train again."""
from __future__ import annotations

import csv
import json

import pytest

from .conftest import CIFAR10_DIR, run_script

pytestmark = pytest.mark.e2e


def test_prepared_gpu_command_runs_on_a_toy_config_and_resumes(tmp_path):
    out, work = tmp_path / "out", tmp_path / "work"
    args = ["--minutes", "1", "--precision", "bf16", "--out", str(out), "--work-dir", str(work),
            "--train-config", "configs/toy.yaml", "--search-config", "configs/search_toy.yaml",
            "--train", f"data.root={CIFAR10_DIR}",
            "--search", "retrain.enabled=false", "ground_truth.source=nb201"]
    run_script("experiments/gpu_reference.py", *args)
    timing = json.loads((out / "timing.json").read_text())
    assert timing["precision"] == "bf16" and timing["epochs"] == timing["plan"]["epochs"] >= 1
    assert timing["calibration"]["train_step_seconds"] > 0
    assert timing["seconds_per_epoch"] > 0 and timing["seconds_per_candidate"] > 0
    assert timing["candidates"] == 12
    saved = (work / "randnas" / "config.yaml").read_text()
    assert "precision: bf16" in saved and f"epochs: {timing['epochs']}" in saved
    report = (out / "report.md").read_text()
    assert f"{timing['epochs']} epochs" in report and "| tse " in report
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["supernet_epochs"] == timing["epochs"]
    assert summary["metrics"]["params"]["4"]["spearman"] is not None
    assert len(list(csv.DictReader((out / "scores.csv").open()))) == 12
    checkpoint = work / "randnas" / "checkpoints" / "last.pt"
    trained = checkpoint.stat().st_mtime_ns
    run_script("experiments/gpu_reference.py", *args)  # resumes: nothing trained again
    assert checkpoint.stat().st_mtime_ns == trained
    assert json.loads((out / "timing.json").read_text())["epochs"] == timing["epochs"]
