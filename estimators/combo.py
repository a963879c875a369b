"""Combination estimators: several member estimators merged over the whole candidate set.

Members are per-candidate estimators (any registered estimator that is not itself ``joint``);
the combination needs what its members need (``needs`` is their union, so the fine-tune records
it, and zero-cost members are measured).

``combo`` (``method="rank_mean"``, the default): each member's scores are ranked over the
candidate set (:func:`set_ranks`: average ranks for ties, larger score = larger rank,
non-finite scores tie at the lowest ranks) and the combination is the mean of the members'
ranks. Label-free; the DESIGN notes measured a plain rank average of TSE and parameter count
beating every member.

``method="learned"`` (also registered as ``combo_learned``): a predictor of
:mod:`speedynas_predictors` (``model``: ``gbt``, scikit-learn's gradient boosting, the default;
``rf``; ``ensemble``) maps the members' set ranks (divided by the set size), with
``encoding=True`` the arch's encoding from its search space (NB201: the one-hot op of each
edge) and with ``graph=True`` its graph features (:meth:`search_spaces.SearchSpace.graph_features`),
to the true accuracy. It is fitted on ``fit_size`` candidates with known ground truth (a
seeded choice among the distinct archs that have one: ``fit_size`` labels) and predicts the
rest; every candidate whose arch was fitted on scores NaN, so it is never reported or evaluated
(the report leaves it out of this estimator's metrics).

Several combinations can run in one search under inline names: ``combo(tse+params)`` or
``combo_learned(sovl+params)`` (:func:`parse_inline`; commas also separate members) name their
members in the estimator name itself, and the combination reports under that name.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

import numpy as np
from scipy.stats import rankdata

from speedynas_core.errors import SpeedyNASError
from speedynas_core.plugins import Option
from speedynas_predictors import PREDICTORS, create_predictor

from .registry import Estimator, create_estimator, register_estimator
from .trajectory import Candidate, Trajectory

__all__ = ["Combo", "LearnedCombo", "parse_inline", "rank_mean", "set_ranks"]

Method = Literal["rank_mean", "learned"]
Members = Annotated[Sequence["str | Estimator"], Option(
    type=list[str], help="member estimators (inline names such as combo(tse+params) give "
                         "their own)")]
FitSize = Annotated[int, Option(min=2, help="learned: archs with ground truth fitted on (never "
                                            "scored or evaluated)")]
Seed = Annotated[int, Option(min=0, help="learned: seed of the fit set and the model")]
Encoding = Annotated[bool, Option(help="learned: add the arch's encoding from its search space "
                                       "to the members' ranks")]
Graph = Annotated[bool, Option(help="learned: add the arch's graph features from its search "
                                    "space (op counts, paths, degrees)")]
Model = Annotated[Literal["gbt", "rf", "ensemble", "prior"], Option(
    help="learned: the predictor (speedynas_predictors) mapping the features to the truth; "
         "prior: gbt's ranking shrunk towards the first member's")]
METHODS = ("rank_mean", "learned")


def set_ranks(scores: Sequence[float]) -> np.ndarray:
    """Ranks 1..n of ``scores`` within the set: larger score = larger rank, ties share their
    average rank, non-finite scores (NaN, +-inf) tie below every finite one."""
    values = np.asarray(scores, dtype=float)
    return rankdata(np.where(np.isfinite(values), values, -np.inf), method="average")


def rank_mean(columns: Sequence[Sequence[float]]) -> list[float]:
    """Per candidate, the mean over members (``columns[m][i]`` = member m's score of candidate
    i) of the member's :func:`set_ranks`."""
    if not columns:
        raise ValueError("rank_mean needs at least one member")
    return [float(v) for v in np.mean([set_ranks(c) for c in columns], axis=0)]


_INLINE = re.compile(r"(combo|combo_learned)\((.*)\)")


def parse_inline(name: str) -> tuple[str, list[str]] | None:
    """``"combo(tse+params)"`` (or ``"combo(tse, params)"``) -> ``("combo", ["tse", "params"])``;
    ``None`` for a name without parentheses (a plain registered estimator)."""
    match = _INLINE.fullmatch(name.replace(" ", ""))
    if match is None:
        if "(" in name or ")" in name:
            raise SpeedyNASError(f"estimator name {name!r} is not a registered name or an inline "
                                 "combination such as combo(tse+params)")
        return None
    members = re.split(r"[+,]", match.group(2))
    if not all(members):
        raise SpeedyNASError(f"estimator {name!r}: list members between the parentheses, "
                             "separated by '+', e.g. combo(tse+params)")
    return match.group(1), members


def inline_name(base: str, members: Sequence[str]) -> str:
    """The canonical inline name of ``base`` over ``members``: ``combo(tse+params)``."""
    return f"{base}({'+'.join(members)})"


def _member(combo: str, member: str | Estimator) -> Estimator:
    estimator = create_estimator(member) if isinstance(member, str) else member
    if not isinstance(estimator, Estimator):
        raise SpeedyNASError(f"estimator {combo!r}: member {member!r} is not an estimator")
    if estimator.joint:
        raise SpeedyNASError(f"estimator {combo!r}: member {estimator.name!r} scores only whole "
                             "sets; members must score candidates one at a time")
    return estimator


@register_estimator("combo")
class Combo(Estimator):
    """Combines member estimators over the candidate set (mean rank, or a learned model)."""

    joint = True

    def __init__(self, members: Members = ("tse", "params"),
                 method: Annotated[Method, Option(help="mean of the members' ranks, or a model "
                                                       "fitted on ground truth")] = "rank_mean",
                 fit_size: FitSize = 20, seed: Seed = 0, encoding: Encoding = False,
                 graph: Graph = False, model: Model = "gbt") -> None:
        if isinstance(members, str) or not members:
            raise SpeedyNASError(f"estimator {self.name!r}: option 'members' must list at least "
                                 f"one estimator, got {members!r}")
        if method not in METHODS:
            raise SpeedyNASError(f"estimator {self.name!r}: option 'method' must be one of "
                                 f"{', '.join(METHODS)}, got {method!r}")
        for option, value, low in (("fit_size", fit_size, 2), ("seed", seed, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise SpeedyNASError(f"estimator {self.name!r}: option {option!r} must be an "
                                     f"integer >= {low}, got {value!r}")
        self.members = [_member(self.name, m) for m in members]
        for option, value in (("encoding", encoding), ("graph", graph),
                              ("model", model != "gbt")):
            if value and method != "learned":
                raise SpeedyNASError(f"estimator {self.name!r}: option {option!r} applies to "
                                     "method=learned only")
        if model not in PREDICTORS:
            raise SpeedyNASError(f"estimator {self.name!r}: option 'model' must be one of "
                                 f"{', '.join(PREDICTORS.names())}, got {model!r}")
        self.method, self.fit_size, self.seed, self.encoding = method, fit_size, seed, encoding
        self.graph, self.model = graph, model
        self.needs = frozenset().union(*(m.needs for m in self.members))
        self.learned = method == "learned"

    @property
    def options(self) -> dict[str, Any]:
        out: dict[str, Any] = {"members": "+".join(m.describe() for m in self.members),
                               "method": self.method}
        if self.method == "learned":
            out.update(fit_size=self.fit_size, seed=self.seed, encoding=self.encoding,
                       graph=self.graph, model=self.model)
        return out

    def min_budget(self) -> int:
        return max(m.min_budget() for m in self.members)

    def check_budget(self, budget: int) -> None:
        super().check_budget(budget)
        for member in self.members:
            member.check_budget(budget)

    def measurers(self) -> list[Estimator]:
        return [m for member in self.members for m in member.measurers()]

    def score_set(self, trajectories: Sequence[Trajectory], candidates: Sequence[Candidate],
                  budget: int, truths: Mapping[str, float | None] | None = None) -> list[float]:
        self.check_budget(budget)
        columns = [m.score_set(trajectories, candidates, budget) for m in self.members]
        if self.method == "rank_mean":
            return rank_mean(columns)
        return self._learned(columns, candidates, truths)

    def _learned(self, columns: list[list[float]], candidates: Sequence[Candidate],
                 truths: Mapping[str, float | None] | None) -> list[float]:
        """Fit on ``fit_size`` archs with ground truth, predict the others (fitted: NaN)."""
        if truths is None:
            raise SpeedyNASError(f"estimator {self.name!r} is learned: it needs ground truth "
                                 "(set ground_truth.table)")
        first: dict[str, int] = {}
        for i, c in enumerate(candidates):
            truth = truths.get(c.arch)
            if truth is not None and math.isfinite(truth):
                first.setdefault(c.arch, i)
        if len(first) <= self.fit_size:
            raise SpeedyNASError(f"estimator {self.name!r} fits on fit_size={self.fit_size} "
                                 f"archs with ground truth and is evaluated on the others, but "
                                 f"only {len(first)} distinct archs have one; lower the fit size")
        rng = np.random.default_rng(self.seed)
        fit_archs = set(rng.choice(sorted(first), size=self.fit_size, replace=False).tolist())
        features = np.column_stack([set_ranks(c) / len(candidates) for c in columns])
        for option, field in (("encoding", "encoding"), ("graph", "graph")):
            if not getattr(self, option):
                continue
            if any(getattr(c, field) is None for c in candidates):
                raise SpeedyNASError(f"estimator {self.name!r}: {option}=true needs the arch "
                                     f"{field} features of every candidate, and this search "
                                     "space defines none")
            features = np.column_stack([features, [getattr(c, field) for c in candidates]])
        fit_rows = [first[a] for a in sorted(fit_archs)]
        predictor = create_predictor(self.model, seed=self.seed)
        predictor.fit(features[fit_rows], [truths[candidates[i].arch] for i in fit_rows])
        predicted = predictor.predict(features).mean
        return [math.nan if c.arch in fit_archs else float(p)
                for c, p in zip(candidates, predicted)]


@register_estimator("combo_learned")
class LearnedCombo(Combo):
    """``combo`` with ``method="learned"`` (to report it beside a rank-mean ``combo``)."""

    def __init__(self, members: Members = ("tse", "params"), fit_size: FitSize = 20,
                 seed: Seed = 0, encoding: Encoding = False, graph: Graph = False,
                 model: Model = "gbt") -> None:
        super().__init__(members, "learned", fit_size, seed, encoding, graph, model)

