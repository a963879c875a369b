"""The one exception type for bad user input anywhere in speedynas, and how a value it names is
shown.

Command-line entry points catch :class:`SpeedyNASError` and print its message as a single line
with exit status 2; any other exception is a bug and keeps its traceback.
"""
from __future__ import annotations

import reprlib
from typing import Any

__all__ = ["SpeedyNASError", "shown"]


class SpeedyNASError(ValueError):
    """A user-facing input error (arch text, config, path, checkpoint, data folder)."""


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlong = 3, 200, 200, 200


def shown(value: Any, limit: int = 80) -> str:
    """``value``'s repr in at most ``limit`` characters, for an error message. Built with
    :mod:`reprlib`, so a long string, a long list or a deep nesting is cut before it is
    rendered, not after (a user's input may be hundreds of megabytes)."""
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."
