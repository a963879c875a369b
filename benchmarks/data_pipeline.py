"""Throughput of the speedynas data pipeline against a torchvision DataLoader on the same images.

    python benchmarks/data_pipeline.py [--root data/cifar10] [--batches 300] [--workers 2]

Both pipelines produce shuffled, randomly cropped (padding 4), flipped, normalised float32
batches of 64 CIFAR images on the CPU. Ours: uint8 tensors in memory, ``BatchIterator`` with
``BatchAugment.train``. Baseline: ``DataLoader`` over ``torchvision.datasets.ImageFolder`` with
RandomCrop(32, padding=4), RandomHorizontalFlip, ToTensor, Normalize. Each is timed over the same
number of batches after a few warm-up batches. Also reported: the first load of the training
images (decoding, no cache) and a load from the on-disk cache.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from speedynas_core.errors import SpeedyNASError
from speedynas_data.augment import CIFAR10_MEAN, CIFAR10_STD, BatchAugment
from speedynas_data.batches import BatchIterator
from speedynas_data.datasets import load_dataset

DEFAULT_ROOT = Path(__file__).resolve().parents[1] / "data" / "cifar10"
BATCH_SIZE = 64
WARMUP = 5


def _timed(batches, count: int) -> float:
    """Seconds to pull ``count`` batches after ``WARMUP`` untimed ones."""
    it = iter(batches)
    for _ in range(WARMUP):
        next(it)
    start = time.perf_counter()
    for _ in range(count):
        x, y = next(it)
        assert x.dtype == torch.float32 and x.shape[0] == y.shape[0]
    return time.perf_counter() - start


def ours(root: Path, count: int) -> float:
    data = load_dataset("imagefolder", root, "train")
    it = BatchIterator(data.images, data.labels, BATCH_SIZE, seed=0, drop_last=True,
                       transform=BatchAugment().train)
    return _timed(it.take(count + WARMUP), count)


def torchvision_loader(root: Path, count: int, workers: int) -> float:
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms
    transform = transforms.Compose([
        transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
        transforms.ToTensor(), transforms.Normalize(CIFAR10_MEAN, CIFAR10_STD)])
    dataset = datasets.ImageFolder(str(root / "train"), transform=transform)
    loader = DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True, drop_last=True,
                        num_workers=workers, persistent_workers=False)
    return _timed(loader, count)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT,
                        help="image-folder data root with train/<class>/* (default: the "
                             "repository's data/cifar10)")
    parser.add_argument("--batches", type=int, default=300,
                        help="timed batches per pipeline (default 300)")
    parser.add_argument("--workers", type=int, default=2,
                        help="DataLoader worker processes for the baseline (default 2)")
    args = parser.parse_args(argv)
    try:
        if args.batches < 1 or args.workers < 0:
            raise SpeedyNASError(f"--batches must be >= 1 and --workers >= 0, got "
                                 f"{args.batches} and {args.workers}")
        start = time.perf_counter()
        data = load_dataset("imagefolder", args.root, "train", cache=False)
        decode = time.perf_counter() - start
        load_dataset("imagefolder", args.root, "train")  # make sure the cache exists
        start = time.perf_counter()
        load_dataset("imagefolder", args.root, "train")
        cached = time.perf_counter() - start
        n, c, h, w = data.images.shape
        print(f"data: {args.root}/train, {n} images {c}x{h}x{w}, {data.num_classes} classes")
        print(f"first load (PIL decode, no cache): {decode:7.2f} s")
        print(f"cached load:                       {cached:7.2f} s")
        print(f"batch {BATCH_SIZE}, {args.batches} timed batches after {WARMUP} warm-up, CPU, "
              f"torch threads {torch.get_num_threads()} (BatchIterator works with 1)")
        fast = BATCH_SIZE * args.batches / ours(args.root, args.batches)
        print(f"speedynas BatchIterator + BatchAugment:             {fast:10.0f} images/s")
        slow = BATCH_SIZE * args.batches / torchvision_loader(args.root, args.batches,
                                                              args.workers)
        print(f"torchvision DataLoader + ImageFolder ({args.workers} workers): "
              f"{slow:10.0f} images/s")
        print(f"ratio: {fast / slow:.1f}x (goal >= 5x)")
    except SpeedyNASError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
