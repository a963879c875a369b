"""Run dirs and search dirs are recognised by a marker of ours (.speedynas-run): a new or empty
directory is marked, ours (or a legacy one, made before markers) is kept, and anything else (a
user's own folder) is refused naming it, its files untouched."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from speedynas_core.errors import SpeedyNASError
from speedynas_core.locks import LOCK_NAME, MARKER_NAME, claim_directory, directory_lock, marker_kind
from speedynas_search.results_store import ResultsStore
from speedynas_search.search_run import Search
from supernet.run_dir import last_checkpoint, load_run_config, resolve_train_config

from .conftest import CIFAR10_DIR, REPO, assert_one_line_error, run_script, search_config

TOY = REPO / "configs" / "toy.yaml"
SEARCH_TOY = REPO / "configs" / "search_toy.yaml"
DATA = f"data.root={CIFAR10_DIR}"
USERS = b"my: project\n"


def never_legacy(directory: Path) -> bool:
    return False


def claim(directory: Path, kind: str = "train", legacy=never_legacy) -> None:
    claim_directory(directory, kind, legacy, "choose a new or empty --run-dir")


def refusal(call, *args, **kwargs) -> str:
    """The one-line message of the SpeedyNASError ``call`` raises."""
    with pytest.raises(SpeedyNASError) as info:
        call(*args, **kwargs)
    assert "\n" not in str(info.value)
    return str(info.value)


def users_folder(path: Path, *names: str) -> Path:
    """A user's own folder holding ``config.yaml`` and ``names``."""
    path.mkdir(parents=True)
    for name in ("config.yaml", *names):
        (path / name).write_bytes(USERS)
    return path


def copy_run(run_dir: Path, to: Path) -> Path:
    """A copy of the trained ``run_dir`` without its searches, to plant things in (the fixture's
    run dir is shared with other tests' searches)."""
    return Path(shutil.copytree(run_dir, to, ignore=shutil.ignore_patterns("search")))


def new_run(run_dir: Path) -> None:
    resolve_train_config(run_dir, str(TOY), [DATA, "optim.epochs=1"], resume=False)


# --------------------------------------------------------------------------- claim_directory

def test_a_new_or_empty_directory_is_marked_our_lock_file_aside(tmp_path):
    (tmp_path / LOCK_NAME).write_text("123\n")
    claim(tmp_path)
    assert json.loads((tmp_path / MARKER_NAME).read_text()) == {"kind": "train"}
    assert marker_kind(tmp_path) == "train"
    claim(tmp_path)  # ours: kept


def test_a_users_folder_is_refused_naming_it_and_a_few_entries(tmp_path):
    folder = users_folder(tmp_path / "project", "a.txt", "b.txt", "c.txt")
    message = refusal(claim, folder)
    assert message == (f"{folder} is not a speedynas run dir (it holds a.txt, b.txt, c.txt and 1 "
                       "more); choose a new or empty --run-dir")
    assert sorted(os.listdir(folder)) == ["a.txt", "b.txt", "c.txt", "config.yaml"]


def test_a_legacy_directory_is_marked(tmp_path):
    old = users_folder(tmp_path / "old")
    claim(old, legacy=lambda d: (d / "config.yaml").exists())
    assert marker_kind(old) == "train"


def test_another_kind_of_run_and_a_bad_marker_are_refused(tmp_path):
    claim(tmp_path, "search")
    assert refusal(claim, tmp_path) == (f"{tmp_path} is a speedynas search dir, not a run dir; "
                                        "choose a new or empty --run-dir")
    (tmp_path / MARKER_NAME).write_text("[" * 100_000)
    assert refusal(claim, tmp_path).startswith(f"{tmp_path / MARKER_NAME} is not a speedynas "
                                               "marker")


def test_named_searches_and_empty_dirs_inside_the_unnamed_search_dir_do_not_count(tmp_path):
    def legacy(directory: Path) -> bool:
        return (directory / "summary.json").exists()

    for name in ("named", "legacy", "tb", "empty"):
        (tmp_path / name).mkdir()
    claim(tmp_path / "named", "search")
    (tmp_path / "legacy" / "summary.json").write_text("{}")
    (tmp_path / "tb" / "events").write_text("")  # a directory with files, no search: counts
    assert refusal(claim, tmp_path, "search", legacy).startswith(
        f"{tmp_path} is not a speedynas search dir (it holds tb)")
    (tmp_path / "tb" / "events").unlink()
    (tmp_path / "tb").rmdir()
    claim(tmp_path, "search", legacy)
    assert marker_kind(tmp_path) == "search"


# --------------------------------------------------------------------------- train runs

def test_a_new_run_in_a_users_folder_is_refused_and_the_file_kept(tmp_path):
    folder = users_folder(tmp_path / "project")
    message = refusal(new_run, folder)
    assert message.startswith(f"{folder} is not a speedynas run dir (it holds config.yaml)")
    assert (folder / "config.yaml").read_bytes() == USERS
    assert os.listdir(folder) == ["config.yaml"]
    assert "not a speedynas run dir" in refusal(resolve_train_config, folder, None, [], True)


def test_a_marked_run_without_checkpoint_starts_again_and_with_one_needs_resume(tmp_path):
    run_dir = tmp_path / "run"
    new_run(run_dir)
    assert marker_kind(run_dir) == "train"
    resolve_train_config(run_dir, str(TOY), [DATA, "optim.epochs=2"], resume=False)
    assert load_run_config(run_dir).optim.epochs == 2  # a refused first try: started again
    last_checkpoint(run_dir).parent.mkdir()
    last_checkpoint(run_dir).write_bytes(b"a checkpoint")
    assert "pass --resume" in refusal(new_run, run_dir)


def test_a_legacy_run_is_adopted_on_resume(tmp_path):
    run_dir = tmp_path / "old"
    new_run(run_dir)
    (run_dir / MARKER_NAME).unlink()
    last_checkpoint(run_dir).parent.mkdir()
    last_checkpoint(run_dir).write_bytes(b"a checkpoint")
    assert "pass --resume" in refusal(new_run, run_dir)
    assert resolve_train_config(run_dir, None, [], resume=True).optim.epochs == 1
    assert marker_kind(run_dir) == "train"


def test_a_resume_lock_does_not_create_a_missing_directory(tmp_path):
    missing = tmp_path / "missing"
    with pytest.raises(SpeedyNASError, match=f"^cannot resume: {missing} holds no run"):
        with directory_lock(missing, "the training run", create=False):
            pass
    assert not missing.exists()


# --------------------------------------------------------------------------- searches

def test_a_search_into_a_users_folder_is_refused_and_a_new_one_marked(tiny_run, tmp_path):
    tiny_run = copy_run(tiny_run, tmp_path / "run")
    folder = users_folder(tiny_run / "search" / "mine")
    cfg = search_config(tiny_run, "name=mine", "candidates.num=2")
    assert refusal(Search(tiny_run, cfg).run) == (
        f"{folder} is not a speedynas search dir (it holds config.yaml); use another name=...")
    assert os.listdir(folder) == ["config.yaml"] and (folder / "config.yaml").read_bytes() == USERS
    Search(tiny_run, search_config(tiny_run, "name=marked", "candidates.num=2")).run()
    assert marker_kind(tiny_run / "search" / "marked") == "search"


def test_a_legacy_search_is_adopted(tiny_run):
    cfg = search_config(tiny_run, "name=legacy", "candidates.num=2")
    Search(tiny_run, cfg).run()
    out = tiny_run / "search" / "legacy"
    (out / MARKER_NAME).unlink()
    records = ResultsStore(out).load()
    Search(tiny_run, cfg).run()
    assert marker_kind(out) == "search" and ResultsStore(out).load() == records


# --------------------------------------------------------------------------- train.py, search.py

def train(run_dir: Path, *args: str):
    return run_script("train.py", "--run-dir", str(run_dir), *args, check=False)


@pytest.mark.e2e
def test_train_py_refuses_a_users_folder_and_leaves_it_as_it_was(tmp_path):
    folder = users_folder(tmp_path / "project")
    assert_one_line_error(train(folder, "--config", str(TOY), DATA),
                          str(folder), "not a speedynas run dir", "config.yaml",
                          "choose a new or empty --run-dir")
    assert os.listdir(folder) == ["config.yaml"]  # no marker, no lock file
    assert (folder / "config.yaml").read_bytes() == USERS
    # --resume reads the folder's config.yaml (for its device) before anything else: refused
    assert_one_line_error(train(folder, "--resume"), str(folder / "config.yaml"))
    assert os.listdir(folder) == ["config.yaml"]
    assert (folder / "config.yaml").read_bytes() == USERS


@pytest.mark.e2e
def test_train_py_marks_its_run_and_adopts_a_legacy_one_on_resume(tmp_path):
    run_dir = tmp_path / "run"
    proc = train(run_dir, "--config", str(TOY), DATA, "optim.epochs=1")
    assert proc.returncode == 0, proc.stderr
    assert marker_kind(run_dir) == "train" and LOCK_NAME not in os.listdir(run_dir)
    (run_dir / MARKER_NAME).unlink()  # as a run dir made before markers
    assert_one_line_error(train(run_dir, "--config", str(TOY), DATA), "pass --resume")
    proc = train(run_dir, "--resume")
    assert proc.returncode == 0, proc.stderr
    assert marker_kind(run_dir) == "train"


@pytest.mark.e2e
def test_train_py_resume_of_a_missing_run_dir_creates_nothing(tmp_path):
    missing = tmp_path / "missing"
    assert_one_line_error(train(missing, "--resume"), f"cannot resume: {missing} holds no run")
    assert not missing.exists()


@pytest.mark.e2e
def test_search_py_refuses_a_users_folder_and_marks_its_own(toy_supernet, tmp_path):
    toy_supernet = copy_run(toy_supernet, tmp_path / "run")
    folder = users_folder(toy_supernet / "search" / "users")
    common = ["--run-dir", str(toy_supernet), "--config", str(SEARCH_TOY), "retrain.enabled=false",
              "candidates.num=2"]
    proc = run_script("search.py", *common, "name=users", check=False)
    assert_one_line_error(proc, str(folder), "not a speedynas search dir", "use another name=")
    assert os.listdir(folder) == ["config.yaml"] and (folder / "config.yaml").read_bytes() == USERS
    run_script("search.py", *common, "name=ours")
    assert marker_kind(toy_supernet / "search" / "ours") == "search"
