"""The typed schema of the ``data`` section: which images, their split and their size."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from speedynas_core.config import setting


@dataclass(frozen=True)
class DataConfig:
    """Where the images come from and how the 50k training images are split."""

    dataset: Literal["cifar10", "cifar100", "imagefolder"] = setting(
        "cifar10", help="CIFAR files (torchvision layout) or an image folder root/train, root/test")
    root: str = setting("data/cifar10", help="data folder")
    download: bool = setting(True, help="download with torchvision when no data is found")
    resolution: int = setting(32, min=8, max=64, help="images are resized once to this size")
    split_seed: int = setting(0, min=0, help="seed of the train/validation split of the train set")
    val_fraction: float = setting(0.5, gt=0, lt=1,
                                  help="share of the training images held out for validation")
    train_size: Optional[int] = setting(None, min=1, help="use only this many train-half images")
    val_size: Optional[int] = setting(None, min=1, help="use only this many validation images")
    augment: bool = setting(True, help="random crop (padding 4) and horizontal flip")
