"""The search pipeline, one floor above :mod:`estimators`: candidates, search strategies and the
budgeted evaluator they drive, fine-tuning from inherited supernet weights, the resumable
search run, ground-truth sources, ranking metrics, Pareto
fronts, reports and plots, and retraining of the top-k.

>>> from search_pipeline import create_ground_truth, rank_metrics
"""
from __future__ import annotations

from .ground_truth import (
                           GROUND_TRUTHS,
                           GroundTruth,
                           create_ground_truth,
                           list_ground_truths,
                           lookup_key,
                           register_ground_truth,
)
from .metrics import Paired, best_top_k, pair_with_truth, rank_metrics, rank_order, top_k
from .pareto import pareto_front
from .report import (
                           format_table,
                           log_figures,
                           pareto_summary,
                           plot_correlation_vs_budget,
                           plot_pareto,
                           plot_scores,
                           summarize,
                           write_summary,
)

# Importing the modules registers the retrain and nb201 ground truths and the table estimator.
from . import nb201_table, retrain, table_estimator  # noqa: E402,F401  isort: skip

__all__ = [
    "GROUND_TRUTHS", "GroundTruth", "Paired", "best_top_k", "create_ground_truth",
    "format_table", "list_ground_truths", "log_figures", "lookup_key", "pair_with_truth",
    "pareto_front", "pareto_summary", "plot_correlation_vs_budget", "plot_pareto", "plot_scores",
    "rank_metrics", "rank_order", "register_ground_truth", "summarize", "top_k", "write_summary",
]
