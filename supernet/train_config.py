"""The typed schema of ``train.py``'s configuration (every key, its range and its meaning)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, Optional

from speedynas_core.config import config_to_dict, setting
from speedynas_core.errors import SpeedyNASError
from speedynas_core.optim import SGDConfig
from speedynas_core.plugins import PluginSection
from speedynas_core.registry import Registry
from speedynas_core.runtime import RuntimeConfig
from speedynas_data.data_config import DataConfig

from .methods import METHODS
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
class MethodConfig(PluginSection):
    """A gradient-based search method, which trains every path at once and learns their
    mixture, and its options; none: single-path training with the sampler."""

    registry: ClassVar[Registry] = METHODS

    name: Optional[str] = setting(None, help="gradient-based search method (darts, darts_tse, "
                                             "drnas, drnas_tse); null: single-path training "
                                             "with the sampler")


@dataclass(frozen=True)
class SamplerConfig(PluginSection):
    """Which path(s) each step of single-path training trains: a registered sampler and its
    options (a run with a method.name has no sampler)."""

    registry: ClassVar[Registry] = SAMPLERS

    name: str = setting("randnas", help="path sampler (randnas, fairnas, multipaths); unused "
                                        "with a method.name")

    @classmethod
    def config_variant(cls, choice: str | None, context: Mapping[str, Any]) -> type:
        """The sampler's section; a gradient-based method's name is refused, naming its key."""
        if choice in METHODS:
            raise SpeedyNASError(f"{choice!r} is a gradient-based search method now: use "
                                 f"method.name={choice} (its options under method.)")
        return super().config_variant(choice, context)

    @classmethod
    def config_key_hint(cls, key: str) -> str | None:
        """Which other samplers take ``key``, or else which gradient-based methods (their
        options go under method.)."""
        hint = super().config_key_hint(key)
        if hint is None and (of_methods := MethodConfig.config_key_hint(key)):
            hint = f"{of_methods}: set it as method.{key}, with method.name"
        return hint


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
    method: MethodConfig = field(default_factory=MethodConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    log: LogConfig = field(default_factory=LogConfig)

    def __post_init__(self) -> None:
        if self.optim.lr_min > self.optim.lr:
            raise SpeedyNASError(f"optim.lr_min={self.optim.lr_min} must not exceed "
                                 f"optim.lr={self.optim.lr}")
        if self.optim.warmup_epochs >= self.optim.epochs:
            raise SpeedyNASError(f"optim.warmup_epochs={self.optim.warmup_epochs} must be below "
                                 f"optim.epochs={self.optim.epochs}")
        if self.method.name is not None:
            self.refuse_sampler_keys()

    def refuse_sampler_keys(self) -> None:
        """A method trains no single paths: a sampler key set away from its default is
        refused, naming it."""
        default = config_to_dict(SamplerConfig.config_variant(SamplerConfig.name, {})())
        for key, value in config_to_dict(self.sampler).items():
            if key not in default or value != default[key]:
                raise SpeedyNASError(
                    f"sampler.{key} does not apply with method.name={self.method.name}: "
                    "a gradient-based method trains every path at once, with no path sampler; "
                    "leave the sampler keys out")
