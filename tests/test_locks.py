"""One writer per run dir and per search dir; a killed holder never blocks a resume."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from speedynas_core.errors import SpeedyNASError
from speedynas_core.locks import LOCK_NAME, directory_lock

from .conftest import REPO, assert_one_line_error, run_script

HOLD = ("import sys, time; from speedynas_core.locks import directory_lock\n"
        "with directory_lock(sys.argv[1], 'x'):\n    print('held', flush=True); time.sleep(600)")


def test_a_second_holder_is_refused_naming_the_first(tmp_path):
    with directory_lock(tmp_path / "run", "the training run"):
        assert (tmp_path / "run" / LOCK_NAME).read_text().strip() == str(os.getpid())
        with pytest.raises(SpeedyNASError, match=rf"the training run .*run is in use by process "
                                                 rf"{os.getpid()} \(lock "):
            with directory_lock(tmp_path / "run", "the training run"):
                pass
    with directory_lock(tmp_path / "run", "the training run"):  # released: free again
        pass


def test_a_lock_left_by_a_killed_process_does_not_block(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], cwd=REPO,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(SpeedyNASError, match=f"in use by process {holder.pid}"):
            with directory_lock(tmp_path, "the search"):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with directory_lock(tmp_path, "the search"):
        pass


@pytest.mark.e2e
def test_train_and_search_refuse_a_run_another_process_writes(toy_supernet):
    with directory_lock(toy_supernet, "the training run"):
        proc = run_script("train.py", "--run-dir", str(toy_supernet), "--resume", check=False)
        assert_one_line_error(proc, f"in use by process {os.getpid()}")
    search_dir = toy_supernet / "search" / "locked"
    with directory_lock(search_dir, "the search"):
        proc = run_script("search.py", "--run-dir", str(toy_supernet), "name=locked",
                          "progress=false", check=False)
        assert_one_line_error(proc, "the search", f"in use by process {os.getpid()}")
    assert not (search_dir / "results.jsonl").exists()
