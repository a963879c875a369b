"""Links planted in a run dir (shared file systems, copied run dirs) are never written through:
the lock file, results.jsonl and every atomically replaced file refuse a symbolic link where a
file of ours belongs, and a file changed in place refuses a hard link. Also: a results line
nested too deeply for the JSON parser is a corrupt line, not a crash."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from speedynas_core.atomic_io import append_jsonl, atomic_write_text, read_jsonl
from speedynas_core.errors import SpeedyNASError
from speedynas_core.locks import LOCK_NAME, directory_lock

from .conftest import CIFAR10_DIR, REPO, assert_one_line_error, run_script
from .test_run_marker import copy_run

TOY = REPO / "configs" / "toy.yaml"
SEARCH_TOY = REPO / "configs" / "search_toy.yaml"
PRECIOUS = b"someone else's file, no newline at its end"  # append_jsonl's repair would cut it


@pytest.fixture
def victim(tmp_path) -> Path:
    """A file outside the run dir that a planted link points to."""
    path = tmp_path / "elsewhere" / "victim.txt"
    path.parent.mkdir()
    path.write_bytes(PRECIOUS)
    return path


def plant(link: Path, target: Path, hard: bool) -> None:
    """A symbolic (or hard) link at ``link`` to ``target``."""
    link.parent.mkdir(parents=True, exist_ok=True)
    (os.link if hard else os.symlink)(target, link)


def refusal(call, *args) -> str:
    """The one-line message of the SpeedyNASError ``call(*args)`` raises."""
    with pytest.raises(SpeedyNASError) as info:
        call(*args)
    assert "\n" not in str(info.value)
    return str(info.value)


def locking(directory: Path) -> None:
    with directory_lock(directory, "the training run"):
        pass


@pytest.mark.parametrize("hard", [False, True], ids=["symlink", "hardlink"])
def test_a_linked_lock_file_is_refused_and_its_target_untouched(tmp_path, victim, hard):
    lock = tmp_path / "run" / LOCK_NAME
    plant(lock, victim, hard)
    message = refusal(locking, tmp_path / "run")
    assert message.startswith(f"{lock} is a {'hard' if hard else 'symbolic'} link")
    assert "speedynas does not write through links: remove it" in message
    assert victim.read_bytes() == PRECIOUS
    assert lock.exists()  # the link itself is left for the user to look at


@pytest.mark.parametrize("hard", [False, True], ids=["symlink", "hardlink"])
def test_a_linked_results_log_is_refused_and_its_target_untouched(tmp_path, victim, hard):
    results = tmp_path / "search" / "results.jsonl"
    plant(results, victim, hard)
    message = refusal(append_jsonl, results, {"index": 0})
    assert message.startswith(f"{results} is a {'hard' if hard else 'symbolic'} link")
    assert victim.read_bytes() == PRECIOUS


def test_a_dangling_link_at_the_results_log_creates_nothing(tmp_path):
    results, target = tmp_path / "results.jsonl", tmp_path / "elsewhere.jsonl"
    plant(results, target, hard=False)
    assert refusal(append_jsonl, results, {"index": 0}).startswith(
        f"{results} is a symbolic link (to {target})")
    assert not target.exists()


def test_an_atomic_write_refuses_a_symbolic_link_and_keeps_it(tmp_path, victim):
    config = tmp_path / "run" / "config.yaml"
    plant(config, victim, hard=False)
    assert refusal(atomic_write_text, config, "new: 1\n").startswith(
        f"{config} is a symbolic link (to {victim}); speedynas does not write through links")
    assert config.is_symlink() and victim.read_bytes() == PRECIOUS
    assert os.listdir(config.parent) == ["config.yaml"]  # no temporary left


def test_an_atomic_write_replaces_only_its_own_name_of_a_hard_linked_file(tmp_path, victim):
    config = tmp_path / "config.yaml"
    plant(config, victim, hard=True)
    atomic_write_text(config, "new: 1\n")  # a rename: the other name keeps its file
    assert config.read_text() == "new: 1\n" and victim.read_bytes() == PRECIOUS


def test_a_symbolic_link_as_the_locked_directory_is_refused(tmp_path):
    real, link = tmp_path / "real", tmp_path / "run"
    real.mkdir()
    link.symlink_to(real)
    message = refusal(locking, link)
    assert message.startswith(f"{link} is a symbolic link (to {real})")
    assert message.endswith("give the directory it points to instead")
    assert os.listdir(real) == []


def test_a_lock_file_is_removed_on_release(tmp_path):
    with directory_lock(tmp_path, "the search"):
        assert (tmp_path / LOCK_NAME).read_text().strip() == str(os.getpid())
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------- deep nesting

def test_a_results_line_nested_too_deeply_is_a_corrupt_line(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text('{"i": 0}\n' + "[" * 100_000 + '\n{"i": 2}\n')
    assert refusal(read_jsonl, path) == f"{path}:2: corrupt JSON line (nested too deeply)"


def test_a_deeply_nested_cut_last_line_is_dropped_and_repaired(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text('{"i": 0}\n' + "[" * 100_000)
    assert read_jsonl(path) == [{"i": 0}]
    append_jsonl(path, {"i": 1})
    assert path.read_text() == '{"i": 0}\n{"i": 1}\n'


# --------------------------------------------------------------------------- train.py, search.py

@pytest.mark.e2e
@pytest.mark.parametrize("hard", [False, True], ids=["symlink", "hardlink"])
def test_train_py_refuses_a_linked_lock_file(tmp_path, victim, hard):
    lock = tmp_path / "run" / LOCK_NAME
    plant(lock, victim, hard)
    proc = run_script("train.py", "--config", str(TOY), "--run-dir", str(lock.parent),
                      f"data.root={CIFAR10_DIR}", "optim.epochs=1", check=False)
    assert_one_line_error(proc, str(lock), "link", "speedynas does not write through links")
    assert victim.read_bytes() == PRECIOUS
    assert os.listdir(lock.parent) == [LOCK_NAME]


@pytest.mark.e2e
@pytest.mark.parametrize("hard", [False, True], ids=["symlink", "hardlink"])
def test_search_py_refuses_a_linked_results_log(toy_supernet, tmp_path, victim, hard):
    run_dir = copy_run(toy_supernet, tmp_path / "run")
    results = run_dir / "search" / "linked" / "results.jsonl"
    plant(results, victim, hard)
    proc = run_script("search.py", "--run-dir", str(run_dir), "--config", str(SEARCH_TOY),
                      "name=linked", "retrain.enabled=false", "candidates.num=2", check=False)
    assert_one_line_error(proc, str(results), "link", "speedynas does not write through links")
    assert victim.read_bytes() == PRECIOUS
