"""The Python API for notebooks: a trained run's supernet, its archs fine-tuned and scored
exactly as ``search.py`` does it, and a list of archs ranked.

Every number comes from the search's own parts (the same config, fixed batches, fine-tune and
estimators), so ``run.evaluate(arch)`` gives the record ``search.py`` writes for ``arch`` with
the same config and torch threads."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from torch import nn

from search_spaces import Arch, SearchSpace
from speedynas_core.config import load_config
from speedynas_core.runtime import resolve_device
from speedynas_search.metrics import rank_order
from speedynas_search.results_store import Record
from speedynas_search.search_config import SearchConfig, search_context
from speedynas_search.search_run import Search
from supernet.base import Supernet
from supernet.run_dir import load_run_config


class Run:
    """A trained run opened for searching (see :func:`load_run`)."""

    def __init__(self, search: Search) -> None:
        self._search = search
        self.config: SearchConfig = search.cfg
        self.threads = search.cfg.threads or torch.get_num_threads()

    @property
    def space(self) -> SearchSpace:
        """The run's search space (``run.space.parse(text)``, ``run.space.sample(rng)``)."""
        return self._search.net.space

    @property
    def supernet(self) -> Supernet:
        """The trained supernet, with the weights the config asks for (trained or EMA)."""
        return self._search.net

    def arch(self, arch: Arch | str) -> Arch:
        """``arch`` as an arch value of the run's space (text is parsed)."""
        return self.space.parse(arch) if isinstance(arch, str) else arch

    def extract(self, arch: Arch | str) -> nn.Module:
        """The stand-alone sub-network of ``arch`` holding copies of the supernet's weights."""
        return self.supernet.extract(self.arch(arch))

    def evaluate(self, arch: Arch | str) -> Record:
        """Fine-tune ``arch`` from its inherited weights for max(B) steps and score it with
        every configured estimator at every B (``record.score("tse", 100)``); its trajectory is
        ``record.trajectory``. Sets torch's threads to the run's (the numbers depend on it)."""
        torch.set_num_threads(self.threads)
        runner = self._search.runner
        return runner.evaluate(0, self.arch(arch), runner.own)

    def rank(self, archs: Iterable[Arch | str], estimator: str | None = None,
             budget: int | None = None) -> list[tuple[str, float]]:
        """``archs`` evaluated and ranked best first by ``estimator`` (default: the first
        configured) at B = ``budget`` (default: max(finetune.budgets)), as (arch, score) pairs;
        non-finite scores last, ties in the given order."""
        estimator = estimator or self._search.scorer.estimators[0].name
        budget = max(self.config.finetune.budgets) if budget is None else budget
        scores = [(str(self.arch(a)), self.evaluate(a).score(estimator, budget)) for a in archs]
        return [scores[i] for i in rank_order([s for _, s in scores])]

    def truth(self, arch: Arch | str) -> float | None:
        """``arch``'s true accuracy from the configured ground truth (``None``: unknown or no
        ground truth configured)."""
        truth = self._search.truth
        return truth.lookup(self.arch(arch)) if truth is not None else None


def load_run(run_dir: str | Path, config: str | Path | None = None,
             overrides: Sequence[str] = (), device: str | None = None) -> Run:
    """Open the trained run in ``run_dir`` with the search config ``config`` (a YAML file, as
    ``search.py --config``; ``None``: the defaults) and ``section.key=value`` ``overrides``; the
    supernet is loaded on ``device`` (default: the config's ``device``). Nothing is written."""
    run_dir = Path(run_dir)
    cfg = load_config(SearchConfig, None if config is None else str(config), list(overrides),
                      context=search_context(load_run_config(run_dir)))
    return Run(Search(run_dir, cfg, device=resolve_device(device or cfg.device)))
