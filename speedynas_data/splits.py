"""Seeded index splits: the train/validation halves of the training images and smaller subsets.

The reference split divides the 50k CIFAR training images into 25k for supernet weights and 25k
for the estimators' validation: ``split_indices(50000, 0.5, seed=0)``. CPU-scale runs ask for
sizes instead, e.g. ``split_indices(50000, (5000, 1000), seed=0)``: the train part is always a
prefix and the validation part a suffix of the same seeded permutation, so for one seed a smaller
train set is a subset of a larger one, and a CPU-scale split nests inside the reference halves.

Indices come back as int64 tensors in seeded random order (so a fixed-order pass over them is
class-mixed even when the dataset is stored class by class); save them with ``.tolist()``.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from speedynas_core.errors import SpeedyNASError


def _generator(seed: int) -> torch.Generator:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise SpeedyNASError(f"seed must be an integer, got {seed!r}")
    return torch.Generator().manual_seed(seed)


def _sizes(num: int, split: float | Sequence[int]) -> tuple[int, int]:
    """(train, val) sizes from a train fraction or explicit sizes."""
    if isinstance(split, float):
        if not 0.0 < split < 1.0:
            raise SpeedyNASError(f"split fraction must be strictly between 0 and 1, got {split}")
        n_train = round(num * split)
        return n_train, num - n_train
    if isinstance(split, Sequence) and not isinstance(split, str) and len(split) == 2 and all(
            isinstance(s, int) and not isinstance(s, bool) for s in split):
        n_train, n_val = int(split[0]), int(split[1])
        if n_train < 0 or n_val < 0 or n_train + n_val > num:
            raise SpeedyNASError(f"split sizes {tuple(split)} need 0 <= train, val and "
                                 f"train + val <= {num}")
        return n_train, n_val
    raise SpeedyNASError(f"split must be a fraction in (0, 1) or (train_size, val_size), "
                         f"got {split!r}")


def _allocate(total: int, counts: torch.Tensor) -> torch.Tensor:
    """Split ``total`` over classes proportionally to ``counts`` (largest remainder, capped)."""
    if total == 0 or int(counts.sum()) == 0:
        return torch.zeros_like(counts)
    quota = counts.double() * total / counts.sum()
    alloc = quota.floor().long()
    remainder = total - int(alloc.sum())
    order = torch.argsort(quota - alloc, descending=True, stable=True)
    alloc[order[:remainder]] += 1
    return alloc


def split_indices(num: int, split: float | Sequence[int] = 0.5, *, seed: int = 0,
                  labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Disjoint (train_idx, val_idx) over ``range(num)``, deterministic in ``seed``.

    ``split`` is the train fraction (the rest is validation) or ``(train_size, val_size)``.
    With ``labels`` the split is stratified: each class is divided in the same proportions.
    """
    if isinstance(num, bool) or not isinstance(num, int) or num < 1:
        raise SpeedyNASError(f"num must be a positive integer, got {num!r}")
    n_train, n_val = _sizes(num, split)
    g = _generator(seed)
    if labels is None:
        perm = torch.randperm(num, generator=g)
        return perm[:n_train].clone(), perm[num - n_val:].clone()
    labels = torch.as_tensor(labels).long().cpu()
    if labels.shape != (num,):
        raise SpeedyNASError(f"labels must have one entry per sample ({num}), got shape "
                             f"{tuple(labels.shape)}")
    if labels.min() < 0:
        raise SpeedyNASError("labels must be non-negative class indices")
    counts = torch.bincount(labels)
    a = _allocate(n_train, counts)
    b = _allocate(n_val, counts - a)
    train_parts, val_parts = [], []
    for cls in range(len(counts)):
        members = torch.nonzero(labels == cls).flatten()
        members = members[torch.randperm(len(members), generator=g)]
        train_parts.append(members[:int(a[cls])])
        val_parts.append(members[len(members) - int(b[cls]):])
    train, val = torch.cat(train_parts), torch.cat(val_parts)
    return (train[torch.randperm(len(train), generator=g)],
            val[torch.randperm(len(val), generator=g)])


def subset_indices(indices: torch.Tensor | Sequence[int], size: int | None, *,
                   seed: int = 0) -> torch.Tensor:
    """The first ``size`` entries of a seeded permutation of ``indices`` (all if None)."""
    indices = torch.as_tensor(indices, dtype=torch.int64)
    if size is None:
        return indices.clone()
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= len(indices):
        raise SpeedyNASError(f"subset size must be an integer in 1..{len(indices)}, got {size!r}")
    return indices[torch.randperm(len(indices), generator=_generator(seed))[:size]]
