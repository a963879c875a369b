"""Published DARTS-space genotypes, by name, in the standard genotype text.

``DARTS_V1`` and ``DARTS_V2`` are the first- and second-order cells of Liu, Simonyan and Yang,
"DARTS: Differentiable Architecture Search" (ICLR 2019); DARTS_V2 is the cell the paper
evaluates (3.3M parameters at C = 36, 20 cells).
"""
from __future__ import annotations

NAMED_GENOTYPES: dict[str, str] = {
    "DARTS_V1": (
        "Genotype("
        "normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), "
        "('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
        "('skip_connect', 2)], normal_concat=[2, 3, 4, 5], "
        "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
        "('max_pool_3x3', 0), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
        "('avg_pool_3x3', 0)], reduce_concat=[2, 3, 4, 5])"
    ),
    "DARTS_V2": (
        "Genotype("
        "normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
        "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
        "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], "
        "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
        "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
        "('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
    ),
}
NAMED_GENOTYPES["DARTS"] = NAMED_GENOTYPES["DARTS_V2"]
