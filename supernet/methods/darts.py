"""DARTS (Liu et al. 2019, first order) and DARTS-TSE (Ru et al. 2021): the softmax relaxation."""
from __future__ import annotations

from .base import GradientMethod, TSEObjective, register_method


@register_method("darts")
class DARTS(GradientMethod):
    """First-order DARTS: softmax relaxation, α descends one validation batch's loss per
    weight step."""


@register_method("darts_tse")
class DARTSTSE(TSEObjective):
    """DARTS-TSE (Ru et al. 2021, Alg. 3): softmax relaxation, TSE objective."""
