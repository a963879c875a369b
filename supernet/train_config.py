"""The typed schema of ``train.py``'s configuration (every key, its range and its meaning)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Optional

from speedynas_core.config import setting
from speedynas_core.errors import SpeedyNASError
from speedynas_core.optim import SGDConfig
from speedynas_core.plugins import PluginSection
from speedynas_core.registry import Registry
from speedynas_core.runtime import RuntimeConfig
from speedynas_data.data_config import DataConfig

from .registry import SUPERNETS
from .samplers import SAMPLERS


@dataclass(frozen=True)
class ModelConfig(PluginSection):
    """Which supernet (one per search space), and its size: the supernet's own options."""

    registry: ClassVar[Registry] = SUPERNETS
    variant_key: ClassVar[str] = "space"

    space: str = setting("nb201", help="search space (a registered supernet)")
    channels_last: bool = setting(True, help="use the channels_last memory format")


@dataclass(frozen=True)
class SamplerConfig(PluginSection):
    """Which path(s) each step trains, or (a differentiable method) how all paths are mixed
    and the mixture learnt: a registered sampler and its options."""

    registry: ClassVar[Registry] = SAMPLERS

    name: str = setting("randnas", help="path sampler (randnas, fairnas, multipaths) or "
                                        "differentiable method (darts, darts_tse, drnas, "
                                        "drnas_tse)")


@dataclass(frozen=True)
class OptimConfig(SGDConfig):
    """SGD with a per-step cosine learning rate."""

    epochs: int = setting(100, min=1)
    batch_size: int = setting(64, min=1, help="global batch (split over torchrun ranks)")
    micro_batches: int = setting(1, min=1, help="split each rank's batch into this many "
                                               "micro-batches (gradient accumulation)")
    lr_min: float = setting(0.001, min=0, help="final learning rate of the cosine schedule")
    warmup_epochs: float = setting(0.0, min=0, help="linear learning-rate warm-up from lr/steps "
                                                    "to lr over this many (fractional) epochs "
                                                    "before the cosine; 0: none")
    grad_clip: Optional[float] = setting(5.0, gt=0, help="max gradient norm; null: no clipping")
    ema_decay: Optional[float] = setting(
        None, gt=0, lt=1, help="also keep an exponential moving average of the weights with "
                               "this decay per step (timm's ModelEmaV3; buffers are copied), "
                               "searched with supernet_weights=ema; null: none")
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
class TrainConfig(RuntimeConfig):
    """Everything ``train.py`` needs; the resolved copy is saved as ``RUN_DIR/config.yaml``."""

    seed: int = setting(0, min=0, help="seed of weights, paths, batches and augmentation")
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    log: LogConfig = field(default_factory=LogConfig)

    def __post_init__(self) -> None:
        if self.optim.lr_min > self.optim.lr:
            raise SpeedyNASError(f"optim.lr_min={self.optim.lr_min} must not exceed "
                                 f"optim.lr={self.optim.lr}")
        if self.optim.warmup_epochs >= self.optim.epochs:
            raise SpeedyNASError(f"optim.warmup_epochs={self.optim.warmup_epochs} must be below "
                                 f"optim.epochs={self.optim.epochs}")
