"""Ground-truth sources: the ``table`` source on the real benchmark files and on small files in
every supported format, its error messages, and the registry."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

import search_spaces
from speedynas_core.errors import SpeedyNASError
from search_spaces import (
    GROUND_TRUTHS,
    GroundTruth,
    create_ground_truth,
    list_ground_truths,
    lookup_key,
    register_ground_truth,
)
from search_spaces.darts import DartsArch

SHARED = Path(__file__).resolve().parents[2] / "shared" / "benchmarks"
NB201 = search_spaces.create("nb201")
DARTS = search_spaces.create("darts")
A1 = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
      "+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|")
A2 = ("|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|"
      "+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|")
A3 = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


@pytest.fixture(scope="module")
def nb201_source(nb201_table: dict) -> GroundTruth:
    return create_ground_truth("table", path=SHARED / "nb201.json", column="cifar10_test",
                               space=NB201)


@pytest.fixture(scope="module")
def nb301_source(nb301_table: dict) -> GroundTruth:
    return create_ground_truth("table", path=SHARED / "darts_nb301_surrogate_naslib.json",
                               column="val_accuracy_nb301_surrogate", space="darts")


def _swap_pairs(arch: DartsArch) -> DartsArch:
    """The same network with the two pairs of every node written in the other order."""
    def swap(cell):
        return tuple(p for k in range(4) for p in (cell[2 * k + 1], cell[2 * k]))
    return DartsArch(swap(arch.normal), swap(arch.reduce))


def _write(tmp_path: Path, name: str, content: str | dict) -> Path:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


# --------------------------------------------------------------------------- real tables

def test_nb201_table_values(nb201_source: GroundTruth, nb201_table: dict) -> None:
    assert len(nb201_source) == 15625
    rng = np.random.default_rng(7)
    for arch in NB201.sample_many(50, rng):
        expected = nb201_table[str(arch)]["cifar10_test"]
        assert nb201_source.lookup(arch) == expected
        assert nb201_source.lookup(str(arch)) == expected
    archs = NB201.sample_many(5, rng)
    assert nb201_source.lookup_many(archs) == [nb201_table[str(a)]["cifar10_test"] for a in archs]
    assert "cifar10_test" in nb201_source.describe() and "nb201.json" in nb201_source.describe()


def test_nb201_other_column(nb201_table: dict) -> None:
    source = create_ground_truth("table", path=SHARED / "nb201.json", space="nb201",
                                 column="cifar100_test")
    assert source.lookup(A1) == nb201_table[A1]["cifar100_test"]


def test_nb301_table_finds_permuted_pair_order(nb301_source: GroundTruth,
                                               nb301_table: dict) -> None:
    keys = list(nb301_table)
    rng = np.random.default_rng(3)
    for i in rng.choice(len(keys), size=20, replace=False):
        key = keys[i]
        swapped = _swap_pairs(DARTS.parse(key))
        assert str(swapped) != key
        expected = nb301_table[key]["val_accuracy_nb301_surrogate"]
        assert nb301_source.lookup(swapped) == expected
        assert nb301_source.lookup(str(swapped)) == expected
        assert nb301_source.lookup(key) == expected


def test_nb301_unknown_arch_is_none(nb301_source: GroundTruth, nb301_table: dict) -> None:
    known = {str(DARTS.parse(key).canonical()) for key in nb301_table}
    absent = [a for a in DARTS.sample_many(20, np.random.default_rng(0))
              if str(a.canonical()) not in known]
    assert absent and all(nb301_source.lookup(a) is None for a in absent)


# --------------------------------------------------------------------------- formats

def test_flat_json_numbers(tmp_path: Path) -> None:
    path = _write(tmp_path, "flat.json", {A1: 93.5, A2: 85.0, A3: None})
    source = create_ground_truth("table", path=path, space=NB201, column="ignored-for-flat")
    assert source.lookup(A1) == 93.5 and source.lookup(NB201.parse(A2)) == 85.0
    assert source.lookup(A3) is None   # null = not known
    other = NB201.sample(np.random.default_rng(1))
    assert str(other) not in (A1, A2, A3) and source.lookup(other) is None
    assert source.column is None and len(source) == 3


def test_flat_json_columns_and_single_column_default(tmp_path: Path) -> None:
    path = _write(tmp_path, "cols.json", {A1: {"acc": 90.0, "note": "x"}, A2: {"acc": 80.0}})
    source = create_ground_truth("table", path=path, space=NB201, column=None)
    assert source.column == "acc" and source.lookup(A2) == 80.0


def test_benchmark_json_with_partial_column(tmp_path: Path) -> None:
    path = _write(tmp_path, "bench.json", {"source": "x", "archs": {
        A1: {"acc": 90.0, "other": 1.0}, A2: {"other": 2.0}, A3: {"acc": float("nan")}}})
    source = create_ground_truth("table", path=path, space=NB201, column="acc")
    assert source.lookup(A1) == 90.0 and source.lookup(A2) is None and source.lookup(A3) is None


def test_csv(tmp_path: Path) -> None:
    path = _write(tmp_path, "truth.csv",
                  f"arch,test_acc,val_acc\n{A1},93.1,91.0\n\n\"{A2}\",85.5,\n{A3},,10\n")
    source = create_ground_truth("table", path=path, space=NB201, column="test_acc")
    assert source.lookup(A1) == 93.1 and source.lookup(A2) == 85.5 and source.lookup(A3) is None
    assert create_ground_truth("table", path=path, space=NB201,
                               column="val_acc").lookup(A2) is None


def test_csv_darts_keys_in_any_pair_order(tmp_path: Path) -> None:
    arch = DARTS.named(DARTS.named_genotypes()[0])
    swapped = _swap_pairs(arch)
    path = tmp_path / "darts.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["arch", "acc"])
        writer.writerow([str(swapped), "97.0"])
    source = create_ground_truth("table", path=path, space=DARTS, column="acc")
    assert source.lookup(arch) == 97.0 and source.lookup(swapped) == 97.0


# --------------------------------------------------------------------------- bad files

@pytest.mark.parametrize("name, content, column, pattern", [
    ("bad.json", "{not json", "acc", r"not valid JSON"),
    ("list.json", "[1, 2]", "acc", r"expected a JSON object"),
    ("empty.json", "{}", "acc", r"expected a JSON object"),
    ("mixed.json", {A1: 90.0, A2: {"acc": 1.0}}, "acc", r"mix numbers and objects.*key"),
    ("nocol.json", {"archs": {A1: {"acc": 1.0, "loss": 0.1}}}, "accuracy",
     r"no numeric column 'accuracy'; available: acc, loss"),
    ("ambiguous.json", {A1: {"acc": 1.0, "loss": 0.1}}, None,
     r"choose a column; available: acc, loss"),
    ("textcol.json", {A1: {"acc": 1.0, "name": "x"}, A2: {"acc": "high"}}, "acc",
     r"column 'acc' of key .* is not a number"),
    ("badkey.json", {A1: 1.0, "|conv~0|+|x|": 2.0}, None,
     r"key '\|conv~0\|\+\|x\|' is not a nb201 arch"),
    ("noarch.csv", f"name,acc\n{A1},1.0\n", "acc", r"needs an 'arch' column; found: name, acc"),
    ("nocol.csv", f"arch,acc\n{A1},1.0\n", "test", r"no numeric column 'test'; available: acc"),
    ("text.csv", f"arch,acc\n{A1},1.0\n{A2},high\n", "acc",
     r":3: column 'acc' is not a number: 'high'"),
    ("ragged.csv", f"arch,acc\n{A1},1.0,7\n", "acc", r":2: 3 fields, the header has 2"),
    ("rows.csv", "arch,acc\n", "acc", r"no rows"),
    ("badkey.csv", "arch,acc\nnot-an-arch,1.0\n", "acc",
     r"key 'not-an-arch' is not a nb201 arch"),
])
def test_bad_files_name_the_file(tmp_path: Path, name: str, content, column, pattern) -> None:
    path = _write(tmp_path, name, content)
    with pytest.raises(SpeedyNASError, match=pattern) as info:
        create_ground_truth("table", path=path, space=NB201, column=column)
    message = str(info.value)
    assert str(path) in message and "\n" not in message


def test_missing_file_and_conflicting_duplicates(tmp_path: Path) -> None:
    with pytest.raises(SpeedyNASError, match="ground-truth table not found: .*nope.json"):
        create_ground_truth("table", path=tmp_path / "nope.json", space=NB201)
    arch = DARTS.named(DARTS.named_genotypes()[0])
    path = _write(tmp_path, "dup.json", {str(arch): 97.0, str(_swap_pairs(arch)): 96.0})
    with pytest.raises(SpeedyNASError, match="same arch with different values"):
        create_ground_truth("table", path=path, space=DARTS)
    agree = _write(tmp_path, "agree.json", {str(arch): 97.0, str(_swap_pairs(arch)): 97.0})
    assert create_ground_truth("table", path=agree, space=DARTS).lookup(arch) == 97.0


@pytest.mark.parametrize("name, content, pattern", [
    ("dup.csv", f"arch,acc\n{A1},93.1\n{A2},80.0\n{A1},91.0\n",
     r"'\|nor_conv_3x3~0\|.*' is listed twice with different values \(93.1 and 91.0\) "
     r"\(lines 2 and 4\)|lines 2 and 4.*listed twice with different values \(93.1 and 91.0\)"),
    ("dup.json", f'{{"{A1}": 93.1, "{A2}": 80.0, "{A1}": 91.0}}',
     r"'\|nor_conv_3x3~0\|.*' is listed twice with different values \(93.1 and 91.0\)"),
    ("dupcol.json", f'{{"archs": {{"{A1}": {{"acc": 93.1, "acc": 91.0}}}}}}',
     r"'acc' is listed twice with different values \(93.1 and 91.0\)"),
])
def test_an_arch_listed_twice_with_different_values_is_refused_naming_both(
        tmp_path: Path, name: str, content: str, pattern: str) -> None:
    path = _write(tmp_path, name, content)
    with pytest.raises(SpeedyNASError, match=pattern):
        create_ground_truth("table", path=path, space=NB201, column="acc")


def test_an_arch_listed_twice_with_the_same_value_is_kept(tmp_path: Path) -> None:
    csv_path = _write(tmp_path, "same.csv", f"arch,acc\n{A1},93.1\n{A1},93.1\n{A2},,\n"[:-2]
                      + "\n" + f"{A2},\n")
    assert create_ground_truth("table", path=csv_path, space=NB201, column="acc").lookup(A1) \
        == 93.1
    json_path = _write(tmp_path, "same.json", f'{{"{A1}": 93.1, "{A1}": 93.1}}')
    assert create_ground_truth("table", path=json_path, space=NB201).lookup(A1) == 93.1


@pytest.mark.parametrize("name, content", [
    ("bom.csv", f"arch,acc\n{A1},93.1\n"), ("bom.json", f'{{"{A1}": {{"acc": 93.1}}}}')])
def test_a_byte_order_mark_is_read_past(tmp_path: Path, name: str, content: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"\xef\xbb\xbf" + content.encode())
    assert create_ground_truth("table", path=path, space=NB201, column="acc").lookup(A1) == 93.1


def test_csv_rows_end_at_newlines_only(tmp_path: Path) -> None:
    path = _write(tmp_path, "seps.csv", f"arch,acc\r\n{A2},80.0\r\n{A1}\u2028{A3},93.1\n")
    with pytest.raises(SpeedyNASError, match=r"seps.csv: key .* is not a nb201 arch .*\\u2028"):
        create_ground_truth("table", path=path, space=NB201, column="acc")


def test_a_huge_or_deeply_nested_table_is_refused(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    deep = _write(tmp_path, "deep.json", "[" * 100_000 + "]" * 100_000)
    with pytest.raises(SpeedyNASError, match="not valid JSON \\(nested too deeply\\)"):
        create_ground_truth("table", path=deep, space=NB201)
    monkeypatch.setattr("search_spaces.ground_truth.TABLE_LIMIT", 1000)
    big = _write(tmp_path, "big.csv", "arch,acc\n" + f"{A1},93.1\n" * 100)
    with pytest.raises(SpeedyNASError, match="larger than 1,000 bytes, the largest "
                                             "ground-truth table read"):
        create_ground_truth("table", path=big, space=NB201, column="acc")


# --------------------------------------------------------------------------- keys and registry

def test_lookup_key() -> None:
    arch = NB201.parse(A1)
    assert lookup_key(NB201, arch) == A1 == lookup_key(NB201, A1)
    darts = DARTS.named(DARTS.named_genotypes()[0])
    assert lookup_key(DARTS, darts) == lookup_key(DARTS, _swap_pairs(darts)) == \
        str(darts.canonical())
    with pytest.raises(SpeedyNASError, match="darts space, not nb201"):
        lookup_key(NB201, darts)


def test_registry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert "table" in list_ground_truths()
    with pytest.raises(SpeedyNASError, match="unknown ground-truth source 'tabel'; registered: "):
        create_ground_truth("tabel")
    with pytest.raises(SpeedyNASError, match="'table' has no option 'colum'; options: path, "):
        create_ground_truth("table", path=tmp_path / "x.json", space=NB201, colum="acc")
    with pytest.raises(SpeedyNASError, match="'table' needs option 'space'"):
        create_ground_truth("table", path=tmp_path / "x.json")

    monkeypatch.setattr(GROUND_TRUTHS, "_factories", dict(GROUND_TRUTHS._factories))

    @register_ground_truth("constant")
    class Constant(GroundTruth):
        def __init__(self, value: float) -> None:
            self.value = value

        def lookup(self, arch):
            return self.value

        def describe(self) -> str:
            return f"constant {self.value}"

    source = create_ground_truth("constant", value=1.5)
    assert "constant" in list_ground_truths()
    assert source.lookup_many([A1, A2]) == [1.5, 1.5]
