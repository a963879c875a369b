"""The documentation stays true to the tree: every relative link in README.md and docs/*.md
resolves (anchors included), every repository path they name exists, docs/config.md is what
scripts/config_reference.py generates from the schemas now, and CI runs the README's test
command the way the quick start runs (one thread per process)."""
from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest

from speedynas_core.config import format_schema_help
from speedynas_search.search_config import SearchConfig
from supernet.train_config import TrainConfig

from .conftest import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*$", re.MULTILINE)
# A path from the repository root, as the docs name files and folders.
TOP = ("configs", "scripts", "experiments", "benchmarks", "results", "tests", "docs", "estimators",
       "search_spaces", "supernet", "speedynas_core", "speedynas_data", "speedynas_search")
PATH = re.compile(rf"(?<![\w./-])((?:{'|'.join(TOP)})/[\w./-]*)(?![\w*{{<])")
PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9_]*(\.\w+)?$")  # NAME.py, RUN, D1.csv
KNOWN_CAPS = {"NOTES.md", "README.md"}


def slug(heading: str) -> str:
    """The anchor a heading gets: lowercase, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def links(path: Path) -> list[str]:
    """The link targets of a markdown file, outside fenced code."""
    return LINK.findall(FENCE.sub("", path.read_text()))


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(doc):
    broken = []
    for target in links(doc):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        dest = (doc.parent / file_part).resolve() if file_part else doc
        if not dest.exists():
            broken.append(f"{target} (no file {dest})")
        elif anchor and dest.suffix == ".md" and anchor not in {
                slug(h) for h in HEADING.findall(FENCE.sub("", dest.read_text()))}:
            broken.append(f"{target} (no heading #{anchor} in {dest.name})")
    assert not broken, f"{doc.relative_to(REPO)}: broken links: {broken}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_repository_path_named_exists(doc):
    missing = []
    for path in PATH.findall(doc.read_text()):
        path = path.rstrip(".")
        if any(PLACEHOLDER.match(part) and part not in KNOWN_CAPS for part in path.split("/")):
            continue
        if not (REPO / path).exists():
            missing.append(path)
    assert not missing, f"{doc.relative_to(REPO)} names paths that do not exist: {missing}"


def test_docs_cited_by_the_code_exist():
    cited: dict[str, list[str]] = {}
    for folder in ("speedynas_core", "speedynas_data", "search_spaces", "supernet", "estimators",
                   "speedynas_search", "experiments", "benchmarks", "scripts"):
        for source in (REPO / folder).rglob("*.py"):
            for name in re.findall(r"\bdocs/[\w./-]+\.md", source.read_text()):
                cited.setdefault(name, []).append(str(source.relative_to(REPO)))
    assert "speedynas_search/finetune.py" in cited["docs/method.md"]  # its fine-tune protocol
    missing = {name: sources for name, sources in cited.items() if not (REPO / name).exists()}
    assert not missing, f"docs cited by the code but missing: {missing}"


def test_the_config_reference_is_current():
    reference = runpy.run_path(str(REPO / "scripts" / "config_reference.py"))
    current = (REPO / "docs" / "config.md").read_text()
    assert current == reference["render"](), (
        "docs/config.md is out of date: run python scripts/config_reference.py")


@pytest.mark.parametrize("schema", [TrainConfig, SearchConfig], ids=lambda s: s.__name__)
def test_the_reference_keeps_every_part_of_every_key(schema):
    parse = runpy.run_path(str(REPO / "scripts" / "config_reference.py"))["parse"]
    for line in format_schema_help(schema).splitlines():
        key = parse(line)
        rebuilt = (f"{key.name}: {key.type} = {key.default}"
                   + (f"  [{key.range}]" if key.range else "") + (f"  {key.help}" if key.help else "")
                   + (f"  ({key.when})" if key.when else ""))
        assert rebuilt == line


def test_ci_runs_the_readme_test_command_with_one_thread_per_process():
    readme, ci = (REPO / "README.md").read_text(), (REPO / ".ci" / "run").read_text()
    quickstart = (REPO / "scripts" / "quickstart.sh").read_text()
    assert "bash .ci/run" in readme and "python -m pytest -q" in readme
    assert '"$VENV/bin/python" -m pytest -q\n' in ci
    threads = "export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}"
    assert threads in ci and threads in quickstart
    assert ci.index(threads) < ci.index("-m pytest")
