"""Training-speed estimators, ground-truth sources, ranking metrics and search reports.

>>> from estimators import Candidate, Trajectory, create_estimator
>>> t = Trajectory(train_losses=[2.0, 1.5, 1.0, 0.5])
>>> create_estimator("tse").score(t, Candidate("arch", params=1, flops=1), budget=3)
-4.5
"""
from __future__ import annotations

from .ground_truth import (GROUND_TRUTHS, GroundTruth, create_ground_truth, list_ground_truths,
                           lookup_key, register_ground_truth)
from .metrics import Paired, best_top_k, pair_with_truth, rank_metrics, rank_order, top_k
from .pareto import pareto_front
from .registry import (ESTIMATORS, Estimator, create_estimator, list_estimators, needed_records,
                       register_estimator, zero_cost_measurers)
from .report import (format_table, log_figures, pareto_summary, plot_correlation_vs_budget,
                     plot_pareto, plot_scores, summarize, write_summary)
from .trajectory import FINE_TUNE_RECORDS, RECORDS, Candidate, Trajectory

# Importing the modules registers the built-in, zero-cost and combination estimators and the
# retrain ground truth.
from . import builtin, combo, retrain, zero_cost  # noqa: E402,F401  isort: skip

__all__ = [
    "Candidate", "ESTIMATORS", "Estimator", "FINE_TUNE_RECORDS", "GROUND_TRUTHS", "GroundTruth",
    "Paired", "RECORDS", "Trajectory", "best_top_k", "create_estimator", "create_ground_truth",
    "format_table", "list_estimators", "list_ground_truths", "log_figures", "lookup_key",
    "needed_records", "pair_with_truth", "pareto_front", "pareto_summary",
    "plot_correlation_vs_budget", "plot_pareto", "plot_scores", "rank_metrics", "rank_order",
    "register_estimator", "register_ground_truth", "summarize", "top_k", "write_summary",
    "zero_cost_measurers",
]
