"""Crash-safe file writes and careful reads for run directories.

Whole-file writes go to a temporary file in the target's directory, are flushed and fsynced,
then renamed over the target with :func:`os.replace`: a reader (or a resumed run) sees either
the old file or the new one, never half of one. Append-only logs (``results.jsonl``) write one
fsynced line per record; a line cut short by a killed writer is dropped on reading and repaired
on the next append.

Nothing is written through a link planted where a file of ours belongs (a shared file system, a
copied run dir): a symbolic link there is refused, and a file changed in place is opened without
following links (:func:`open_in_place`) and refused when other names share it (a hard link).
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import os
import pickle
import re
import stat
import uuid
import warnings
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import torch

from .errors import SpeedyNASError

__all__ = [
    "DIGEST_KEY", "append_jsonl", "atomic_torch_save", "atomic_write_bytes", "atomic_write_csv",
    "atomic_write_json", "atomic_write_text", "atomic_writer", "load_checkpoint", "naming", "open_in_place",
    "read_jsonl", "refuse_symlink", "save_checkpoint", "state_digest", "sweep_temporaries",
]

#: The checkpoint entry holding the SHA-256 of everything else in it.
DIGEST_KEY = "digest"


def refuse_symlink(path: Path, advice: str = "remove it") -> None:
    """Refuse a symbolic link at ``path``, where a file or directory of ours belongs: what is
    written there would land wherever it points. ``advice`` ends the one-line message."""
    if path.is_symlink():
        raise SpeedyNASError(f"{path} is a symbolic link (to {os.readlink(path)}); speedynas "
                             f"does not write through links: {advice}")


def open_in_place(path: Path, flags: int) -> int:
    """A descriptor of ``path`` opened with ``flags`` (``os.O_RDWR | os.O_CREAT`` ...) to be
    changed in place, never through a link: a symbolic link at ``path`` is not followed but
    refused, and so is a regular file with other names (hard links), which the change would alter
    too."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    except OSError:
        refuse_symlink(path)  # O_NOFOLLOW's error for a link: say what it is
        raise
    info = os.fstat(fd)
    if stat.S_ISREG(info.st_mode) and info.st_nlink > 1:
        os.close(fd)
        raise SpeedyNASError(f"{path} is a hard link (its file has {info.st_nlink} names, which "
                             "a write would all change); speedynas does not write through links: "
                             "remove it")
    return fd


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (best effort: not every OS allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_writer(path: str | Path) -> Iterator[IO[bytes]]:
    """A binary file that replaces ``path`` only if the ``with`` block finishes without error.

    Parent directories are created. On an exception the temporary file is removed and the old
    ``path`` (if any) is left untouched. A symbolic link at ``path`` is refused (see
    :func:`refuse_symlink`).
    """
    path = Path(path)
    refuse_symlink(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise naming(err, path)
    _fsync_dir(path.parent)


def naming(err: BaseException, path: str | Path, action: str = "cannot write") -> BaseException:
    """``err``, or for an OSError that names no file (a full disk during ``write``, or one that
    TensorBoard's writer thread raised), the same error naming ``path``, so the one-line message
    says which file could not be written: ``action: reason``."""
    if isinstance(err, OSError) and err.filename is None:
        reason = err.strerror or " ".join(str(err).split()) or type(err).__name__
        return OSError(err.errno, f"{action}: {reason}", str(path))
    return err


_TEMPORARY = re.compile(r"^\..+\.[0-9a-f]{12}\.tmp$")


def sweep_temporaries(*directories: str | Path) -> list[Path]:
    """Remove the temporary files :func:`atomic_writer` left in ``directories`` (not below
    them) when its process was killed mid-write; the removed paths. Call it only while holding
    the directories' lock (:mod:`speedynas_core.locks`), so that no live writer owns them."""
    removed = []
    for directory in map(Path, directories):
        for path in directory.glob(".*.tmp") if directory.is_dir() else ():
            if _TEMPORARY.match(path.name) and path.is_file():
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically."""
    with atomic_writer(path) as handle:
        handle.write(data)


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> None:
    """Replace ``path`` with ``text`` atomically."""
    atomic_write_bytes(path, text.encode(encoding))


def strict_json(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, +-inf) replaced by ``None``, so that it is
    strict JSON (``null``) that every JSON reader accepts."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    return value


def dumps_strict(obj: Any, indent: int | None = None) -> str:
    """``obj`` as strict JSON text (non-finite floats as ``null``, see :func:`strict_json`)."""
    return json.dumps(strict_json(obj), indent=indent, ensure_ascii=False, allow_nan=False)


def atomic_write_json(path: str | Path, obj: Any, indent: int | None = 2) -> None:
    """Replace ``path`` with ``obj`` as strict JSON atomically (serialised before the file is
    touched; non-finite floats become ``null``)."""
    atomic_write_text(path, dumps_strict(obj, indent) + "\n")


def atomic_write_csv(path: str | Path, rows: Sequence[Mapping[str, Any]],
                     fields: Sequence[str] | None = None) -> None:
    """Replace ``path`` with ``rows`` as CSV atomically: a header of ``fields`` (default: every
    key of the rows, in the order first seen), then one ``\\n``-ended line per row; a value
    missing or ``None`` is left empty, a key not in ``fields`` left out."""
    names = list(dict.fromkeys(k for row in rows for k in row)) if fields is None else fields
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=names, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save(obj, path)`` atomically: a failed save leaves the old file intact."""
    with atomic_writer(path) as handle:
        torch.save(obj, handle)


def state_digest(obj: Any) -> str:
    """SHA-256 of a checkpoint's contents: every tensor's dtype, shape and bytes, and every other
    value's text, walked in a fixed order (so it is the same after a save and a load)."""
    digest = hashlib.sha256()
    _feed(digest, obj)
    return digest.hexdigest()


def _feed(digest: Any, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        flat = value.detach().cpu().contiguous().reshape(-1)
        digest.update(f"T{flat.dtype}{tuple(value.shape)}".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    elif isinstance(value, Mapping):
        digest.update(b"{")
        for key in sorted(value, key=repr):
            _feed(digest, key)
            _feed(digest, value[key])
        digest.update(b"}")
    elif isinstance(value, (list, tuple)):
        digest.update(b"[")
        for item in value:
            _feed(digest, item)
        digest.update(b"]")
    else:
        digest.update(f"{type(value).__name__}:{value!r};".encode())


def save_checkpoint(state: Mapping[str, Any], path: str | Path) -> None:
    """Save a checkpoint dict atomically with its :func:`state_digest` (``load_checkpoint``
    verifies it)."""
    atomic_torch_save({**state, DIGEST_KEY: state_digest(state)}, path)


# --------------------------------------------------------------------------- JSON lines

def _loads(line: bytes) -> Any:
    """One JSON line parsed; a ValueError saying why when it is not JSON (also for a nesting too
    deep for the parser, which raises RecursionError)."""
    try:
        return json.loads(line.decode("utf-8"))
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _is_json(line: bytes) -> bool:
    try:
        _loads(line)
    except ValueError:
        return False
    return True


def _repair_tail(handle: IO[bytes]) -> None:
    """End the log open in ``handle`` with a newline: keep a complete unterminated last line,
    drop a cut one."""
    size = handle.seek(0, os.SEEK_END)
    if size == 0:
        return
    handle.seek(size - 1)
    if handle.read(1) == b"\n":
        return
    start = size
    chunk = 4096
    while start > 0:
        step = min(chunk, start)
        handle.seek(start - step)
        newline = handle.read(step).rfind(b"\n")
        if newline >= 0:
            start = start - step + newline + 1
            break
        start -= step
    handle.seek(start)
    tail = handle.read()
    if tail.strip() and _is_json(tail):
        handle.write(b"\n")  # appended: the log is open with O_APPEND
    else:
        handle.truncate(start)
    handle.flush()
    os.fsync(handle.fileno())


def append_jsonl(path: str | Path, record: Any) -> None:
    """Append ``record`` as one strict JSON line to ``path`` (created if needed; non-finite
    floats become ``null``), flushed and fsynced. The log is changed in place, so a link at
    ``path`` is refused (see :func:`open_in_place`)."""
    line = dumps_strict(record).encode("utf-8") + b"\n"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = open_in_place(path, os.O_RDWR | os.O_CREAT | os.O_APPEND)
        with os.fdopen(fd, "r+b") as handle:
            _repair_tail(handle)
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as err:
        raise naming(err, path) from None


def read_jsonl(path: str | Path, missing_ok: bool = False) -> list[Any]:
    """The records of a JSON-lines file, skipping blank lines.

    A final line that does not parse (a writer killed mid-line) is dropped; a bad line anywhere
    else raises :class:`SpeedyNASError` naming ``file:line``. A missing file raises too, unless
    ``missing_ok`` (then the result is empty).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        if missing_ok:
            return []
        raise SpeedyNASError(f"file not found: {path}") from None
    except IsADirectoryError:
        raise SpeedyNASError(f"expected a JSON-lines file, got a directory: {path}") from None
    lines = data.split(b"\n")
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    records = []
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            records.append(_loads(line))
        except ValueError as err:
            if index == last:
                break  # cut short by a killed writer: that record was never committed
            reason = getattr(err, "msg", None) or getattr(err, "reason", None) or str(err)
            raise SpeedyNASError(f"{path}:{index + 1}: corrupt JSON line ({reason})") from None
    return records


# --------------------------------------------------------------------------- checkpoints

def _short(err: BaseException) -> str:
    """The first sentence of an exception's message, with its type."""
    text = " ".join(str(err).split())
    text = text.split(". ")[0].rstrip(".")
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _load_error(path: Path, err: Exception) -> SpeedyNASError:
    text = str(err)
    with open(path, "rb") as handle:
        is_zip = handle.read(4) == b"PK\x03\x04"  # torch.save's format is a zip archive
    if isinstance(err, pickle.UnpicklingError) and "weights only" in text.lower():
        reason = ("its contents are refused by safe loading (weights_only=True): "
                  "corrupted, or not a speedynas checkpoint")
    elif is_zip or isinstance(err, (EOFError, zipfile.BadZipFile)) or "zip archive" in text:
        reason = f"the file is truncated or corrupted ({_short(err)})"
    else:
        reason = f"the file is corrupted or not a checkpoint ({_short(err)})"
    return SpeedyNASError(f"cannot load checkpoint {path}: {reason}")


def _normal(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_normal(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _normal(v) for k, v in value.items()}
    return value


def _meta_mismatches(expected: Mapping[str, Any], meta: Mapping[str, Any],
                     prefix: str) -> list[str]:
    problems = []
    for key, want in expected.items():
        dotted = f"{prefix}.{key}"
        if key not in meta:
            problems.append(f"{dotted} is missing (this run expects {want!r})")
            continue
        have = meta[key]
        if isinstance(want, Mapping) and isinstance(have, Mapping):
            problems.extend(_meta_mismatches(want, have, dotted))
        elif _normal(have) != _normal(want) or isinstance(have, bool) != isinstance(want, bool):
            problems.append(f"{dotted} is {have!r} in the checkpoint but this run expects {want!r}")
    return problems


def load_checkpoint(path: str | Path,
                    expected: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A checkpoint dict written by :func:`save_checkpoint`, loaded safely on CPU
    (``weights_only=True``; never runs pickled code) and verified against its digest (returned
    without it).

    With ``expected``, every (nested) key in it must equal the checkpoint's ``meta`` entry.
    Any problem (missing, empty, truncated, corrupted, damaged, not a dict, no digest, metadata
    mismatch) raises :class:`SpeedyNASError` with a one-line message naming ``path``.
    """
    path = Path(path)
    if not path.exists():
        raise SpeedyNASError(f"checkpoint not found: {path}")
    if not path.is_file():
        raise SpeedyNASError(f"checkpoint path is not a file: {path}")
    if path.stat().st_size == 0:
        raise SpeedyNASError(f"cannot load checkpoint {path}: the file is empty")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except (MemoryError, RecursionError):
            raise
        except Exception as err:  # torch reports bad files with many exception types
            raise _load_error(path, err) from None
    for warning in caught:  # only a successful load's warnings are worth showing
        warnings.warn_explicit(warning.message, warning.category, warning.filename,
                               warning.lineno)
    if not isinstance(obj, dict):
        raise SpeedyNASError(f"not a checkpoint: {path} holds a {type(obj).__name__}, "
                             "expected a dict")
    stored = obj.pop(DIGEST_KEY, None)
    if stored is None:
        raise SpeedyNASError(f"checkpoint {path} holds no digest, so it cannot be verified "
                             "(not written by this version of speedynas)")
    if stored != state_digest(obj):
        raise SpeedyNASError(f"checkpoint {path} is damaged: its contents do not match the "
                             "digest stored in it (the file changed after it was written)")
    if expected is not None:
        meta = obj.get("meta")
        if not isinstance(meta, Mapping):
            raise SpeedyNASError(f"checkpoint {path} has no 'meta' entry to check against "
                                 f"{_normal(dict(expected))!r}")
        problems = _meta_mismatches(expected, meta, "meta")
        if problems:
            raise SpeedyNASError(f"checkpoint {path} does not match this run: "
                                 + "; ".join(problems))
    return obj
