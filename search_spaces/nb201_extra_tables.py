"""HW-NAS-Bench and NB201 robustness tables shipped with the package, as ground-truth sources.

Both are in the format of :mod:`search_spaces.nb201_table` (int32 fixed point, one row per
NB201 cell in ``space.enumerate()`` order, ``meta`` with the provenance) and are built by
``scripts/build_nb201_table.py --table nb201_hw|nb201_robustness``.

- ``nb201_hw`` (``tables/nb201_hw.npz``): HW-NAS-Bench (Li et al., ICLR 2021), inference cost
  of every cell on six devices for each NB201 dataset's input size: :data:`HW_COLUMNS`, named
  ``<metric>_<dataset>`` (ms, mJ, or ops/byte for ``eyeriss_arithmetic_intensity``).
- ``nb201_robustness`` (``tables/nb201_robustness.npz``): Jung et al. (ICLR 2023), CIFAR-10
  accuracy (%) clean (``val_accs``) and under FGSM, PGD, APGD-CE and Square attacks at L-inf
  budgets eps/255: :data:`ROBUSTNESS_COLUMNS`, named as in the source (``pgd@Linf_eps-1.0``).

>>> from search_spaces import create_ground_truth
>>> truth = create_ground_truth("nb201_hw", space="nb201", column="edgegpu_latency_cifar10")
>>> truth.lookup("|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|"
...              "+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|")
5.807419
"""
from __future__ import annotations

from typing import Annotated, Literal

from speedynas_core.plugins import Option

from .base import SearchSpace
from .ground_truth import register_ground_truth
from .nb201_table import TABLES_DIR, ShippedTableTruth

__all__ = [
    "HW_COLUMNS", "HW_DATASETS", "HW_METRICS", "HW_TABLE_PATH", "HWColumn", "NB201HWTruth",
    "NB201RobustnessTruth", "ROBUSTNESS_ATTACKS", "ROBUSTNESS_COLUMNS", "ROBUSTNESS_TABLE_PATH",
    "RobustnessColumn",
]

HW_TABLE_PATH = TABLES_DIR / "nb201_hw.npz"
ROBUSTNESS_TABLE_PATH = TABLES_DIR / "nb201_robustness.npz"

#: HW-NAS-Bench metrics, in the source's order.
HW_METRICS = ("edgegpu_latency", "edgegpu_energy", "raspi4_latency", "edgetpu_latency",
              "pixel3_latency", "eyeriss_latency", "eyeriss_energy",
              "eyeriss_arithmetic_intensity", "fpga_latency", "fpga_energy")
#: The datasets whose input sizes HW-NAS-Bench measured.
HW_DATASETS = ("cifar10", "cifar100", "imagenet16_120")
#: The shipped HW-NAS-Bench columns, ``<metric>_<dataset>``, dataset by dataset.
HW_COLUMNS: tuple[str, ...] = tuple(f"{metric}_{dataset}" for dataset in HW_DATASETS
                                    for metric in HW_METRICS)
HWColumn = Literal[HW_COLUMNS]  # type: ignore[valid-type]

#: Each attack and the L-inf budgets (eps/255) the robustness dataset evaluated it at.
ROBUSTNESS_ATTACKS: dict[str, tuple[str, ...]] = {
    "aa_apgd-ce": ("0.1", "0.5", "1.0", "2.0", "3.0", "4.0", "8.0"),
    "aa_square": ("0.1", "0.5", "1.0", "2.0", "3.0", "4.0", "8.0"),
    "fgsm": ("0.1", "0.5", "1.0", "2.0", "3.0", "4.0", "5.0", "6.0", "7.0", "8.0", "255.0"),
    "pgd": ("0.1", "0.5", "1.0", "2.0", "3.0", "4.0", "8.0"),
}
#: The shipped robustness columns: clean accuracy, then ``<attack>@Linf_eps-<eps>``.
ROBUSTNESS_COLUMNS: tuple[str, ...] = ("val_accs",) + tuple(
    f"{attack}@Linf_eps-{eps}" for attack, budgets in ROBUSTNESS_ATTACKS.items()
    for eps in budgets)
RobustnessColumn = Literal[ROBUSTNESS_COLUMNS]  # type: ignore[valid-type]


@register_ground_truth("nb201_hw")
class NB201HWTruth(ShippedTableTruth):
    """HW-NAS-Bench inference cost of NB201 cells (lower is better), one column of
    :data:`HW_COLUMNS` (default ``edgegpu_latency_cifar10``, ms)."""

    name = "nb201_hw"
    table_path = HW_TABLE_PATH
    title = "the HW-NAS-Bench table"
    origin = "HW-NAS-Bench, Li et al. ICLR 2021"

    def __init__(self, space: SearchSpace | str,
                 column: Annotated[HWColumn, Option(
                     help="column of the shipped HW-NAS-Bench table: <metric>_<dataset> (ms, "
                          "mJ, or ops/byte)")
                 ] = "edgegpu_latency_cifar10") -> None:
        super().__init__(space, column)


@register_ground_truth("nb201_robustness")
class NB201RobustnessTruth(ShippedTableTruth):
    """CIFAR-10 accuracy (%) of NB201 cells, clean or under attack, one column of
    :data:`ROBUSTNESS_COLUMNS` (default ``pgd@Linf_eps-1.0``: PGD at eps 1/255)."""

    name = "nb201_robustness"
    table_path = ROBUSTNESS_TABLE_PATH
    title = "the NB201 robustness table"
    origin = "robustness dataset, Jung et al. ICLR 2023"

    def __init__(self, space: SearchSpace | str,
                 column: Annotated[RobustnessColumn, Option(
                     help="column of the shipped robustness table: val_accs (clean) or "
                          "<attack>@Linf_eps-<eps> (accuracy % under attack, budget eps/255)")
                 ] = "pgd@Linf_eps-1.0") -> None:
        super().__init__(space, column)
