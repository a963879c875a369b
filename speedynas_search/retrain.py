"""Retraining the estimators' top-k from scratch as stand-alone networks (cached, resumable).

Each arch is trained once (the union of the top-k lists), its measured test accuracy cached in
``retrain/<key>.json`` together with the retrain settings; a rerun with the same settings skips
it. The ``retrain`` ground-truth source reads that cache.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Annotated, Any, Mapping, Sequence

import torch
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


def cache_file(cache_dir: Path, space: SearchSpace, arch: str) -> Path:
    """The cache file of one arch (keyed by its canonical text)."""
    key = lookup_key(space, arch)
    return cache_dir / f"{hashlib.sha1(key.encode()).hexdigest()[:16]}.json"


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


def retrain_top_k(results: Sequence[Record], cfg: SearchConfig, train_cfg: TrainConfig,
                  truths: Mapping[str, float | None], cache_dir: Path, device: torch.device,
                  env: DistEnv = DistEnv()) -> dict[str, Any]:
    """Retrain the union of every estimator's top-k (at the largest B); per-estimator means of the
    measured test accuracy, beside the ground-truth table's when there is one. Under torchrun
    every rank calls this; rank r trains every world_size-th arch still missing from the cache."""
    rcfg, budget = cfg.retrain, max(cfg.finetune.budgets)
    names = rcfg.estimators or list(cfg.estimators.names)
    archs = [r.arch for r in results]
    tops = {name: [archs[i] for i in top_k([r.score(name, budget) for r in results],
                                           rcfg.top_k)] for name in names}
    union = list(dict.fromkeys(a for top in tops.values() for a in top))
    settings = {"retrain": config_to_dict(rcfg), "dataset": train_cfg.data.dataset}
    space = search_spaces.create(train_cfg.model.space)
    measured = {}
    pending = [a for a in union if _cached(cache_file(cache_dir, space, a), settings) is None]
    pending = pending[env.rank::env.world_size]
    if pending:
        data = train_cfg.data
        train = load_dataset(data.dataset, data.root, "train", rcfg.resolution,
                             download=data.download)
        test = load_dataset(data.dataset, data.root, "test", rcfg.resolution,
                            download=data.download)
        augment = BatchAugment(*normalisation(data.dataset, train.images), channels_last=True)
        for arch in tqdm(pending, desc="retrain", unit="arch",
                         disable=not (cfg.progress and env.is_main)):
            start = time.perf_counter()
            accuracy = train_standalone(space.parse(arch), rcfg, train, test, augment, device)
            atomic_write_json(cache_file(cache_dir, space, arch),
                              {"arch": arch, "test_acc": accuracy,
                               "seconds": time.perf_counter() - start, **settings})
    env.barrier()
    for arch in union:
        measured[arch] = _cached(cache_file(cache_dir, space, arch), settings)
    per_estimator = {}
    for name, top in tops.items():
        table = [truths.get(a) for a in top]
        per_estimator[name] = {
            "retrained_mean": sum(measured[a] for a in top) / len(top),
            "table_mean": (sum(table) / len(table)) if all(t is not None for t in table) else None,
        }
    return {"budget": budget, "top_k": rcfg.top_k, "settings": settings,
            "archs": {a: {"test_acc": measured[a], "table": truths.get(a)} for a in union},
            "estimators": per_estimator}


def _cached(path: Path, settings: Mapping[str, Any]) -> float | None:
    """The cached accuracy at ``path`` if it was measured with ``settings``."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if any(record.get(k) != v for k, v in settings.items()):
        return None
    return float(record["test_acc"])


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
