"""The search pipeline, one floor above :mod:`estimators`: candidates, search strategies and the
evaluator they drive within the search's limits, fine-tuning from inherited supernet weights,
the resumable search run (its evaluation runner, scorer and reporter), the retrain ground
truth, ranking metrics, Pareto fronts, reports and plots, and retraining of the top-k.

>>> from speedynas_search import rank_metrics
"""
from __future__ import annotations

from .metrics import Paired, best_top_k, pair_with_truth, rank_metrics, rank_order, top_k
from .pareto import pareto_front
from .plots import log_figures, plot_correlation_vs_budget, plot_pareto, plot_scores
from .report import (
                           format_table,
                           pareto_summary,
                           summarize,
                           write_summary,
)

# Importing the module registers the retrain ground truth.
from . import retrain  # noqa: E402,F401  isort: skip

__all__ = [
    "Paired", "best_top_k",
    "format_table", "log_figures", "pair_with_truth",
    "pareto_front", "pareto_summary", "plot_correlation_vs_budget", "plot_pareto", "plot_scores",
    "rank_metrics", "rank_order", "summarize", "top_k", "write_summary",
]
