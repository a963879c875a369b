"""One writer per run, and only in directories of ours.

The lock is an ``fcntl.flock`` on ``DIR/.lock``: the kernel drops it when its holder exits, even
by SIGKILL, so a lock left by a killed run never blocks its resume. The holder's pid is written
into the file so the refusal can name it; the holder removes the file when it lets go, so a
finished (or refused) run leaves nothing behind.

A directory a run writes is marked as ours by ``DIR/.speedynas-run`` (JSON ``{"kind": ...}``,
written before anything else): :func:`claim_directory` refuses a directory that is neither new,
empty nor ours (a user's own folder), so that no file of theirs is replaced.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from .atomic_io import atomic_write_json, open_in_place, refuse_symlink
from .errors import SpeedyNASError

__all__ = ["DIR_KINDS", "LOCK_NAME", "MARKER_NAME", "claim_directory", "directory_lock",
           "marker_kind"]

LOCK_NAME = ".lock"
#: The file that marks a directory as speedynas's own.
MARKER_NAME = ".speedynas-run"
#: The kinds of directory a marker names, as messages call them.
DIR_KINDS = {"train": "run dir", "search": "search dir"}


@contextlib.contextmanager
def directory_lock(directory: str | Path, what: str, create: bool = True) -> Iterator[None]:
    """Hold ``directory``'s lock; another process holding it is refused with a one-line error
    naming its pid. ``what`` names the run in that message. The directory is created, unless
    ``create=False`` (a resume): then a missing one is refused. A symbolic link at the directory
    or at its lock file is refused, not followed."""
    directory = Path(directory)
    refuse_symlink(directory, "give the directory it points to instead")
    if not create and not directory.exists():
        raise SpeedyNASError(f"cannot resume: {directory} holds no run (the directory does not "
                             "exist)")
    lock = directory / LOCK_NAME
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = _acquire(lock, what)
    except OSError as err:
        raise SpeedyNASError(f"cannot lock {directory}: {err.strerror}") from None
    try:
        yield
    finally:
        with contextlib.suppress(OSError):  # best effort: a lock file left behind is harmless
            lock.unlink()  # while still held, so that no one locks the removed file (_acquire)
        os.close(fd)  # closing drops the lock


def _acquire(lock: Path, what: str) -> int:
    """A descriptor holding ``lock`` (created if needed), the holder's pid written into it."""
    while True:
        fd = open_in_place(lock, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if _is_at(fd, lock):
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
                return fd
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise SpeedyNASError(f"{what} {lock.parent} is in use by process {holder} (lock "
                                 f"{lock}); wait for it to finish, or write elsewhere") from None
        except OSError:
            os.close(fd)
            raise
        os.close(fd)  # its last holder removed it as we opened it: lock the one there now


def _is_at(fd: int, path: Path) -> bool:
    """Whether the file open as ``fd`` is still the one at ``path``."""
    try:
        here = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (here.st_dev, here.st_ino)


def marker_kind(directory: Path) -> str | None:
    """The kind of speedynas directory (a key of :data:`DIR_KINDS`) ``directory``'s marker
    names; ``None`` when it has no marker."""
    path = directory / MARKER_NAME
    try:
        record = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (ValueError, RecursionError):
        record = None
    kind = record.get("kind") if isinstance(record, dict) else None
    if kind not in DIR_KINDS:
        raise SpeedyNASError(f"{path} is not a speedynas marker (expected JSON with a kind of "
                             f"{', '.join(DIR_KINDS)}); remove it if {directory} is no run")
    return kind


def claim_directory(directory: Path, kind: str, legacy: Callable[[Path], bool],
                    advice: str) -> None:
    """Make sure the existing ``directory`` is speedynas's own ``kind`` dir before writing into
    it. One with our marker of that kind is kept. One made before markers existed
    (``legacy(directory)``), or one holding nothing but our lock file, empty directories and
    ``kind`` dirs (the named searches inside the unnamed search's dir), is marked. Anything else
    (a user's folder, another kind of run) is refused naming it, a few of its entries and
    ``advice``."""
    found = marker_kind(directory)
    if found == kind:
        return
    if found is not None:
        raise SpeedyNASError(f"{directory} is a speedynas {DIR_KINDS[found]}, not a "
                             f"{DIR_KINDS[kind]}; {advice}")
    if not legacy(directory):
        foreign = [entry.name for entry in sorted(directory.iterdir())
                   if not _ours_inside(entry, kind, legacy)]
        if foreign:
            more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
            raise SpeedyNASError(f"{directory} is not a speedynas {DIR_KINDS[kind]} (it holds "
                                 f"{', '.join(foreign[:3])}{more}); {advice}")
    atomic_write_json(directory / MARKER_NAME, {"kind": kind})


def _ours_inside(entry: Path, kind: str, legacy: Callable[[Path], bool]) -> bool:
    """Whether ``entry`` of a directory being claimed holds nothing of anyone else's: our lock
    file, an empty directory, or a ``kind`` dir."""
    if entry.name == LOCK_NAME:
        return True
    return (entry.is_dir() and not entry.is_symlink()
            and (not any(entry.iterdir()) or marker_kind(entry) == kind or legacy(entry)))
