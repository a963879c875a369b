"""Entry-point helpers shared by ``train.py`` and ``search.py``.

    def main(argv: list[str]) -> int: ...

    if __name__ == "__main__":
        run_cli(main)

User mistakes (:class:`SpeedyNASError`) and faults of the machine or the user's files
(:class:`OSError`: a read-only or full disk, a missing or unreadable path; :class:`MemoryError`)
end the program with one line ``error: ...`` on stderr and exit status 2, also when they happen
in a background thread (TensorBoard's event writer); Ctrl-C ends it with status 130, and a
second Ctrl-C while the program exits is ignored; anything else is a bug and keeps its
traceback. ``--config`` is read once, when the arguments are parsed.

Importing this module imports no torch, so that ``--help`` answers at once when a script
imports its heavy modules after :func:`parse_run_args` (which takes the schema as an import
path, ``"supernet.train_config:TrainConfig"``, for that).
"""
from __future__ import annotations

import argparse
import atexit
import importlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import NoReturn

from .errors import SpeedyNASError

__all__ = ["EXIT_INTERRUPTED", "EXIT_USAGE", "call_main", "doc_examples", "load_schema",
           "non_negative_int", "parse_run_args", "positive_int", "run_cli", "run_parser"]

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

#: The longest error line printed (the rest is cut, saying how much).
MAX_MESSAGE = 2000

#: How a docstring's example command lines start (:func:`doc_examples`).
COMMANDS = ("python ", "torchrun ")

Main = Callable[[list[str]], "int | None"]


class ThreadFaults:
    """While entered, a background thread's :class:`OSError` or :class:`SpeedyNASError` (a full
    disk under TensorBoard's event writer) is kept for the main thread to report as one line,
    instead of being printed as a traceback; other exceptions go to the previous hook."""

    def __init__(self) -> None:
        self.errors: list[tuple[str, BaseException]] = []

    def _hook(self, args: threading.ExceptHookArgs) -> None:
        if isinstance(args.exc_value, (OSError, SpeedyNASError)):
            self.errors.append((args.thread.name if args.thread else "?", args.exc_value))
        else:
            self._previous(args)

    def __enter__(self) -> ThreadFaults:
        self._previous, threading.excepthook = threading.excepthook, self._hook
        return self

    def __exit__(self, kind: type | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        threading.excepthook = self._previous


def _print_error(message: str) -> int:
    """Print ``error: message`` on one line (cut at :data:`MAX_MESSAGE`); the usage status."""
    sys.stdout.flush()
    text = " ".join(message.split())
    if len(text) > MAX_MESSAGE:
        text = f"{text[:MAX_MESSAGE]}... ({len(text) - MAX_MESSAGE:,} more characters)"
    print(f"error: {text}", file=sys.stderr, flush=True)
    return EXIT_USAGE


def _fault_message(err: BaseException) -> str:
    if isinstance(err, OSError):
        return os_error_message(err)
    return str(err) or type(err).__name__


def call_main(main: Main, argv: Sequence[str] | None = None) -> int:
    """Run ``main(argv)`` and return its exit status (see :func:`run_cli`); never exits."""
    args = list(sys.argv[1:] if argv is None else argv)
    with ThreadFaults() as faults:
        status = _call(main, args)
    if status == 0 and faults.errors:
        name, err = faults.errors[0]
        return _print_error(f"{_fault_message(err)} (in background thread {name})")
    return status


def _call(main: Main, args: list[str]) -> int:
    try:
        status = main(args)
    except SpeedyNASError as err:
        return _print_error(str(err) or type(err).__name__)
    except MemoryError:
        return _print_error("out of memory (MemoryError); give smaller inputs, or run on a "
                            "machine with more memory")
    except KeyboardInterrupt as err:
        sys.stdout.flush()
        message = str(err) or "Ctrl-C; completed checkpoints and results are kept"
        print(f"interrupted: {message}", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader of stdout left (``--list-keys | head``)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as err:  # the machine or the user's files: a full or read-only disk...
        return _print_error(os_error_message(err))
    return 0 if status is None else int(status)


def os_error_message(err: OSError) -> str:
    """One line naming the file(s) and the system's reason, e.g. ``cannot write runs/x/a.json:
    No space left on device``."""
    paths = " -> ".join(str(p) for p in (err.filename, err.filename2) if p is not None)
    reason = err.strerror or " ".join(str(err).split()) or type(err).__name__
    return f"{paths}: {reason}" if paths else f"{reason} ({type(err).__name__})"


def _int_at_least(least: int, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"{value} is below {least}; give an integer of at "
                                         f"least {least}")
    return value


def positive_int(text: str) -> int:
    """An argparse ``type``: an integer of at least 1 (a count: ``--jobs 0`` is refused)."""
    return _int_at_least(1, text)


def non_negative_int(text: str) -> int:
    """An argparse ``type``: an integer of at least 0 (a seed, an index)."""
    return _int_at_least(0, text)


def run_parser(description: str, config_help: str,
               examples: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The arguments ``train.py`` and ``search.py`` share: --run-dir, --config, --list-keys and
    ``section.key=value`` overrides. ``--help`` ends with ``examples`` (command lines); by
    default those of the running script's docstring (:func:`doc_examples`)."""
    if examples is None:
        examples = doc_examples(getattr(sys.modules.get("__main__"), "__doc__", None))
    epilog = "examples:\n" + "\n".join(f"  {line}" for line in examples) if examples else None
    parser = argparse.ArgumentParser(description=description, epilog=epilog,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", type=Path, help="the run directory")
    parser.add_argument("--config", help=config_help)
    parser.add_argument("--list-keys", action="store_true", help="print every config key")
    parser.add_argument("overrides", nargs="*", metavar="section.key=value",
                        help="override one config key (every key: --list-keys)")
    return parser


def doc_examples(doc: str | None) -> list[str]:
    """The command lines of a script's docstring: its indented lines that start with
    ``python`` or ``torchrun``."""
    lines = (line for line in (doc or "").splitlines() if line.startswith((" ", "\t")))
    return [line.strip() for line in lines if line.strip().startswith(COMMANDS)]


def parse_run_args(parser: argparse.ArgumentParser, schema: type | str,
                   argv: Sequence[str]) -> argparse.Namespace | None:
    """Parsed arguments, or None after printing the keys of ``schema`` (a config dataclass, or
    its import path ``"module:Name"``, imported only then) for ``--list-keys``.

    ``args.config`` is the file read once (:class:`speedynas_core.config.ConfigFile`: a pipe or
    process substitution works); a file holding no keys is refused, since it would silently
    mean every default."""
    args = parser.parse_intermixed_args(argv)  # overrides may follow any option
    # After parsing: the config module imports torch (through atomic_io), --help need not wait.
    from .config import format_schema_help, read_config_file
    if args.list_keys:
        print(format_schema_help(load_schema(schema)))
        return None
    if args.run_dir is None:
        parser.error("--run-dir is required")
    if args.config is not None:
        args.config = read_config_file(args.config)
        if args.config.data is None:
            raise SpeedyNASError(f"config file {args.config.path} holds no keys (empty, or "
                                 "comments only); give a config, or leave out --config for "
                                 "the defaults")
    return args


def load_schema(schema: type | str) -> type:
    """``schema`` itself, or the class its import path ``"module:Name"`` names."""
    if not isinstance(schema, str):
        return schema
    module, _, name = schema.partition(":")
    return getattr(importlib.import_module(module), name)


def run_cli(main: Main, argv: Sequence[str] | None = None) -> NoReturn:
    """Run ``main(argv or sys.argv[1:])`` and exit: its status, 2 on bad input, 130 on Ctrl-C.
    The exit handlers ignore Ctrl-C, so that a second one cannot break them (``Exception
    ignored in atexit callback``) after the one-line message."""
    status = call_main(main, argv)
    atexit.register(signal.signal, signal.SIGINT, signal.SIG_IGN)  # the last one runs first
    sys.exit(status)
