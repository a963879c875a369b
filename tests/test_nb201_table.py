"""The NAS-Bench-201 table shipped with the package: every value against the shared benchmark
file, its provenance and size, the build script's reproducibility, and the ``nb201`` source."""
from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

import search_spaces
from speedynas_core.errors import SpeedyNASError
from search_spaces import create_ground_truth, list_ground_truths
from search_spaces.nb201_table import COLUMNS, TABLE_PATH, load_table, read_table

from .conftest import build_table_script

REPO = Path(__file__).resolve().parents[1]
SHARED_TABLE = REPO.parent / "shared" / "benchmarks" / "nb201.json"
NB201 = search_spaces.create("nb201")
BEST = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|"
        "+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")
needs_shared = pytest.mark.skipif(not SHARED_TABLE.exists(),
                                  reason=f"{SHARED_TABLE} is absent (it lives beside the checkout)")


@pytest.fixture(scope="module")
def shared_archs() -> dict[str, dict]:
    if not SHARED_TABLE.exists():
        pytest.skip(f"{SHARED_TABLE} is absent")
    return json.loads(SHARED_TABLE.read_text())["archs"]


# --------------------------------------------------------------------------- the shipped file

def test_file_is_small_and_declared_as_package_data() -> None:
    assert TABLE_PATH.stat().st_size < 1_000_000
    setup = (REPO / "setup.cfg").read_text()
    assert "[options.package_data]" in setup and "nb201_cifar.npz" in setup


def test_layout_and_provenance() -> None:
    table = load_table()
    assert tuple(table.columns) == COLUMNS
    assert all(v.shape == (15625,) and v.dtype == np.float64 for v in table.columns.values())
    meta = table.meta
    assert "NATS-Bench" in meta["source"] and "v-tao/nats-bench-landscape" in meta["source"]
    assert len(meta["source_sha256"]) == 64
    assert meta["build_command"].startswith("python scripts/build_nb201_table.py")
    assert all(meta["columns"][c]["description"] for c in COLUMNS)
    with pytest.raises(ValueError):
        table.columns["cifar10_test"][0] = 0.0   # read-only


@needs_shared
def test_provenance_matches_the_shared_file() -> None:
    data = json.loads(SHARED_TABLE.read_text())
    meta = load_table().meta
    assert meta["source"] == data["source"] and meta["source_missing"] == data["missing"]
    assert meta["source_sha256"] == hashlib.sha256(SHARED_TABLE.read_bytes()).hexdigest()


def test_every_row_equals_the_shared_file(shared_archs: dict[str, dict]) -> None:
    table = load_table()
    assert len(shared_archs) == 15625
    rows = {NB201.index_of(NB201.parse(text)): entry for text, entry in shared_archs.items()}
    assert sorted(rows) == list(range(15625))
    for column in COLUMNS:
        expected = np.array([rows[i][column] for i in range(15625)], dtype=np.float64)
        assert np.array_equal(table.column(column), expected), column   # exact, not approx


def test_row_order_is_the_space_enumeration(shared_archs: dict[str, dict]) -> None:
    values = load_table().column("cifar10_test")
    for row, arch in enumerate(NB201.enumerate()):
        if row % 997 == 0:
            assert values[row] == shared_archs[str(arch)]["cifar10_test"]


def test_degenerate_cells_are_the_341_at_ten_percent() -> None:
    values = load_table().column("cifar10_test")
    degenerate = np.array([NB201.is_degenerate(a) for a in NB201.enumerate()])
    assert degenerate.sum() == 341
    assert np.array_equal(degenerate, values == 10.0)


@needs_shared
def test_build_script_reproduces_the_shipped_file(tmp_path: Path) -> None:
    out = tmp_path / "nb201.npz"
    build_table_script().main(["--source", str(SHARED_TABLE), "--out", str(out)])
    assert out.read_bytes() == TABLE_PATH.read_bytes()
    rebuilt, shipped = read_table(out), load_table()
    assert rebuilt.meta == shipped.meta
    assert all(np.array_equal(rebuilt.columns[c], shipped.columns[c]) for c in COLUMNS)


def test_unknown_format_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    with zipfile.ZipFile(TABLE_PATH) as src, zipfile.ZipFile(bad, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            dst.writestr(name, data.replace("speedynas-nb201-table/1".encode("utf-32-le"),
                                            "speedynas-nb201-table/9".encode("utf-32-le")))
    with pytest.raises(SpeedyNASError, match="format 'speedynas-nb201-table/9'"):
        read_table(bad)
    with pytest.raises(SpeedyNASError, match="missing"):
        read_table(tmp_path / "absent.npz")


# --------------------------------------------------------------------------- the nb201 source

def test_source_is_registered_and_looks_up() -> None:
    assert "nb201" in list_ground_truths()
    truth = create_ground_truth("nb201", space=NB201)
    assert truth.column == "cifar10_test" and len(truth) == 15625
    assert truth.lookup(BEST) == 93.66 and truth.lookup(NB201.parse(BEST)) == 93.66
    archs = NB201.sample_many(20, np.random.default_rng(0))
    assert truth.lookup_many(archs) == [truth.lookup(a) for a in archs]
    assert truth.lookup_many([]) == []
    assert max(truth.space_values()) == 94.3733
    text = truth.describe()
    assert "cifar10_test" in text and "sha256" in text and "NATS-Bench" in text


def test_source_other_column_and_space_by_name() -> None:
    truth = create_ground_truth("nb201", space="nb201", column="params_cifar10")
    assert truth.lookup(BEST) == 802426.0


def test_source_errors() -> None:
    with pytest.raises(SpeedyNASError, match="no column 'cifar10_val'.*cifar10_valid_val"):
        create_ground_truth("nb201", space=NB201, column="cifar10_val")
    with pytest.raises(SpeedyNASError, match="space is 'darts'"):
        create_ground_truth("nb201", space="darts")
    with pytest.raises(SpeedyNASError, match="needs option 'space'"):
        create_ground_truth("nb201")
    truth = create_ground_truth("nb201", space=NB201)
    with pytest.raises(SpeedyNASError, match="darts space"):
        truth.lookup(search_spaces.create("darts").sample(np.random.default_rng(0)))
    with pytest.raises(SpeedyNASError):
        truth.lookup("|conv~0|")
