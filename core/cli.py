"""Entry-point helpers shared by ``train.py`` and ``search.py``.

    def main(argv: list[str]) -> int: ...

    if __name__ == "__main__":
        run_cli(main)

User mistakes (:class:`SpeedyNASError`) and faults of the machine or the user's files
(:class:`OSError`: a read-only or full disk, a missing or unreadable path) end the program with
one line ``error: ...`` on stderr and exit status 2; Ctrl-C ends it with status 130; anything
else is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from .config import format_schema_help
from .errors import SpeedyNASError

__all__ = ["EXIT_INTERRUPTED", "EXIT_USAGE", "call_main", "parse_run_args", "run_cli", "run_parser"]

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

Main = Callable[[list[str]], "int | None"]


def call_main(main: Main, argv: Sequence[str] | None = None) -> int:
    """Run ``main(argv)`` and return its exit status (see :func:`run_cli`); never exits."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        status = main(args)
    except SpeedyNASError as err:
        sys.stdout.flush()
        message = " ".join(str(err).split()) or type(err).__name__
        print(f"error: {message}", file=sys.stderr, flush=True)
        return EXIT_USAGE
    except KeyboardInterrupt as err:
        sys.stdout.flush()
        message = str(err) or "Ctrl-C; completed checkpoints and results are kept"
        print(f"interrupted: {message}", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader of stdout left (``--list-keys | head``)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as err:  # the machine or the user's files: a full or read-only disk...
        sys.stdout.flush()
        print(f"error: {os_error_message(err)}", file=sys.stderr, flush=True)
        return EXIT_USAGE
    return 0 if status is None else int(status)


def os_error_message(err: OSError) -> str:
    """One line naming the file(s) and the system's reason, e.g. ``cannot write runs/x/a.json:
    No space left on device``."""
    paths = " -> ".join(str(p) for p in (err.filename, err.filename2) if p is not None)
    reason = err.strerror or " ".join(str(err).split()) or type(err).__name__
    return f"{paths}: {reason}" if paths else f"{reason} ({type(err).__name__})"


def run_parser(description: str, config_help: str) -> argparse.ArgumentParser:
    """The arguments ``train.py`` and ``search.py`` share: --run-dir, --config, --list-keys and
    ``section.key=value`` overrides."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--run-dir", type=Path, help="the run directory")
    parser.add_argument("--config", help=config_help)
    parser.add_argument("--list-keys", action="store_true", help="print every config key")
    parser.add_argument("overrides", nargs="*", metavar="section.key=value")
    return parser


def parse_run_args(parser: argparse.ArgumentParser, schema: type,
                   argv: Sequence[str]) -> argparse.Namespace | None:
    """Parsed arguments, or None after printing the schema's keys for ``--list-keys``."""
    args = parser.parse_intermixed_args(argv)  # overrides may follow any option
    if args.list_keys:
        print(format_schema_help(schema))
        return None
    if args.run_dir is None:
        parser.error("--run-dir is required")
    return args


def run_cli(main: Main, argv: Sequence[str] | None = None) -> NoReturn:
    """Run ``main(argv or sys.argv[1:])`` and exit: its status, 2 on bad input, 130 on Ctrl-C."""
    sys.exit(call_main(main, argv))
