"""Shared fixtures: paths to the developers' shared benchmark files and data; every test's
leftover processes killed (tests/processes.py)."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch
from torch import nn

from speedynas_core.config import load_config
from speedynas_search.search_config import SearchConfig, search_context
from supernet.run_dir import load_run_config, resolve_train_config
from supernet.trainer import SupernetTrainer

from .processes import killing_leftovers

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
NB201_TABLE = SHARED / "benchmarks" / "nb201.json"
NB301_TABLE = SHARED / "benchmarks" / "darts_nb301_surrogate_naslib.json"
CIFAR10_DIR = REPO / "data" / "cifar10"
# Fields of a search's results.jsonl record that measure time (they differ between runs).
TIMING = ("seconds", "processes", "train_seconds", "validation_seconds", "zero_cost_seconds")


@pytest.fixture(autouse=True)
def kill_leftover_processes() -> Iterator[None]:
    """Kill what the test started and left running (a failed e2e test's train.py, search.py or
    torchrun), so that it never runs beside the next test; warns, naming them."""
    with killing_leftovers() as killed:
        yield
    if killed:
        warnings.warn("killed processes the test left running: "
                      + "; ".join(f"{p.pid} {p.command[:200]}" for p in killed), stacklevel=1)


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"{path} is missing: these tests need the shared benchmark files beside the "
                    "checkout (../shared), as CI has them")
    return path


@pytest.fixture(scope="session")
def nb201_table() -> dict[str, dict]:
    """The NAS-Bench-201 ground-truth table: arch string -> fields."""
    return json.loads(_require(NB201_TABLE).read_text())["archs"]


@pytest.fixture(scope="session")
def nb301_table() -> dict[str, dict]:
    """The NB301-surrogate DARTS table: genotype text -> fields."""
    return json.loads(_require(NB301_TABLE).read_text())["archs"]


def assert_one_line_error(proc, *fragments: str) -> None:
    """A CLI run that failed on bad input: exit 2, one ``error:`` line naming ``fragments``."""
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def wait_until(ready: Callable[[], bool], proc: subprocess.Popen) -> None:
    """Poll ``ready`` until it holds, failing if ``proc`` ends first. The process's own progress
    is the signal, never the clock, so a slow or shared machine only makes the wait longer."""
    while not ready():
        assert proc.poll() is None, "the process ended before it reached the awaited point"
        time.sleep(0.02)


def run_script(script: str, *args: str, check: bool = True,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run one of the repo's scripts (train.py, search.py) as a user would (``env``: extra
    environment variables)."""
    proc = subprocess.run([sys.executable, str(REPO / script), *args], capture_output=True,
                          text=True, cwd=REPO, timeout=600, env={**os.environ, **(env or {})})
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="session")
def toy_supernet(tmp_path_factory) -> Path:
    """A toy NB201 supernet (configs/toy.yaml, 2 epochs) trained on real CIFAR-10 images."""
    run_dir = tmp_path_factory.mktemp("toy_supernet") / "run"
    run_script("train.py", "--config", str(REPO / "configs" / "toy.yaml"), "--run-dir",
               str(run_dir), f"data.root={CIFAR10_DIR}", "optim.epochs=2")
    return run_dir


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """configs/toy.yaml trained in-process for one epoch (8 steps), as train.py would."""
    run_dir = tmp_path_factory.mktemp("tiny_supernet") / "run"
    cfg = resolve_train_config(run_dir, str(REPO / "configs" / "toy.yaml"),
                               [f"data.root={CIFAR10_DIR}", "optim.epochs=1",
                                "log.probe_archs=0"], resume=False)
    SupernetTrainer(cfg, run_dir).run()
    return run_dir


def search_config(run_dir: Path, *overrides: str,
                  config: Path = REPO / "configs" / "search_toy.yaml") -> SearchConfig:
    """The search config ``config`` with ``overrides`` (retraining off) for ``run_dir``."""
    return load_config(SearchConfig, config, ["retrain.enabled=false", *overrides],
                       context=search_context(load_run_config(run_dir)))


def linear_layers(*weights: list[list[float]], between: nn.Module | None = None) -> nn.Sequential:
    """Bias-free linear layers with the given weights (``between`` after all but the last): tiny
    networks whose proxy values can be worked out by hand."""
    layers: list[nn.Module] = []
    for i, w in enumerate(weights):
        w = torch.tensor(w, dtype=torch.float32)
        layer = nn.Linear(w.shape[1], w.shape[0], bias=False)
        with torch.no_grad():
            layer.weight.copy_(w)
        layers.append(layer)
        if between is not None and i < len(weights) - 1:
            layers.append(between)
    return nn.Sequential(*layers)


def load_script(relative: str) -> ModuleType:
    """A script of the repository (``scripts/...``, ``experiments/...``: not part of the
    package) as a module."""
    path = REPO / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_table_script() -> ModuleType:
    """``scripts/build_nb201_table.py`` as a module."""
    return load_script("scripts/build_nb201_table.py")
