"""Training archs from scratch as stand-alone networks (cached, resumable): the estimators'
top-k after a search (``retrain.enabled``), and the labels a strategy pays for
(``labels.source=standalone``).

Each arch is trained at most once with the ``retrain`` settings, its measured test accuracy
cached in ``retrain/<key>.json`` together with the settings that shape the training (not those
that choose which archs are retrained); a later request with the same settings reads the cache,
whichever of the two asked first. The ``retrain`` ground-truth source reads that cache.
"""
from __future__ import annotations

import hashlib
import json
import time
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Mapping, Sequence

import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm import tqdm

import search_spaces
from speedynas_core.atomic_io import atomic_write_json
from speedynas_core.config import config_to_dict
from speedynas_core.distributed import DistEnv
from speedynas_core.optim import cosine_schedule
from speedynas_core.plugins import Option
from speedynas_data.augment import BatchAugment
from speedynas_data.batches import BatchIterator
from speedynas_data.data_config import DataConfig
from speedynas_data.datasets import ImageTensors, load_dataset
from speedynas_data.run_data import normalisation
from speedynas_data.splits import subset_indices
from search_spaces import SearchSpace
from supernet import build_network
from supernet.measure import path_accuracy
from supernet.train_config import TrainConfig

from search_spaces.ground_truth import GroundTruth, lookup_key, register_ground_truth
from .metrics import top_k
from .results_store import Record
from .search_config import RetrainConfig, SearchConfig

#: ``retrain`` keys that choose which archs are retrained, not how: a cached accuracy stands
#: whatever their values.
SELECTION_KEYS = ("enabled", "top_k", "estimators")


def cache_file(cache_dir: Path, space: SearchSpace, arch: str) -> Path:
    """The cache file of one arch (keyed by its canonical text)."""
    key = lookup_key(space, arch)
    return cache_dir / f"{hashlib.sha1(key.encode()).hexdigest()[:16]}.json"


def training_keys(rcfg: RetrainConfig) -> dict[str, Any]:
    """The ``retrain`` keys that shape a training (all but :data:`SELECTION_KEYS`)."""
    return {k: v for k, v in config_to_dict(rcfg).items() if k not in SELECTION_KEYS}


def training_settings(rcfg: RetrainConfig, dataset: str) -> dict[str, Any]:
    """What a cached accuracy was measured with: :func:`training_keys` and the dataset."""
    return {"retrain": training_keys(rcfg), "dataset": dataset}


def train_standalone(arch: Any, cfg: RetrainConfig, train: ImageTensors, test: ImageTensors,
                     augment: BatchAugment, device: torch.device) -> float:
    """Train ``arch``'s stand-alone network from scratch; its test accuracy."""
    torch.manual_seed(cfg.seed)
    net = build_network(arch, num_classes=len(train.classes),
                        **cfg.options()).to(device)
    net = net.to(memory_format=torch.channels_last)
    train_idx = subset_indices(torch.arange(len(train)), cfg.train_size, seed=cfg.seed)
    batches = BatchIterator(train.images, train.labels, cfg.batch_size, indices=train_idx,
                            order="shuffle", drop_last=True, seed=cfg.seed, device=device,
                            transform=augment.train)
    optimizer = cfg.optimizer(net.parameters())
    scheduler = cosine_schedule(optimizer, cfg.epochs * len(batches), cfg.lr_min)
    net.train()
    for x, y in batches.take(cfg.epochs * len(batches)):
        loss = F.cross_entropy(net(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
    test_idx = subset_indices(torch.arange(len(test)), cfg.test_size, seed=cfg.seed)
    images = augment.eval(test.images[test_idx].to(device))
    return 100.0 * path_accuracy(net, images, test.labels[test_idx].to(device))


class StandaloneTrainer:
    """Trains archs of ``space`` stand-alone with the ``rcfg`` settings on ``data``'s dataset
    into ``cache_dir``, one file per arch (see :func:`cache_file`); the data is loaded on the
    first training."""

    def __init__(self, rcfg: RetrainConfig, data: DataConfig, space: SearchSpace,
                 cache_dir: Path, device: torch.device | str) -> None:
        self.rcfg, self.data, self.space, self.cache_dir = rcfg, data, space, Path(cache_dir)
        self.device = torch.device(device)
        self.settings = training_settings(rcfg, data.dataset)

    def cached(self, arch: str) -> float | None:
        """``arch``'s cached accuracy if it was measured with these settings."""
        return _cached(cache_file(self.cache_dir, self.space, arch), self.settings)

    @cached_property
    def images(self) -> tuple[ImageTensors, ImageTensors, BatchAugment]:
        """The train and test images at ``retrain.resolution``, and their normalisation."""
        d, resolution = self.data, self.rcfg.resolution
        train = load_dataset(d.dataset, d.root, "train", resolution, download=d.download)
        test = load_dataset(d.dataset, d.root, "test", resolution, download=d.download)
        return train, test, BatchAugment(*normalisation(d.dataset, train.images),
                                         channels_last=True)

    def train(self, arch: str) -> tuple[float, float]:
        """Train ``arch`` from scratch: (its test accuracy, seconds)."""
        start = time.perf_counter()
        accuracy = train_standalone(self.space.parse(arch), self.rcfg, *self.images, self.device)
        return accuracy, time.perf_counter() - start

    def write(self, arch: str, accuracy: float, seconds: float) -> Path:
        """Cache ``arch``'s measured ``accuracy`` (atomically); the file."""
        path = cache_file(self.cache_dir, self.space, arch)
        atomic_write_json(path, {"arch": arch, "test_acc": accuracy, "seconds": seconds,
                                 **self.settings})
        return path


def retrain_top_k(results: Sequence[Record], cfg: SearchConfig, train_cfg: TrainConfig,
                  truths: Mapping[str, float | None], cache_dir: Path, device: torch.device,
                  env: DistEnv = DistEnv()) -> dict[str, Any]:
    """Retrain the union of every estimator's top-k (at the largest B); per-estimator means of the
    measured test accuracy, beside the ground-truth table's when there is one. Under torchrun
    every rank calls this; rank r trains every world_size-th arch still missing from the cache
    (every rank has listed the missing ones before any is written)."""
    rcfg, budget = cfg.retrain, max(cfg.finetune.budgets)
    names = rcfg.estimators or list(cfg.estimators.names)
    archs = [r.arch for r in results]
    tops = {name: [archs[i] for i in top_k([r.score(name, budget) for r in results],
                                           rcfg.top_k)] for name in names}
    union = list(dict.fromkeys(a for top in tops.values() for a in top))
    trainer = StandaloneTrainer(rcfg, train_cfg.data, search_spaces.create(train_cfg.model.space),
                                cache_dir, device)
    pending = [a for a in union if trainer.cached(a) is None]
    env.barrier()
    for arch in tqdm(pending[env.rank::env.world_size], desc="retrain", unit="arch",
                     disable=not (cfg.progress and env.is_main)):
        trainer.write(arch, *trainer.train(arch))
    env.barrier()
    measured = {arch: trainer.cached(arch) for arch in union}
    per_estimator = {}
    for name, top in tops.items():
        table = [truths.get(a) for a in top]
        per_estimator[name] = {
            "retrained_mean": sum(measured[a] for a in top) / len(top),
            "table_mean": (sum(table) / len(table)) if all(t is not None for t in table) else None,
        }
    return {"budget": budget, "top_k": rcfg.top_k, "settings": trainer.settings,
            "archs": {a: {"test_acc": measured[a], "table": truths.get(a)} for a in union},
            "estimators": per_estimator}


def _cached(path: Path, settings: Mapping[str, Any]) -> float | None:
    """The cached accuracy at ``path`` if it was measured with ``settings`` (a section of
    ``settings`` matches a record's section holding the same values for its keys)."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    for key, value in settings.items():
        stored = record.get(key)
        if isinstance(value, Mapping):
            if not isinstance(stored, Mapping) or any(stored.get(k) != v
                                                      for k, v in value.items()):
                return None
        elif stored != value:
            return None
    return float(record["test_acc"])


def _from_main(value: Any, env: DistEnv) -> Any:
    """Rank 0's ``value`` on every rank (``value`` itself in a single process)."""
    if not env.distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


class StandaloneLabels(GroundTruth):
    """Labels measured on demand (``labels.source=standalone``): an arch with no cached result
    under the ``retrain`` settings is trained stand-alone from scratch by ``trainer`` and
    cached; its test accuracy is the label.

    Under torchrun every rank asks for the same labels in the same order. Rank 0 decides from
    the cache whether an arch needs training; if so every rank trains it with the same seed
    (so the ranks wait on each other for no longer than one training, well within the
    collectives' timeout), rank 0 alone writes the cache, and every rank takes rank 0's value,
    so the ranks agree exactly even where GPU kernels are not deterministic."""

    name = "standalone"

    def __init__(self, trainer: StandaloneTrainer, env: DistEnv = DistEnv()) -> None:
        self.trainer, self.env = trainer, env

    def lookup(self, arch: Any) -> float | None:
        arch = str(arch)
        known = _from_main(self.trainer.cached(arch) if self.env.is_main else None, self.env)
        if known is not None:
            return known
        accuracy, seconds = self.trainer.train(arch)
        if self.env.is_main:
            path = self.trainer.write(arch, accuracy, seconds)
            tqdm.write(f"label: trained {arch} stand-alone for {self.trainer.rcfg.epochs} "
                       f"epoch(s) in {seconds:.1f} s: test accuracy {accuracy:.2f} % "
                       f"(cached in {path})")
        return _from_main(accuracy, self.env)

    def describe(self) -> str:
        r = self.trainer.rcfg
        size = ", ".join(f"{k}={v}" for k, v in r.options().items())
        return (f"trained stand-alone on demand ({r.epochs} epochs, {size}, resolution "
                f"{r.resolution}, train images {r.train_size or 'all'}, test images "
                f"{r.test_size or 'all'}, seed {r.seed}; cached in {self.trainer.cache_dir})")


@register_ground_truth("retrain")
class RetrainTruth(GroundTruth):
    """Measured test accuracies of archs retrained into ``cache_dir`` (missing: not retrained)."""

    def __init__(self, cache_dir: Annotated[str | Path, Option(
                     type=str, help="a search's retrain/ folder")], space: SearchSpace) -> None:
        self.cache_dir, self.space = Path(cache_dir), space

    def lookup(self, arch: Any) -> float | None:
        try:
            record = json.loads(cache_file(self.cache_dir, self.space, str(arch)).read_text())
        except (OSError, ValueError):
            return None
        return float(record["test_acc"])

    def describe(self) -> str:
        return f"retrained from scratch ({self.cache_dir})"
