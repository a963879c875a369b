"""Batched image augmentation on uint8 tensors, on whatever device the batch is on.

Training path: random crop with zero padding, random horizontal flip, then normalisation to
float32 (optionally channels_last). Evaluation path: normalisation only. Every random draw comes
from a caller-supplied ``torch.Generator``, so a seed fixes the result; nothing loops over images
in Python and nothing goes through PIL.

Random draws per batch of B images, in this order: ``offsets = randint(0, 2p + 1, (B, 2))``
(row then column offset into the padded image), then, if flipping, ``flips = randint(0, 2, (B,))``.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from speedynas_core.errors import SpeedyNASError

# Per-channel statistics of the training images (the values the DARTS / NB201 code uses).
CIFAR10_MEAN = (0.49139968, 0.48215827, 0.44653124)
CIFAR10_STD = (0.24703233, 0.24348505, 0.26158768)
CIFAR100_MEAN = (0.50707516, 0.48654887, 0.44091784)
CIFAR100_STD = (0.26733429, 0.25643846, 0.27615047)


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std (in 0..1 units) of a uint8 N x C x H x W tensor."""
    x = images.to(torch.float64).div_(255).transpose(0, 1).reshape(images.shape[1], -1)
    return tuple(x.mean(1).tolist()), tuple(x.std(1).tolist())


def crop_flip_params(batch: int, padding: int, generator: torch.Generator,
                     flip: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop offsets (B x 2, each in 0..2*padding) and flip flags (B, bool) from ``generator``."""
    device = generator.device
    offsets = torch.randint(0, 2 * padding + 1, (batch, 2), generator=generator, device=device)
    if flip:
        flips = torch.randint(0, 2, (batch,), generator=generator, device=device).bool()
    else:
        flips = torch.zeros(batch, dtype=torch.bool, device=device)
    return offsets, flips


def crop_flip(images: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor,
              padding: int) -> torch.Tensor:
    """Crop each zero-padded image at its offset and mirror the flagged ones, in one gather.

    Output pixel (i, j) of image b is input pixel (i + oy - padding, j' + ox - padding) with
    j' = W - 1 - j if ``flips[b]`` else j, and 0 outside the image. Same dtype and shape as input.
    """
    n, c, h, w = images.shape
    device = images.device
    offsets = offsets.to(device)
    flips = flips.to(device)
    padded = F.pad(images, (padding, padding, padding, padding)) if padding else images
    rows = offsets[:, :1] + torch.arange(h, device=device)                      # B x H
    cols = torch.arange(w, device=device).expand(n, w)
    cols = torch.where(flips[:, None], (w - 1) - cols, cols) + offsets[:, 1:]  # B x W
    wp = w + 2 * padding
    flat = (rows[:, :, None] * wp + cols[:, None, :]).reshape(n, 1, h * w).expand(n, c, h * w)
    return padded.reshape(n, c, -1).gather(2, flat).reshape(n, c, h, w)


def random_crop_flip(images: torch.Tensor, generator: torch.Generator, padding: int = 4,
                     flip: bool = True) -> torch.Tensor:
    """Random padded crop (same size) and random horizontal flip of a batch."""
    offsets, flips = crop_flip_params(images.shape[0], padding, generator, flip)
    return crop_flip(images, offsets, flips, padding)


def _affine(mean: Sequence[float], std: Sequence[float], device: torch.device
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale and shift so that ``uint8 * scale + shift == (x / 255 - mean) / std``."""
    m = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    return 1.0 / (255.0 * s), -m / s


def normalize(images: torch.Tensor, mean: Sequence[float] = CIFAR10_MEAN,
              std: Sequence[float] = CIFAR10_STD, channels_last: bool = False) -> torch.Tensor:
    """uint8 N x C x H x W to float32 ``(x / 255 - mean) / std``."""
    scale, shift = _affine(mean, std, images.device)
    return _apply(images, scale, shift, channels_last)


def denormalize(x: torch.Tensor, mean: Sequence[float] = CIFAR10_MEAN,
                std: Sequence[float] = CIFAR10_STD) -> torch.Tensor:
    """Inverse of :func:`normalize`, rounded back to uint8."""
    scale, shift = _affine(mean, std, x.device)
    return ((x - shift) / scale).round_().clamp_(0, 255).to(torch.uint8)


def _check(images: torch.Tensor, channels: int) -> None:
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise SpeedyNASError(f"expected a uint8 N x C x H x W batch, got {images.dtype} "
                             f"{tuple(images.shape)}")
    if images.shape[1] != channels:
        raise SpeedyNASError(f"batch has {images.shape[1]} channels but mean/std have {channels}")


def _apply(images: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor,
           channels_last: bool) -> torch.Tensor:
    _check(images, scale.shape[1])
    # Normalising contiguous NCHW and converting afterwards is ~2x faster than broadcasting
    # the per-channel constants over a channels_last tensor.
    out = images.to(torch.float32).mul_(scale).add_(shift)
    return out.contiguous(memory_format=torch.channels_last) if channels_last else out


class BatchAugment:
    """CIFAR-style augmentation: :meth:`train` crops, flips and normalises; :meth:`eval` normalises.

    Both take a uint8 batch and a generator, so either can be a ``BatchIterator`` transform.
    """

    def __init__(self, mean: Sequence[float] = CIFAR10_MEAN, std: Sequence[float] = CIFAR10_STD,
                 padding: int = 4, flip: bool = True, channels_last: bool = False) -> None:
        if len(mean) != len(std) or not mean:
            raise SpeedyNASError(f"mean {tuple(mean)} and std {tuple(std)} need one value per "
                                 "channel each")
        if any(s <= 0 for s in std):
            raise SpeedyNASError(f"std values must be positive, got {tuple(std)}")
        if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
            raise SpeedyNASError(f"padding must be a non-negative integer, got {padding!r}")
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.padding = padding
        self.flip = flip
        self.channels_last = channels_last
        self._consts: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    def _affine(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if device not in self._consts:
            self._consts[device] = _affine(self.mean, self.std, device)
        return self._consts[device]

    def train(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Random crop (zero padding) + horizontal flip + normalise; float32 out."""
        _check(images, len(self.mean))
        if self.padding or self.flip:
            images = random_crop_flip(images, generator, self.padding, self.flip)
        return _apply(images, *self._affine(images.device), self.channels_last)

    def eval(self, images: torch.Tensor, generator: torch.Generator | None = None
             ) -> torch.Tensor:
        """Normalise only; ``generator`` is ignored (kept for a common signature)."""
        return _apply(images, *self._affine(images.device), self.channels_last)

    def __repr__(self) -> str:
        return (f"BatchAugment(mean={self.mean}, std={self.std}, padding={self.padding}, "
                f"flip={self.flip}, channels_last={self.channels_last})")
