"""Write docs/config.md: every config key of train.py and search.py, grouped by section, with
its type, default, range and help, generated from the schemas (the lines ``--list-keys``
prints), so that the reference cannot drift from the code.

    python scripts/config_reference.py           # rewrite docs/config.md
    python scripts/config_reference.py --check   # exit 1 if docs/config.md is out of date
"""
from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from speedynas_core.config import format_schema_help
from speedynas_search.search_config import SearchConfig
from supernet.train_config import TrainConfig

OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "config.md"
COMMAND = "python scripts/config_reference.py"

# One --list-keys line: ``key: type = default  [range]  help  (when)``; parts are separated by
# two spaces, which no type, default or help holds.
LINE = re.compile(r"(?P<key>\S+): (?P<type>.+?) = (?P<default>.*?)"
                  r"(?:  \[(?P<range>must be [^\]]*)\])?(?:  (?P<help>.*?))?"
                  r"(?:  \((?P<when>[^()]*)\))?")

INTRO = f"""# Configuration reference

Generated from the config schemas by `{COMMAND}`; do not edit it by
hand. After changing a key, run that command: the test suite fails until this file matches
the code.
`python train.py --list-keys` and `python search.py --list-keys` print the same keys.

Every key can be set in a YAML config (`--config FILE`, sections as nested mappings) or on the
command line as `section.key=value` (lists as `"finetune.budgets=[100,200]"`). Unknown keys,
wrong types and values out of range are refused before any work starts, naming the key. A key
marked *only when ...* belongs to one plugin: it exists only when that plugin is chosen (for
example `model.N` for `model.space=nb201`) and is refused otherwise.
"""


@dataclass(frozen=True)
class Key:
    """One config key as ``--list-keys`` describes it."""

    name: str
    type: str
    default: str
    range: str
    help: str
    when: str

    @property
    def section(self) -> str:
        """The top-level section (``data`` for ``data.root``); ``""`` for a top-level key."""
        return self.name.split(".")[0] if "." in self.name else ""


def parse(line: str) -> Key:
    """The parts of one ``--list-keys`` line."""
    match = LINE.fullmatch(line)
    if match is None:
        raise ValueError(f"not a --list-keys line: {line!r}")
    return Key(*(match[part] or "" for part in ("key", "type", "default", "range", "help",
                                                 "when")))


def schema_keys(schema: type) -> list[Key]:
    """Every key of ``schema``, in ``--list-keys`` order."""
    return [parse(line) for line in format_schema_help(schema).splitlines()]


def _code(text: str) -> str:
    return f"`{text}`" if text else ""


def _row(key: Key) -> str:
    """One table row (a ``|`` inside a cell is escaped, as tables need)."""
    description = key.help
    if key.when:  # ``space=darts``, or ``when names lists combo``
        when = key.when.removeprefix("when ") if key.when.startswith("when ") else _code(key.when)
        description = f"*only when {when}*" + (f": {key.help}" if key.help else "")
    cells = [_code(key.name), key.type, _code(key.default), key.range.removeprefix("must be "),
             description]
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def command_section(title: str, keys: list[Key]) -> list[str]:
    """A ``## title`` part: one table per section, in the order the sections first appear."""
    sections: dict[str, list[Key]] = {}
    for key in keys:
        sections.setdefault(key.section, []).append(key)
    lines = [f"## {title}", ""]
    for section, members in sections.items():
        lines += [f"### {section or 'top level'}", "",
                  "| key | type | default | range | description |",
                  "|---|---|---|---|---|", *map(_row, members), ""]
    return lines


def render() -> str:
    """The text of docs/config.md."""
    lines = [INTRO]
    lines += command_section("train.py (supernet training)", schema_keys(TrainConfig))
    lines += command_section("search.py (search and ranking)", schema_keys(SearchConfig))
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="only check that docs/config.md is current (exit 1 if not)")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = OUTPUT.exists() and OUTPUT.read_text() == text
        print(f"{OUTPUT} is {'current' if current else f'out of date: run {COMMAND}'}")
        return 0 if current else 1
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
