"""TensorBoard event logs whose disk faults name their folder.

TensorBoard's ``SummaryWriter`` writes from a background thread and re-raises that thread's
``OSError`` (a full disk) in the caller without a file name, so the one-line error would say
only "No space left on device". :class:`EventLog` is the writer with every call's ``OSError``
naming the log's folder.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from torch.utils.tensorboard import SummaryWriter

from .atomic_io import naming

__all__ = ["EventLog"]


class EventLog:
    """A ``SummaryWriter`` on ``directory`` (same methods and keyword arguments)."""

    def __init__(self, directory: str | Path, **options: Any) -> None:
        self.directory = Path(directory)
        with self._naming():
            self._writer = SummaryWriter(str(self.directory), **options)

    @contextlib.contextmanager
    def _naming(self) -> Iterator[None]:
        try:
            yield
        except OSError as err:
            raise naming(err, self.directory, "cannot write the event log") from None

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._writer, name)
        if not callable(method):
            return method

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._naming():
                return method(*args, **kwargs)
        return call

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
