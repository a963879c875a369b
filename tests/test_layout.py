"""The floor plan: every package imports only from floors below it, and the estimators leaf
loads no training loop, TensorBoard, data or report code."""
from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from .conftest import REPO

#: Package -> floor. A package may import packages on lower floors only.
FLOORS = {"speedynas_core": 0, "search_spaces": 1, "speedynas_data": 1, "speedynas_predictors": 1,
          "supernet": 2, "estimators": 2,
          "speedynas_search": 3, "speedynas": 4}


def imported_packages(path) -> set[str]:
    """The project packages a module imports (absolute imports; relative ones stay inside)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                 [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
        found |= {name.split(".")[0] for name in names if name.split(".")[0] in FLOORS}
    return found


@pytest.mark.parametrize("package", sorted(FLOORS))
def test_no_import_runs_back_up_a_floor(package):
    for path in sorted((REPO / package).rglob("*.py")):
        for other in imported_packages(path) - {package}:
            assert FLOORS[other] < FLOORS[package], (
                f"{path.relative_to(REPO)} imports {other} (floor {FLOORS[other]}) from floor "
                f"{FLOORS[package]}")


def test_every_package_is_on_a_floor():
    packages = {p.parent.name for p in REPO.glob("*/__init__.py")} - {"tests"}
    assert packages == set(FLOORS)


@pytest.mark.e2e  # a fresh interpreter (subprocess)
def test_importing_the_estimators_leaf_loads_no_training_reports_or_data():
    code = ("import sys, estimators; print(' '.join(sorted({m.split('.')[0] for m in sys.modules}"
            " | {m for m in sys.modules if m.startswith('torch.utils.tensorboard')})))")
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                cwd=REPO, check=True).stdout.split())
    assert "estimators" in loaded
    assert not loaded & {"supernet", "speedynas_data", "speedynas_search", "matplotlib", "tensorboard",
                         "torch.utils.tensorboard", "torchvision"}


def test_the_floor_walk_reaches_every_subfolder():
    nested = {path.parent.relative_to(REPO).as_posix()
              for package in FLOORS for path in (REPO / package).rglob("*.py")}
    assert "speedynas_search/strategies" in nested
