"""The candidate architectures of a search: a seeded uniform draw or a file of arch strings."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from speedynas_core.errors import SpeedyNASError
from speedynas_core.inputs import CANDIDATES_LIMIT, read_input_text
from search_spaces import Arch, ArchParseError, SearchSpace

from .search_config import CandidatesConfig


#: The longest line of a candidates file (a DARTS genotype takes about 400 characters).
MAX_LINE = 10_000


def read_candidates(space: SearchSpace, path: str | Path) -> list[Arch]:
    """One arch per line (blank lines and ``#`` comments skipped); errors name the line.

    Lines end at ``\n`` (or ``\r\n``) and nowhere else: other Unicode line breaks inside a
    line are part of it (and refused by the parser as such)."""
    path = Path(path)
    contents = read_input_text(path, "candidates file", CANDIDATES_LIMIT)
    archs = []
    for number, line in enumerate(contents.split("\n"), start=1):
        if len(line) > MAX_LINE:
            raise SpeedyNASError(f"{path}:{number}: the line holds {len(line):,} characters; "
                                 f"an arch string is at most {MAX_LINE:,}")
        text = line.removesuffix("\r").strip(" \t")
        if not text or text.startswith("#"):
            continue
        try:
            archs.append(space.parse(text))
        except ArchParseError as err:
            raise SpeedyNASError(f"{path}:{number}: {err}") from None
    if not archs:
        raise SpeedyNASError(f"candidates file {path} holds no architectures")
    return archs


def draw_candidates(space: SearchSpace, cfg: CandidatesConfig) -> list[Arch]:
    """The configured candidates: read from ``cfg.file`` or drawn uniformly with ``cfg.seed``,
    then filtered (degenerate cells, duplicates) as configured."""
    if cfg.file is not None:
        return _filtered(space, read_candidates(space, cfg.file), cfg)
    available = distinct_archs(space, cfg)
    if available is not None and cfg.num > available:
        raise SpeedyNASError(f"candidates.num={cfg.num} asks for more {cfg.unique}-unique archs "
                             f"than the {space.name} space holds ({available} with "
                             f"skip_degenerate={cfg.skip_degenerate}); ask for at most "
                             f"{available}")
    rng = np.random.default_rng(cfg.seed)
    keep: list[Arch] = []
    seen: set[str] = set()
    for _ in range(1000 * cfg.num):
        arch = space.sample(rng)
        if _accept(space, arch, cfg, seen):
            keep.append(arch)
            if len(keep) == cfg.num:
                return keep
    raise SpeedyNASError(f"could not draw candidates.num={cfg.num} candidates with "
                         f"unique={cfg.unique} and skip_degenerate={cfg.skip_degenerate}; "
                         f"ask for fewer")


def distinct_archs(space: SearchSpace, cfg: CandidatesConfig) -> int | None:
    """How many archs the draw can yield when duplicates are dropped (``None``: duplicates are
    kept, or the space is too large to enumerate)."""
    if cfg.unique == "none":
        return None
    try:
        archs = space.enumerate()
        seen: set[str] = set()
        return sum(_accept(space, arch, cfg, seen) for arch in archs)
    except NotImplementedError:
        return None


def _filtered(space: SearchSpace, archs: list[Arch], cfg: CandidatesConfig) -> list[Arch]:
    seen: set[str] = set()
    return [arch for arch in archs if _accept(space, arch, cfg, seen)]


def _accept(space: SearchSpace, arch: Arch, cfg: CandidatesConfig, seen: set[str]) -> bool:
    """Whether ``arch`` passes the filters (``seen`` collects the duplicate keys)."""
    if cfg.skip_degenerate and space.is_degenerate(arch):
        return False
    if cfg.unique == "none":
        return True
    key = str(arch) if cfg.unique == "exact" else space.canonical_form(arch)
    if key in seen:
        return False
    seen.add(key)
    return True
