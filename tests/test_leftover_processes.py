"""The autouse fixture kill_leftover_processes (tests/processes.py): what a test starts and
leaves running is killed when it ends, orphaned grandchildren included; nothing else is."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

from .processes import alive, killing_leftovers, running

SLEEP = [sys.executable, "-c", "import time; time.sleep(600)"]
# A child that starts a sleeping grandchild, prints its pid and exits: the grandchild is orphaned.
ORPHANING = [sys.executable, "-c", "import subprocess; print(subprocess.Popen("
             f"{SLEEP!r}, stdout=subprocess.DEVNULL).pid, flush=True)"]


def test_every_test_runs_under_the_fixture(request):
    assert "kill_leftover_processes" in request.fixturenames


def test_a_sleeping_child_left_running_is_killed():
    with killing_leftovers() as killed:
        child = subprocess.Popen(SLEEP)
    assert [p.pid for p in killed] == [child.pid]
    assert "time.sleep(600)" in killed[0].command
    assert child.wait() == -signal.SIGKILL


def test_an_orphaned_grandchild_is_found_by_its_environment_and_killed():
    with killing_leftovers() as killed:
        grandchild = int(subprocess.run(ORPHANING, stdout=subprocess.PIPE, text=True,
                                        check=True).stdout)
        assert alive(grandchild) and grandchild not in _children()
    assert [p.pid for p in killed] == [grandchild]
    assert not alive(grandchild)


def test_a_child_without_the_sessions_environment_is_killed_as_a_descendant():
    with killing_leftovers() as killed:
        child = subprocess.Popen(SLEEP, env={"PATH": os.environ.get("PATH", "")})
    assert [p.pid for p in killed] == [child.pid]
    assert child.wait() == -signal.SIGKILL


def test_processes_that_ended_or_ran_before_are_left_alone():
    earlier = subprocess.Popen(SLEEP)
    try:
        with killing_leftovers() as killed:
            subprocess.run([sys.executable, "-c", "pass"], check=True)
        assert killed == [] and earlier.poll() is None
    finally:
        earlier.kill()
        earlier.wait()


def test_nothing_is_read_when_the_test_starts_no_process():
    with killing_leftovers() as killed:
        pass
    assert killed == []


def _children() -> set[int]:
    """This process's running children."""
    return {p.pid for p in running().values() if p.ppid == os.getpid()}
