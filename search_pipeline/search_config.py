"""The typed schema of ``search.py``'s configuration."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

from core.config import setting
from core.errors import SpeedyNASError

DEFAULT_ESTIMATORS = ["tse", "tse_e", "tse_ema", "tlmini", "sovl", "valacc", "valacc_inherited",
                      "params", "flops"]


@dataclass(frozen=True)
class CandidatesConfig:
    """Which architectures are ranked."""

    num: int = setting(200, min=1, help="candidates drawn uniformly (the paper: 200 NB201, 500 DARTS)")
    seed: int = setting(123, min=0, help="seed of the candidate draw")
    file: Optional[str] = setting(None, help="read candidates from this file, one arch per line")
    skip_degenerate: bool = setting(False, help="NB201: redraw cells whose output is disconnected")
    unique: Literal["none", "exact", "isomorphic"] = setting(
        "none", help="drop duplicate draws (exact text, or the NB201 isomorphism class)")


@dataclass(frozen=True)
class FinetuneConfig:
    """The fine-tune of every candidate from its inherited weights."""

    budgets: list[int] = setting([100, 200, 300], min=0,
                                 help="B values scored; one fine-tune of max(B) steps feeds all")
    batch_size: int = setting(64, min=1)
    lr: float = setting(0.001, gt=0, help="constant learning rate")
    momentum: float = setting(0.9, min=0, lt=1)
    nesterov: bool = setting(True)
    weight_decay: float = setting(5e-4, min=0)
    augment: bool = setting(True, help="augment the fixed train batches (same for every candidate)")
    val_images: int = setting(1000, min=1, help="validation images for valacc")
    seed: int = setting(0, min=0, help="seed of the fixed batch order and augmentation")


@dataclass(frozen=True)
class EstimatorsConfig:
    """Which estimators score the trajectories, with their options."""

    names: list[str] = setting(list(DEFAULT_ESTIMATORS),
                                help="registered estimator names, and inline combinations "
                                     "such as combo(tse+params)")
    tse_e_window_fraction: float = setting(0.5, gt=0, max=1, help="tse_e: E = fraction of B")
    tse_ema_gamma: float = setting(0.999, gt=0, max=1, help="tse_ema: decay gamma")
    combo_members: list[str] = setting(["tse", "params"],
                                       help="members of a plain combo, combo_learned")
    combo_method: Literal["rank_mean", "learned"] = setting(
        "rank_mean", help="combo: mean of the members' ranks, or a model fitted on ground truth")
    combo_fit_size: int = setting(20, min=2, help="learned combos: archs with ground truth fitted "
                                                  "on (never scored or evaluated)")
    combo_seed: int = setting(0, min=0, help="learned combos: seed of the fit set and the model")
    zero_cost_weights: Literal["inherited", "init"] = setting(
        "init", help="zero-cost estimators: measure the inherited supernet weights, or the "
                     "stand-alone network freshly initialised (as the papers define them)")
    zero_cost_batches: int = setting(1, min=1, help="zero-cost estimators: fixed train batches "
                                                    "(mean of the per-batch values)")
    zero_cost_seed: int = setting(0, min=0, help="zero-cost init weights: seed of the fresh "
                                                 "initialisation (the same for every candidate)")


@dataclass(frozen=True)
class GroundTruthConfig:
    """Where the true accuracy of a candidate comes from."""

    table: Optional[str] = setting(None, help="JSON/CSV table of arch -> metric")
    column: Optional[str] = setting("cifar10_test", help="metric column of the table")


@dataclass(frozen=True)
class RetrainConfig:
    """Retraining each estimator's top-k from scratch as stand-alone networks."""

    enabled: bool = setting(False, help="retrain the union of the estimators' top-k")
    top_k: int = setting(10, min=1)
    estimators: Optional[list[str]] = setting(None, help="whose top-k (default: all enabled)")
    C: int = setting(16, min=1, help="stand-alone network width")
    N: int = setting(5, min=1, help="NB201: cells per stage")
    layers: int = setting(20, min=3, help="DARTS: number of cells")
    epochs: int = setting(200, min=1)
    batch_size: int = setting(96, min=1)
    lr: float = setting(0.1, gt=0)
    lr_min: float = setting(0.0, min=0)
    momentum: float = setting(0.9, min=0, lt=1)
    nesterov: bool = setting(True)
    weight_decay: float = setting(5e-4, min=0)
    resolution: int = setting(32, min=8, max=64)
    train_size: Optional[int] = setting(None, min=1, help="train on this many of the 50k images")
    test_size: Optional[int] = setting(None, min=1, help="test on this many test images")
    seed: int = setting(0, min=0)


@dataclass(frozen=True)
class SearchConfig:
    """Everything ``search.py`` needs; saved resolved as ``SEARCH_DIR/config.yaml``."""

    name: Optional[str] = setting(None, help="write to RUN_DIR/search/NAME instead of RUN_DIR/search")
    device: str = setting("auto", help="auto, cpu, cuda or cuda:N")
    progress: bool = setting(True, help="show progress bars")
    candidates: CandidatesConfig = field(default_factory=CandidatesConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    estimators: EstimatorsConfig = field(default_factory=EstimatorsConfig)
    ground_truth: GroundTruthConfig = field(default_factory=GroundTruthConfig)
    retrain: RetrainConfig = field(default_factory=RetrainConfig)

    def __post_init__(self) -> None:
        if not self.finetune.budgets:
            raise SpeedyNASError("finetune.budgets must list at least one B")
        if len(set(self.finetune.budgets)) != len(self.finetune.budgets):
            raise SpeedyNASError(f"finetune.budgets={self.finetune.budgets} repeats a value")
        if not self.estimators.names:
            raise SpeedyNASError("estimators.names must list at least one estimator")
        if self.name is not None and (not self.name or "/" in self.name or self.name in (".", "..")):
            raise SpeedyNASError(f"name={self.name!r} must be a plain folder name")
