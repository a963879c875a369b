"""The images of a run: the seeded train/validation split, held in memory, and its batches.

``train.py`` and ``search.py`` build the same :class:`RunData` from a run's data config, so the
supernet's weights and the estimators' validation never share an image. The split is saved as
``RUN_DIR/split.json`` and checked on every later use.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from speedynas_core.atomic_io import atomic_write_json
from speedynas_core.errors import SpeedyNASError

from .augment import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    CIFAR100_MEAN,
    CIFAR100_STD,
    BatchAugment,
    channel_stats,
)
from .batches import BatchIterator, Order
from .data_config import DataConfig
from .datasets import load_dataset
from .splits import split_indices

NORMALISATION = {"cifar10": (CIFAR10_MEAN, CIFAR10_STD), "cifar100": (CIFAR100_MEAN, CIFAR100_STD)}


@dataclass
class RunData:
    """The training images of a run, split into a train part and a validation part."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    train_idx: torch.Tensor
    val_idx: torch.Tensor
    augment: BatchAugment

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)

    def batches(self, part: str, batch_size: int, *, order: Order, seed: int,
                device: torch.device, train_transform: bool, drop_last: bool = True,
                ) -> BatchIterator:
        """Batches of the ``train`` or ``val`` part, augmented when ``train_transform``."""
        indices = {"train": self.train_idx, "val": self.val_idx}[part]
        if drop_last and len(indices) < batch_size:
            raise SpeedyNASError(f"the {part} split has {len(indices)} images, fewer than one "
                                 f"batch of {batch_size}")
        transform = self.augment.train if train_transform else self.augment.eval
        return BatchIterator(self.images, self.labels, batch_size, indices=indices, order=order,
                             drop_last=drop_last, seed=seed, device=device, transform=transform)


def normalisation(dataset: str, train_images: torch.Tensor,
                  ) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std: the usual CIFAR constants, else measured on ``train_images``."""
    return NORMALISATION.get(dataset) or channel_stats(train_images)


def split_sizes(cfg: DataConfig, num_images: int) -> tuple[int, int]:
    """(train, val) image counts: the halves of ``val_fraction``, cut to the configured sizes."""
    val_half = round(num_images * cfg.val_fraction)
    train_half = num_images - val_half
    sizes = []
    for name, half, wanted in (("train", train_half, cfg.train_size),
                               ("val", val_half, cfg.val_size)):
        if wanted is not None and wanted > half:
            raise SpeedyNASError(f"data.{name}_size={wanted} exceeds the {half} images of the "
                                 f"{name} part ({num_images} images, val_fraction "
                                 f"{cfg.val_fraction})")
        sizes.append(half if wanted is None else wanted)
    return sizes[0], sizes[1]


def load_run_data(cfg: DataConfig, run_dir: Path | None, channels_last: bool) -> RunData:
    """Load the training images, split them (seeded), and record/check ``split.json``."""
    data = load_dataset(cfg.dataset, cfg.root, "train", cfg.resolution, download=cfg.download)
    train_idx, val_idx = split_indices(len(data), split_sizes(cfg, len(data)),
                                       seed=cfg.split_seed)
    if run_dir is not None:
        check_split(run_dir / "split.json", train_idx, val_idx)
    mean, std = normalisation(cfg.dataset, data.images[train_idx])
    augment = BatchAugment(mean, std, padding=4 if cfg.augment else 0, flip=cfg.augment,
                           channels_last=channels_last)
    return RunData(data.images, data.labels, data.classes, train_idx, val_idx, augment)


def check_split(path: Path, train_idx: torch.Tensor, val_idx: torch.Tensor) -> None:
    """Save the split at ``path``, or, if saved before, insist it is unchanged."""
    split = {"train": train_idx.tolist(), "val": val_idx.tolist()}
    if not path.exists():
        atomic_write_json(path, split, indent=None)
        return
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise SpeedyNASError(f"cannot read the saved split {path}: {err}") from None
    if saved != split:
        raise SpeedyNASError(f"the data no longer gives the split saved in {path} (data folder "
                             "or data settings changed); restore them or start a new run dir")
