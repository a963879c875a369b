"""One writer per run: an exclusive lock on a directory, held for as long as a process writes it.

The lock is an ``fcntl.flock`` on ``DIR/.lock``: the kernel drops it when its holder exits, even
by SIGKILL, so a lock left by a killed run never blocks its resume. The holder's pid is written
into the file so the refusal can name it.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from .errors import SpeedyNASError

__all__ = ["LOCK_NAME", "directory_lock"]

LOCK_NAME = ".lock"


@contextlib.contextmanager
def directory_lock(directory: str | Path, what: str) -> Iterator[None]:
    """Hold ``directory``'s lock (the directory is created); another process holding it is
    refused with a one-line error naming its pid. ``what`` names the run in that message."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as err:
        raise SpeedyNASError(f"cannot lock {directory}: {err.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise SpeedyNASError(f"{what} {directory} is in use by process {holder} (lock "
                                 f"{directory / LOCK_NAME}); wait for it to finish, or write "
                                 "elsewhere") from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as err:
            raise SpeedyNASError(f"cannot lock {directory}: {err.strerror}") from None
        yield
    finally:
        os.close(fd)  # closing drops the lock
