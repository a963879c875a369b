"""Reading the user's input files: regular files or pipes only, bounded in size, read once.

Every file a user names (a config, a candidates file, a ground-truth table) is read through
:func:`read_input_text`: a device file, a socket or a directory is refused, a file larger than
its kind's limit is refused before it is read, a pipe is read at most up to the limit, and a
FIFO that nobody writes to is refused after a wait instead of blocking for ever. Each problem is
a one-line :class:`SpeedyNASError` naming the path.
"""
from __future__ import annotations

import os
import select
import stat
from pathlib import Path

from .errors import SpeedyNASError, shown

__all__ = ["CANDIDATES_LIMIT", "CONFIG_LIMIT", "FIFO_WAIT_SECONDS", "TABLE_LIMIT", "read_input",
           "read_input_text"]

MIB = 1 << 20
#: The largest config file read (a config holds a few hundred values).
CONFIG_LIMIT = 1 * MIB
#: The largest candidates file read (100,000 DARTS genotypes take about 20 MiB).
CANDIDATES_LIMIT = 64 * MIB
#: The largest ground-truth table read (NAS-Bench-201's full JSON takes 11 MiB).
TABLE_LIMIT = 256 * MIB
#: How long a FIFO may stay silent before it is refused as having no writer.
FIFO_WAIT_SECONDS = 10.0

_CHUNK = 1 << 16


def _size_text(size: int) -> str:
    return f"{size / MIB:.1f} MiB" if size >= MIB else f"{size:,} bytes"


def _kind(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def _open(path: Path, what: str) -> int:
    try:
        # Non-blocking, so that opening a FIFO with no writer returns at once.
        return os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise SpeedyNASError(f"{what} not found: {path}") from None
    except OSError as err:
        raise SpeedyNASError(f"cannot read {what} {path}: {err.strerror}") from None
    except ValueError:  # an embedded NUL byte
        raise SpeedyNASError(f"{what} path {shown(str(path))} contains a NUL byte") from None


def _read_all(fd: int, path: Path, what: str, limit: int) -> bytes:
    chunks, total = [], 0
    while True:
        chunk = os.read(fd, _CHUNK)
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > limit:
            raise SpeedyNASError(f"{what} {path} holds more than {_size_text(limit)}, the "
                                 f"largest {what} read; give a smaller file")
        chunks.append(chunk)


def read_input(path: str | Path, what: str, limit: int,
               fifo_wait: float = FIFO_WAIT_SECONDS) -> bytes:
    """The bytes of the regular file or pipe at ``path`` (at most ``limit`` of them).

    ``what`` names the input in messages (``"config file"``). A FIFO or pipe must deliver its
    first byte (or its end) within ``fifo_wait`` seconds."""
    path = Path(path)
    fd = _open(path, what)
    try:
        info = os.fstat(fd)
        mode = info.st_mode
        if stat.S_ISREG(mode):
            if info.st_size > limit:
                raise SpeedyNASError(f"{what} {path} is {_size_text(info.st_size)}, larger than "
                                     f"{_size_text(limit)}, the largest {what} read; give a "
                                     "smaller file")
        elif stat.S_ISFIFO(mode):
            ready, _, _ = select.select([fd], [], [], fifo_wait)
            if not ready:
                raise SpeedyNASError(f"{what} {path} is a pipe that nothing was written to in "
                                     f"{fifo_wait:g} s (a FIFO with no writer?); give a file")
        else:
            raise SpeedyNASError(f"{what} {path} is {_kind(mode)}; give a regular file")
        os.set_blocking(fd, True)
        try:
            return _read_all(fd, path, what, limit)
        except OSError as err:
            raise SpeedyNASError(f"cannot read {what} {path}: {err.strerror}") from None
    finally:
        os.close(fd)


def read_input_text(path: str | Path, what: str, limit: int,
                    fifo_wait: float = FIFO_WAIT_SECONDS) -> str:
    """:func:`read_input` decoded as UTF-8 (a byte-order mark is dropped); text in another
    encoding is refused naming the byte."""
    data = read_input(path, what, limit, fifo_wait)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise SpeedyNASError(f"{what} {path} is not UTF-8 text (byte {err.start}: "
                             f"{err.reason})") from None
