"""DrNAS (Chen et al. 2021) and DrNAS-TSE: the Dirichlet relaxation.

DrNAS's KL regulariser towards a Dirichlet prior and its progressive schedule are not
implemented; α is regularised by the arch optimizer's weight decay alone.
"""
from __future__ import annotations

from .base import GradientMethod, Relaxation, TSEObjective, register_method


@register_method("drnas")
class DrNAS(GradientMethod):
    """DrNAS: Dirichlet relaxation, α descends one validation batch's loss per weight step."""

    relaxation: Relaxation = "dirichlet"


@register_method("drnas_tse")
class DrNASTSE(TSEObjective):
    """DrNAS-TSE: Dirichlet relaxation, TSE objective."""

    relaxation: Relaxation = "dirichlet"
