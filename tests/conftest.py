"""Shared fixtures: paths to the developers' shared benchmark files and data."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
NB201_TABLE = SHARED / "benchmarks" / "nb201.json"
NB301_TABLE = SHARED / "benchmarks" / "darts_nb301_surrogate_naslib.json"
CIFAR10_DIR = REPO / "data" / "cifar10"


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
