"""A search's folder: where it is, claiming it, and the config and candidates that a resumed
search must match."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from speedynas_core.atomic_io import atomic_write_text
from speedynas_core.config import config_diff, load_config, save_config
from speedynas_core.errors import SpeedyNASError
from speedynas_core.locks import claim_directory
from search_spaces import Arch

from .results_store import ResultsStore
from .search_config import SearchConfig


def search_dir(run_dir: Path, cfg: SearchConfig) -> Path:
    """Where a search of ``run_dir`` writes."""
    return run_dir / "search" / cfg.name if cfg.name else run_dir / "search"


def changeable_on_resume(key: str) -> bool:
    """Whether config ``key`` may change when a search is resumed: the finished candidates are
    rescored from their stored trajectories (estimator choices and options, ground truth),
    retraining has its own cache, report settings change only the summary, and a limit may
    grow (the strategy goes on) or shrink (evaluations beyond it are left out); anything else
    changes the trajectories themselves."""
    return key.startswith(("estimators.", "ground_truth.", "retrain.", "progress", "plugins",
                           "limit.", "report."))


def prepare_out_dir(out_dir: Path, cfg: SearchConfig, candidates: list[Arch],
                    context: dict[str, Any]) -> None:
    """Save config and candidates, or check that a search being resumed used the same ones
    (keys :func:`changeable_on_resume` may differ; anything may while no candidate has
    finished); ``context`` is the config's load context. ``threads: null`` is resolved to the
    recorded value (a new search: this process's torch default).

    ``out_dir`` is claimed first (:func:`speedynas_core.locks.claim_directory`): a directory
    that is neither new, empty nor a search's is refused; a search made before search dirs were
    marked (it holds results or a summary) gets its marker."""
    claim_directory(out_dir, "search",
                    lambda d: ResultsStore(d).started() or (d / "summary.json").exists(),
                    "use another name=...")
    text = "".join(f"{arch}\n" for arch in candidates)
    saved_cfg, saved_candidates = out_dir / "config.yaml", out_dir / "candidates.txt"
    started = ResultsStore(out_dir).started()
    saved = (load_config(SearchConfig, saved_cfg, context=context, trust_plugins=False)
             if saved_cfg.exists() and started else None)
    if cfg.threads is None:  # recorded at the first run, kept by every resume
        cfg = replace(cfg, threads=saved.threads if saved else torch.get_num_threads())
    if saved is not None:  # no results yet: a refused first try, start afresh
        changed = [key for key in config_diff(saved, cfg) if not changeable_on_resume(key)]
        if changed:
            raise SpeedyNASError(f"{out_dir} holds a search with a different config (differs in: "
                                 f"{', '.join(changed)}); use another name=... to keep both")
        if saved_candidates.exists() and saved_candidates.read_text() != text:
            raise SpeedyNASError(f"the candidates no longer match {saved_candidates} (candidates "
                                 "file changed?); use another name=...")
    save_config(cfg, saved_cfg)
    atomic_write_text(saved_candidates, text)


def recorded_threads(out_dir: Path, context: dict[str, Any]) -> int:
    """The torch threads a search's saved config records (see :func:`prepare_out_dir`)."""
    return load_config(SearchConfig, out_dir / "config.yaml", context=context,
                       trust_plugins=False).threads
