"""Faults of the machine and of the user's paths end in one line and exit 2, nothing damaged:
a real read-only mount, a real full tmpfs, a run dir that is a file, a name too long."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from speedynas_core.atomic_io import append_jsonl, atomic_write_text, load_checkpoint

from .conftest import REPO, assert_one_line_error, run_script

pytestmark = pytest.mark.e2e
TOY = str(REPO / "configs" / "toy.yaml")


@pytest.fixture
def mount(tmp_path):
    """``mount(options)`` -> a fresh tmpfs folder mounted with ``options``; unmounted after."""
    mounted: list[Path] = []

    def make(options: str) -> Path:
        point = tmp_path / f"mnt{len(mounted)}"
        point.mkdir()
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"this machine does not let the tests mount a tmpfs: {proc.stderr}")
        mounted.append(point)
        return point

    yield make
    for point in mounted:
        subprocess.run(["umount", str(point)], check=False)


def test_read_only_run_dir_is_one_line(mount):
    read_only = mount("ro,size=1m")
    proc = run_script("train.py", "--config", TOY, "--run-dir", str(read_only / "run"),
                      check=False)
    assert_one_line_error(proc, str(read_only / "run"), "Read-only file system")


def test_full_disk_during_a_search_is_one_line_and_damages_nothing(toy_supernet, mount):
    disk = mount("size=4m")
    run_dir = disk / "run"
    shutil.copytree(toy_supernet, run_dir, ignore=shutil.ignore_patterns("search"))
    before = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    with open(disk / "filler", "wb") as filler:  # fill the disk to the last byte
        try:
            while True:
                filler.write(b"\0" * 65536)
                filler.flush()
        except OSError:
            pass
    proc = run_script("search.py", "--run-dir", str(run_dir), "progress=false",
                      "candidates.num=3", "finetune.budgets=[2]", check=False)
    assert_one_line_error(proc, str(run_dir), "No space left on device")
    after = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert all(after["model"][k].equal(v) for k, v in before["model"].items())
    (disk / "filler").unlink()
    run_script("search.py", "--run-dir", str(run_dir), "progress=false", "candidates.num=3",
               "finetune.budgets=[2]")  # the corrected retry runs


def test_run_dir_that_is_a_file_and_a_name_too_long(tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    assert_one_line_error(run_script("train.py", "--config", TOY, "--run-dir", str(a_file),
                                     check=False), str(a_file))
    assert a_file.read_text() == "x"
    too_long = tmp_path / ("r" * 300)
    assert_one_line_error(run_script("train.py", "--config", TOY, "--run-dir", str(too_long),
                                     check=False), "File name too long")


def test_writes_on_a_full_disk_name_the_file_and_keep_the_old_one(mount):
    disk = mount("size=64k")
    target = disk / "summary.json"
    atomic_write_text(target, "old\n")
    with pytest.raises(OSError) as info:
        atomic_write_text(target, "x" * 200_000)
    assert info.value.filename == str(target) and "No space left" in str(info.value)
    assert target.read_text() == "old\n" and sorted(p.name for p in disk.iterdir()) == [
        "summary.json"]
    with pytest.raises(OSError) as info:
        for _ in range(100):
            append_jsonl(disk / "results.jsonl", {"pad": "y" * 10_000})
    assert info.value.filename == str(disk / "results.jsonl")
