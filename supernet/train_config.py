"""The typed schema of ``train.py``'s configuration (every key, its range and its meaning)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Optional

from core.config import setting
from core.errors import SpeedyNASError
from imagedata.data_config import DataConfig


def space_size(space: str, C: int, N: int, layers: int) -> dict[str, int]:
    """The size arguments a space's networks take: NB201 (C, N), DARTS (C, layers)."""
    return {"C": C, "N": N} if space == "nb201" else {"C": C, "layers": layers}


@dataclass(frozen=True)
class ModelConfig:
    """Which supernet, and its size."""

    space: Literal["nb201", "darts"] = setting("nb201", help="search space")
    C: int = setting(16, min=1, help="channels of the first stage")
    N: int = setting(5, min=1, help="NB201: cells per stage")
    layers: int = setting(8, min=3, help="DARTS: number of cells")
    channels_last: bool = setting(True, help="use the channels_last memory format")

    def size(self) -> dict[str, Any]:
        """Keyword arguments of ``create_supernet`` for this space."""
        return space_size(self.space, self.C, self.N, self.layers)


@dataclass(frozen=True)
class SamplerConfig:
    """Which path(s) each step trains."""

    name: Literal["randnas", "fairnas", "multipaths"] = setting("randnas", help="path sampler")
    per_cell: bool = setting(False, help="an independent cell per position (reference RandNAS)")
    num_paths: int = setting(4, min=1, help="multipaths: paths per step")
    stratify: Literal["none", "params"] = setting(
        "none", help="multipaths: one path per parameter-count quantile")

    def options(self) -> dict[str, Any]:
        """Keyword arguments of ``create_sampler`` for this sampler."""
        if self.name == "multipaths":
            return {"per_cell": self.per_cell, "num_paths": self.num_paths,
                    "stratify": self.stratify}
        return {"per_cell": self.per_cell}


@dataclass(frozen=True)
class OptimConfig:
    """SGD with a per-step cosine learning rate."""

    epochs: int = setting(100, min=1)
    batch_size: int = setting(64, min=1, help="global batch (split over torchrun ranks)")
    micro_batches: int = setting(1, min=1, help="split each rank's batch into this many "
                                               "micro-batches (gradient accumulation)")
    lr: float = setting(0.025, gt=0, max=10, help="initial learning rate")
    lr_min: float = setting(0.001, min=0, help="final learning rate of the cosine schedule")
    momentum: float = setting(0.9, min=0, lt=1)
    nesterov: bool = setting(True)
    weight_decay: float = setting(5e-4, min=0)
    grad_clip: Optional[float] = setting(5.0, gt=0, help="max gradient norm; null: no clipping")
    legacy_zero_grad: bool = setting(
        False, help="zero gradients instead of freeing them (PyTorch 1.x): momentum and weight "
                    "decay keep moving ops not sampled this step, as in the reference")


@dataclass(frozen=True)
class LogConfig:
    """TensorBoard, progress, probes and checkpoints."""

    log_every: int = setting(10, min=1, help="steps between TensorBoard train scalars")
    probe_archs: int = setting(5, min=0, help="fixed archs whose validation accuracy is logged")
    probe_images: int = setting(1000, min=1, help="validation images used for the probes")
    keep_every: Optional[int] = setting(None, min=1, help="also keep epoch_N.pt every N epochs")
    progress: bool = setting(True, help="show a progress bar")


@dataclass(frozen=True)
class TrainConfig:
    """Everything ``train.py`` needs; the resolved copy is saved as ``RUN_DIR/config.yaml``."""

    seed: int = setting(0, min=0, help="seed of weights, paths, batches and augmentation")
    device: str = setting("auto", help="auto, cpu, cuda or cuda:N")
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    log: LogConfig = field(default_factory=LogConfig)

    def __post_init__(self) -> None:
        if self.optim.lr_min > self.optim.lr:
            raise SpeedyNASError(f"optim.lr_min={self.optim.lr_min} must not exceed "
                                 f"optim.lr={self.optim.lr}")
        if self.sampler.stratify != "none" and self.sampler.name != "multipaths":
            raise SpeedyNASError(f"sampler.stratify={self.sampler.stratify} needs "
                                 f"sampler.name=multipaths, got {self.sampler.name}")
