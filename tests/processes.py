"""Processes a test started and left running (a failed e2e test's train.py, search.py or
torchrun): found and killed when the test ends, so that they never run beside the next test.

A process counts as the test's when it appeared after the test first started one (an audit
hook sees every ``subprocess.Popen``, fork and spawn) and it is a descendant of this process, or
it carries this session's environment mark (:data:`MARK`): then also a grandchild orphaned by a
killed parent (torchrun's workers) is found. Linux: processes are read from ``/proc``.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MARK", "Process", "alive", "kill", "killing_leftovers", "running"]

#: The environment variable every process this test session starts inherits.
MARK = "SPEEDYNAS_TEST_SESSION"
os.environ.setdefault(MARK, f"{os.getpid()}-{uuid.uuid4().hex}")

#: States of a process that has ended (a zombie waits to be reaped).
ENDED = (b"Z", b"X")

#: Audit events raised just before a process is created.
SPAWN_EVENTS = frozenset({"subprocess.Popen", "os.fork", "os.forkpty", "os.posix_spawn",
                          "os.spawn", "os.system"})


@dataclass(frozen=True)
class Process:
    """A running process as ``/proc`` shows it."""

    pid: int
    ppid: int
    marked: bool     # carries this session's MARK
    command: str


def running() -> dict[int, Process]:
    """Every running (not zombie) process whose ``/proc`` entries this user may read."""
    mark = f"{MARK}={os.environ[MARK]}".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):  # gone meanwhile, or another user's
            state, ppid = _stat(entry)[:2]
            if state in ENDED:
                continue
            marked = mark in (entry / "environ").read_bytes().split(b"\0")
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(
                errors="replace").strip()
            found[int(entry.name)] = Process(int(entry.name), int(ppid), marked, command)
    return found


def descends(process: Process, ancestor: int, table: dict[int, Process]) -> bool:
    """Whether ``process`` is a child, grandchild, ... of ``ancestor``."""
    while process.ppid not in (0, 1):
        if process.ppid == ancestor:
            return True
        if process.ppid not in table:
            return False
        process = table[process.ppid]
    return False


def kill(processes: list[Process]) -> None:
    """SIGKILL ``processes`` and wait until each has ended (a child is left for its ``Popen``
    to reap, which then reports ``-SIGKILL``)."""
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
    for process in processes:
        while alive(process.pid):
            time.sleep(0.01)


def alive(pid: int) -> bool:
    """Whether ``pid`` is running (not gone, not a zombie)."""
    try:
        return _stat(Path(f"/proc/{pid}"))[0] not in ENDED
    except OSError:
        return False


def _stat(entry: Path) -> list[bytes]:
    """The fields of ``/proc/PID/stat`` after the command name: state, ppid, ..."""
    stat = (entry / "stat").read_bytes()
    return stat[stat.rindex(b")") + 2:].split()


class _Watch:
    """The processes running when the watched code first started one."""

    def __init__(self) -> None:
        self.before: set[int] | None = None

    def spawning(self) -> None:
        """A process is about to start: note what runs already, the first time."""
        if self.before is None:
            self.before = set(running())

    def leftovers(self) -> list[Process]:
        """Processes started since, by this process or with its mark, still running."""
        if self.before is None:
            return []
        table = running()
        return [p for pid, p in table.items()
                if pid not in self.before and (p.marked or descends(p, os.getpid(), table))]


_watches: list[_Watch] = []


def _audit(event: str, args: tuple) -> None:
    if event in SPAWN_EVENTS:
        for watch in _watches:
            watch.spawning()


sys.addaudithook(_audit)


@contextlib.contextmanager
def killing_leftovers() -> Iterator[list[Process]]:
    """Run the body, then kill what it started and left running; yields the list of those
    killed (filled on exit)."""
    watch, killed = _Watch(), []
    _watches.append(watch)
    try:
        yield killed
    finally:
        _watches.remove(watch)
        killed += watch.leftovers()
        kill(killed)
