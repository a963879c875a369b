"""The HW-NAS-Bench and robustness tables shipped with the package: every value against the
shared benchmark files, their provenance, byte-reproducible builds, the ``nb201_hw`` and
``nb201_robustness`` sources, and two published correlations."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any, get_args

import numpy as np
import pytest
from scipy.stats import spearmanr

import search_spaces
from speedynas_core.config import load_config
from speedynas_core.errors import SpeedyNASError
from speedynas_core.plugins import options_schema
from search_spaces import GROUND_TRUTHS, create_ground_truth, list_ground_truths
from search_spaces.nb201_extra_tables import (
    HW_COLUMNS,
    HW_TABLE_PATH,
    ROBUSTNESS_COLUMNS,
    ROBUSTNESS_TABLE_PATH,
)
from search_spaces.nb201_table import load_table, read_table
from speedynas_search.search_config import SearchConfig

from .conftest import build_table_script

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "benchmarks"
NB201 = search_spaces.create("nb201")
#: table name -> (shared source file, shipped path, columns)
TABLES = {
    "nb201_hw": ("nb201_hw.json", HW_TABLE_PATH, HW_COLUMNS),
    "nb201_robustness": ("nb201_robustness.json", ROBUSTNESS_TABLE_PATH, ROBUSTNESS_COLUMNS),
}
ROW0 = ("|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|"
        "+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|")   # NB201 index 0


@pytest.fixture(scope="module", params=list(TABLES))
def shared(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """(table name, the shared source file's JSON)."""
    return request.param, json.loads((SHARED / TABLES[request.param][0]).read_text())


def _expected(name: str, entry: dict[str, Any], column: str) -> float:
    """``column`` of a shared-file entry (HW-NAS-Bench nests metrics under the dataset)."""
    if name == "nb201_robustness":
        return entry[column]
    dataset = next(d for d in entry if isinstance(entry[d], dict) and column.endswith(f"_{d}"))
    return entry[dataset][column[:-len(dataset) - 1]]


# --------------------------------------------------------------------------- the shipped files

def test_files_are_small_and_declared_as_package_data() -> None:
    setup = (REPO / "setup.cfg").read_text()
    for _, path, _ in TABLES.values():
        assert path.stat().st_size < 1_000_000
        assert path.name in setup


def test_every_value_equals_the_shared_file(shared: tuple[str, dict[str, Any]]) -> None:
    name, data = shared
    table = load_table(TABLES[name][1])
    assert tuple(table.columns) == TABLES[name][2]
    rows = {NB201.index_of(NB201.parse(text)): entry for text, entry in data["archs"].items()}
    assert sorted(rows) == list(range(15625))
    for column in TABLES[name][2]:
        expected = np.array([_expected(name, rows[i], column) for i in range(15625)], dtype=float)
        assert np.array_equal(table.column(column), expected), column   # exact, not approx


def test_provenance_matches_the_shared_file(shared: tuple[str, dict[str, Any]]) -> None:
    name, data = shared
    source, path, columns = TABLES[name]
    meta = load_table(path).meta
    assert meta["source_sha256"] == hashlib.sha256((SHARED / source).read_bytes()).hexdigest()
    assert meta["source"] == data["source"] and meta["source_missing"] == data["missing"]
    assert meta["source_file"] == f"shared/benchmarks/{source}"
    assert meta["build_command"] == (f"python scripts/build_nb201_table.py --table {name} "
                                     f"--source ../shared/benchmarks/{source}")
    assert all(meta["columns"][c]["description"] and meta["columns"][c]["missing"] == 0
               for c in columns)


@pytest.mark.parametrize("name", list(TABLES))
def test_build_is_byte_reproducible_and_gives_the_shipped_file(name: str,
                                                                 tmp_path: Path) -> None:
    source, path, _ = TABLES[name]
    first, second = tmp_path / "first.npz", tmp_path / "second.npz"
    for out in (first, second):
        build_table_script().main(["--table", name, "--source", str(SHARED / source),
                              "--out", str(out)])
    assert first.read_bytes() == second.read_bytes() == path.read_bytes()
    assert read_table(first).meta == load_table(path).meta


# --------------------------------------------------------------------------- the sources

def test_sources_are_registered_and_look_up() -> None:
    assert {"nb201_hw", "nb201_robustness"} <= set(list_ground_truths())
    hw = create_ground_truth("nb201_hw", space=NB201)
    assert hw.column == "edgegpu_latency_cifar10" and len(hw) == 15625
    assert hw.lookup(ROW0) == 5.807419
    other = create_ground_truth("nb201_hw", space="nb201", column="fpga_energy_imagenet16_120")
    assert other.lookup(NB201.parse(ROW0)) == 4.54384
    robust = create_ground_truth("nb201_robustness", space=NB201, column="val_accs")
    archs = NB201.sample_many(20, np.random.default_rng(0))
    assert robust.lookup_many(archs) == [robust.lookup(a) for a in archs]
    assert len(robust.space_values()) == 15625
    text = create_ground_truth("nb201_robustness", space=NB201).describe()
    assert text.startswith("nb201_robustness:") and "pgd@Linf_eps-1.0" in text
    assert "nb201_robustness.json" in text and "Jung" in text
    assert "HW-NAS-Bench" in hw.describe() and "edgegpu_latency_cifar10" in hw.describe()


@pytest.mark.parametrize("name", list(TABLES))
def test_config_lists_every_shipped_column(name: str) -> None:
    field = next(f for f in dataclasses.fields(options_schema(GROUND_TRUTHS, name))
                 if f.name == "column")
    assert get_args(field.type) == TABLES[name][2]


@pytest.mark.parametrize("name", list(TABLES))
def test_a_bad_column_is_refused_in_one_line_naming_the_valid_ones(name: str) -> None:
    with pytest.raises(SpeedyNASError) as err:
        create_ground_truth(name, space=NB201, column="latency")
    message = str(err.value)
    assert "\n" not in message and f"the {name} table has no column 'latency'" in message
    assert message.endswith("available: " + ", ".join(TABLES[name][2]))
    with pytest.raises(SpeedyNASError) as err:
        load_config(SearchConfig, None, [f"ground_truth.source={name}",
                                         "ground_truth.column=latency"], context={"space": "nb201"})
    message = str(err.value)
    assert "\n" not in message and "ground_truth.column: invalid choice 'latency'" in message
    assert all(repr(column) in message for column in TABLES[name][2])


def test_a_non_nb201_space_is_refused() -> None:
    with pytest.raises(SpeedyNASError, match="'nb201_hw' is the HW-NAS-Bench table; the search "
                                             "space is 'darts'"):
        create_ground_truth("nb201_hw", space="darts")


# --------------------------------------------------------------------------- published facts

def test_params_and_edge_gpu_latency_correlate_as_published() -> None:
    """HW-NAS-Bench: parameter count is a weak proxy of edge-GPU latency (Spearman ~0.49)."""
    params = load_table().column("params_cifar10")
    latency = load_table(HW_TABLE_PATH).column("edgegpu_latency_cifar10")
    assert spearmanr(params, latency)[0] == pytest.approx(0.49, abs=0.05)


def test_pgd_accuracy_barely_follows_clean_accuracy_as_published() -> None:
    """Robustness dataset: PGD accuracy at eps 1/255 hardly ranks as clean accuracy (~0.07)."""
    clean = load_table().column("cifar10_test")
    pgd = load_table(ROBUSTNESS_TABLE_PATH).column("pgd@Linf_eps-1.0")
    assert spearmanr(pgd, clean)[0] == pytest.approx(0.07, abs=0.05)
