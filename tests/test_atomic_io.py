"""Atomic writes, JSON-lines logs and safe checkpoint loading (speedynas_core.atomic_io)."""
from __future__ import annotations

import csv
import json
import os
import random
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

from speedynas_core.atomic_io import (
    DIGEST_KEY,
    append_jsonl,
    atomic_torch_save,
    atomic_write_bytes,
    atomic_write_csv,
    atomic_write_json,
    atomic_write_text,
    atomic_writer,
    load_checkpoint,
    read_jsonl,
    save_checkpoint,
    sweep_temporaries,
)
from speedynas_core.errors import SpeedyNASError
from speedynas_core.runtime import capture_rng_state, restore_rng_state


def listing(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


class Unpicklable:
    def __reduce__(self):
        raise RuntimeError("cannot serialise this")


class Custom:
    """A class that safe loading must refuse."""


# --------------------------------------------------------------------------- atomic writes

def test_atomic_write_text_and_bytes(tmp_path):
    target = tmp_path / "a" / "b" / "file.txt"
    atomic_write_text(target, "héllo\n")
    assert target.read_text(encoding="utf-8") == "héllo\n"
    atomic_write_bytes(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert listing(target.parent) == ["file.txt"]


def test_atomic_write_respects_umask(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "f.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f.txt").stat().st_mode) == 0o644


def test_failed_write_leaves_old_file_and_no_temp(tmp_path):
    target = tmp_path / "config.yaml"
    atomic_write_text(target, "old: 1\n")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_writer(target) as handle:
            handle.write(b"new: half-written")
            raise RuntimeError("boom")
    assert target.read_text() == "old: 1\n"
    assert listing(tmp_path) == ["config.yaml"]


def test_failed_torch_save_keeps_old_checkpoint(tmp_path):
    target = tmp_path / "last.pt"
    atomic_torch_save({"step": 1, "w": torch.ones(2)}, target)
    with pytest.raises(RuntimeError, match="cannot serialise"):
        atomic_torch_save({"step": 2, "w": torch.zeros(1000), "bad": Unpicklable()}, target)
    assert torch.load(target, weights_only=True)["step"] == 1
    assert listing(tmp_path) == ["last.pt"]


def test_failed_torch_save_to_new_path_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        atomic_torch_save({"bad": Unpicklable()}, tmp_path / "new.pt")
    assert listing(tmp_path) == []


def test_atomic_write_json(tmp_path):
    target = tmp_path / "summary.json"
    atomic_write_json(target, {"spearman": 0.7, "name": "tse"})
    assert json.loads(target.read_text()) == {"spearman": 0.7, "name": "tse"}
    with pytest.raises(TypeError):
        atomic_write_json(target, {"bad": object()})
    assert json.loads(target.read_text())["name"] == "tse"
    assert listing(tmp_path) == ["summary.json"]


def test_atomic_write_csv_reads_back_with_the_csv_module(tmp_path):
    target = tmp_path / "runs.csv"
    rows = [{"arm": "guided", "hv": 0.93, "note": "a, quoted \"one\""},
            {"arm": "evolution", "seed": 2, "hv": None}]
    atomic_write_csv(target, rows)
    assert target.read_text().splitlines()[0] == "arm,hv,note,seed"
    assert list(csv.DictReader(target.open(newline=""))) == [
        {"arm": "guided", "hv": "0.93", "note": 'a, quoted "one"', "seed": ""},
        {"arm": "evolution", "hv": "", "note": "", "seed": "2"}]
    atomic_write_csv(target, rows, fields=("seed", "arm"))  # chosen columns, the rest left out
    assert target.read_text() == "seed,arm\n,guided\n2,evolution\n"
    assert listing(tmp_path) == ["runs.csv"]


# --------------------------------------------------------------------------- JSON lines

def test_jsonl_round_trip(tmp_path):
    path = tmp_path / "search" / "results.jsonl"
    records = [{"arch": "|a~0|", "tse": -1.5, "note": "line\nbreak ✓"}, {"arch": "b", "x": None}]
    for record in records:
        append_jsonl(path, record)
    assert read_jsonl(path) == records
    assert path.read_text(encoding="utf-8").count("\n") == 2


def test_truncated_last_line_is_dropped_then_repaired(tmp_path):
    path = tmp_path / "results.jsonl"
    append_jsonl(path, {"i": 0})
    append_jsonl(path, {"i": 1})
    with open(path, "ab") as handle:  # a writer killed in the middle of a line
        handle.write(b'{"i": 2, "ts')
    assert read_jsonl(path) == [{"i": 0}, {"i": 1}]
    append_jsonl(path, {"i": 3})
    assert read_jsonl(path) == [{"i": 0}, {"i": 1}, {"i": 3}]


def test_zero_filled_tail_is_dropped(tmp_path):
    path = tmp_path / "results.jsonl"
    append_jsonl(path, {"i": 0})
    with open(path, "ab") as handle:  # what a crash can leave behind on some file systems
        handle.write(b"\x00" * 64)
    assert read_jsonl(path) == [{"i": 0}]
    append_jsonl(path, {"i": 1})
    assert read_jsonl(path) == [{"i": 0}, {"i": 1}]


def test_complete_last_line_without_newline_is_kept(tmp_path):
    path = tmp_path / "hand.jsonl"
    path.write_text('{"i": 0}\n{"i": 1}')
    assert read_jsonl(path) == [{"i": 0}, {"i": 1}]
    append_jsonl(path, {"i": 2})
    assert read_jsonl(path) == [{"i": 0}, {"i": 1}, {"i": 2}]


def test_corrupt_middle_line_names_file_and_line(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text('{"i": 0}\n\n{"i": 1\n{"i": 2}\n')
    with pytest.raises(SpeedyNASError, match=rf"^{path}:3: corrupt JSON line") as info:
        read_jsonl(path)
    assert "\n" not in str(info.value)


def test_blank_lines_and_empty_file(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('\n{"i": 0}\n   \n')
    assert read_jsonl(path) == [{"i": 0}]
    path.write_text("")
    assert read_jsonl(path) == []


def test_missing_jsonl(tmp_path):
    with pytest.raises(SpeedyNASError, match="file not found"):
        read_jsonl(tmp_path / "none.jsonl")
    assert read_jsonl(tmp_path / "none.jsonl", missing_ok=True) == []


def test_unserialisable_record_does_not_touch_the_log(tmp_path):
    path = tmp_path / "r.jsonl"
    append_jsonl(path, {"i": 0})
    with pytest.raises(TypeError):
        append_jsonl(path, {"bad": object()})
    assert path.read_text() == '{"i": 0}\n'


# --------------------------------------------------------------------------- checkpoints

META = {"space": "nb201", "size": {"C": 16, "N": 5}, "shape": (32, 32)}


@pytest.fixture
def checkpoint(tmp_path) -> Path:
    path = tmp_path / "checkpoints" / "last.pt"
    save_checkpoint({"meta": META, "model": {"w": torch.arange(1000.0)}, "step": 7}, path)
    return path


def load_error(path, expected=None) -> str:
    with pytest.raises(SpeedyNASError) as info:
        load_checkpoint(path, expected)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


def test_load_checkpoint_ok(checkpoint):
    ckpt = load_checkpoint(checkpoint, {"space": "nb201", "size": {"C": 16}, "shape": [32, 32]})
    assert ckpt["step"] == 7 and torch.equal(ckpt["model"]["w"], torch.arange(1000.0))
    assert DIGEST_KEY not in ckpt
    assert load_checkpoint(checkpoint)["meta"]["space"] == "nb201"


def test_load_checkpoint_missing_and_directory(tmp_path):
    assert "checkpoint not found" in load_error(tmp_path / "nope.pt")
    assert "not a file" in load_error(tmp_path)


def test_load_checkpoint_empty(tmp_path):
    (tmp_path / "empty.pt").write_bytes(b"")
    assert "the file is empty" in load_error(tmp_path / "empty.pt")


def test_load_checkpoint_truncated_anywhere(checkpoint):
    data = checkpoint.read_bytes()
    for keep in range(1, 40):
        checkpoint.write_bytes(data[:len(data) * keep // 40])
        assert "truncated or corrupted" in load_error(checkpoint)


@pytest.mark.parametrize("content", [b"hello world\n", bytes(range(256)) * 4,
                                     random.Random(0).randbytes(4096)])
def test_load_checkpoint_garbage(tmp_path, content):
    path = tmp_path / "garbage.pt"
    path.write_bytes(content)
    assert "cannot load checkpoint" in load_error(path)


def test_load_checkpoint_refuses_arbitrary_objects(tmp_path):
    path = tmp_path / "custom.pt"
    torch.save({"obj": Custom()}, path)
    assert "weights_only=True" in load_error(path)


def test_load_checkpoint_without_digest_is_refused(tmp_path):
    path = tmp_path / "old.pt"
    torch.save({"model": {"w": torch.ones(3)}}, path)
    assert "holds no digest, so it cannot be verified" in load_error(path)


def test_a_checkpoint_with_changed_bytes_never_loads_changed_tensors(checkpoint):
    """Bytes overwritten anywhere in the file: the load fails naming the file, or (padding,
    unused fields) gives back exactly what was saved; a changed tensor never comes back."""
    data, damaged = checkpoint.read_bytes(), 0
    for offset in range(0, len(data), 97):
        checkpoint.write_bytes(data[:offset] + bytes([data[offset] ^ 0x5A]) + data[offset + 1:])
        try:
            ckpt = load_checkpoint(checkpoint)
        except SpeedyNASError as err:
            assert str(checkpoint) in str(err)
            damaged += "is damaged" in str(err)
        else:
            assert ckpt["step"] == 7 and torch.equal(ckpt["model"]["w"], torch.arange(1000.0))
    assert damaged > 10  # flips inside the tensor bytes load, and the digest catches them


def test_load_checkpoint_not_a_dict(tmp_path):
    path = tmp_path / "list.pt"
    torch.save([torch.ones(1)], path)
    assert f"not a checkpoint: {path} holds a list, expected a dict" == load_error(path)


def test_load_checkpoint_meta_mismatch(checkpoint):
    message = load_error(checkpoint, {"space": "darts"})
    assert "meta.space is 'nb201' in the checkpoint but this run expects 'darts'" in message
    message = load_error(checkpoint, {"size": {"C": 8, "N": 5}})
    assert "meta.size.C is 16 in the checkpoint but this run expects 8" in message
    assert "meta.size.N" not in message
    assert "meta.per_cell is missing" in load_error(checkpoint, {"per_cell": True})


def test_load_checkpoint_without_meta(tmp_path):
    path = tmp_path / "bare.pt"
    save_checkpoint({"model": {}}, path)
    assert load_checkpoint(path) == {"model": {}}
    assert "has no 'meta' entry" in load_error(path, {"space": "nb201"})


def test_rng_state_survives_a_checkpoint(tmp_path):
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    path = tmp_path / "rng.pt"
    save_checkpoint({"rng": capture_rng_state()}, path)
    expected = (random.random(), np.random.rand(), torch.rand(2))
    restore_rng_state(load_checkpoint(path)["rng"])
    again = (random.random(), np.random.rand(), torch.rand(2))
    assert expected[:2] == again[:2] and torch.equal(expected[2], again[2])


def test_sweep_removes_only_temporaries_a_killed_writer_left(tmp_path):
    stale = tmp_path / ".last.pt.0123456789ab.tmp"
    stale.write_bytes(b"half a checkpoint")
    kept = [tmp_path / ".notes.tmp", tmp_path / "last.pt", tmp_path / "sub" / ".x.0123456789ab.tmp"]
    for path in kept:
        path.parent.mkdir(exist_ok=True)
        path.write_text("keep")
    assert sweep_temporaries(tmp_path, tmp_path / "missing") == [stale]
    assert not stale.exists() and all(path.exists() for path in kept)
