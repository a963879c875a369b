"""Supernet training: the sampler's paths each step, SGD with a per-step cosine learning rate,
TensorBoard, a progress bar, atomic checkpoints and bit-exact resume."""
from __future__ import annotations

import json
import math
import signal
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from speedynas_core.atomic_io import atomic_write_json, load_checkpoint, save_checkpoint
from speedynas_core.config import config_to_dict
from speedynas_core.distributed import DistEnv, average_buffers, average_gradients
from speedynas_core.errors import SpeedyNASError
from speedynas_core.event_log import EventLog
from speedynas_core.optim import cosine_schedule
from speedynas_core.runtime import (
    Precision,
    capture_rng_state,
    mixed_precision,
    resolve_device,
    restore_rng_state,
    seed_everything,
    set_deterministic,
)
from speedynas_data.run_data import RunData, load_run_data

from .base import Supernet
from .measure import path_accuracy
from .registry import SUPERNETS
from .run_dir import checkpoint_meta, epoch_checkpoint, last_checkpoint, restore
from .samplers import Path as ArchPath
from .samplers import PathSampler, create_sampler
from .train_config import TrainConfig


def accumulate_paths(net: Supernet, x: torch.Tensor, y: torch.Tensor,
                     paths: Sequence[ArchPath], scale: float = 1.0,
                     precision: Precision = "fp32") -> tuple[float, float]:
    """Backward each path's loss scaled by ``scale``/m on the same batch (gradients accumulate,
    so they equal the gradient of ``scale`` x the mean loss), forward passes in ``precision``;
    returns the mean loss and accuracy over the paths."""
    losses, correct = [], 0
    for path in paths:
        with mixed_precision(x.device, precision):
            logits = net(x, path)
            loss = F.cross_entropy(logits, y)
        (loss * (scale / len(paths))).backward()
        losses.append(loss.detach())
        correct += int((logits.argmax(1) == y).sum())
    return float(torch.stack(losses).mean()), correct / (len(paths) * len(y))


class StopRequested(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived and a checkpoint was written (the CLI exits with 130)."""


@contextmanager
def stop_signals() -> Iterator[list[str]]:
    """Collect SIGINT/SIGTERM into a list instead of dying mid-step."""
    received: list[str] = []
    handler = lambda signum, frame: received.append(signal.Signals(signum).name)  # noqa: E731
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def weight_average(net: torch.nn.Module, decay: float | None) -> Any:
    """timm's exponential moving average of ``net``'s parameters (a copy of ``net``; buffers
    are copied, not averaged, so BN statistics stay those of the trained weights); ``None``
    without a decay."""
    if decay is None:
        return None
    from timm.utils import ModelEmaV3

    return ModelEmaV3(net, decay=decay, exclude_buffers=True)


class SupernetTrainer:
    """Trains one run; ``run()`` starts or (after a kill) continues it from ``last.pt``."""

    def __init__(self, cfg: TrainConfig, run_dir: Path, env: DistEnv = DistEnv(),
                 device: torch.device | None = None) -> None:
        self.cfg, self.run_dir, self.env = cfg, run_dir, env
        seed_everything(cfg.seed)
        set_deterministic(cfg.deterministic)
        self.device = device if device is not None else resolve_device(cfg.device)
        shards = env.world_size * cfg.optim.micro_batches
        if cfg.optim.batch_size % shards:
            raise SpeedyNASError(
                f"optim.batch_size={cfg.optim.batch_size} must divide evenly into "
                f"{env.world_size} rank(s) x optim.micro_batches={cfg.optim.micro_batches}")
        self.rank_batch = cfg.optim.batch_size // env.world_size
        self.data: RunData = load_run_data(cfg.data, run_dir, cfg.model.channels_last)
        net = SUPERNETS.create(cfg.model.space, num_classes=self.data.num_classes,
                               **cfg.model.options()).to(self.device)
        self.net = net.to(memory_format=torch.channels_last) if cfg.model.channels_last else net
        optim = cfg.optim
        self.batches = self.data.batches("train", optim.batch_size, order="shuffle",
                                         seed=cfg.seed, device=self.device,
                                         train_transform=True)
        self.steps_per_epoch = len(self.batches)
        self.total_steps = optim.epochs * self.steps_per_epoch
        self.optimizer = optim.optimizer(self.net.parameters())
        self.scheduler = cosine_schedule(
            self.optimizer, self.total_steps, optim.lr_min,
            warmup_steps=int(optim.warmup_epochs * self.steps_per_epoch))
        self.sampler = self.path_sampler()
        self.path_rng = np.random.default_rng([cfg.seed, 1])
        self.probe_archs = self.net.space.sample_many(cfg.log.probe_archs,
                                                      np.random.default_rng([cfg.seed, 2]))
        self.ema = weight_average(self.net, optim.ema_decay)
        self.step = 0
        self.started_at = 0  # the step the latest run() began at (after resuming)
        self.history: list[dict[str, float]] = []

    def path_sampler(self) -> PathSampler | None:
        """The sampler of ``cfg.sampler``, which draws each step's paths (``None`` in a trainer
        that trains no single paths)."""
        return create_sampler(self.cfg.sampler.name, self.net, **self.cfg.sampler.options())

    # ------------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue bit-identically (weights_only-loadable types)."""
        return {
            "meta": checkpoint_meta(self.net), "config": config_to_dict(self.cfg),
            "model": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "batches": self.batches.state_dict(),
            "path_rng": json.dumps(self.path_rng.bit_generator.state),
            "rng": capture_rng_state(), "step": self.step, "history": self.history,
            "finished": self.step >= self.total_steps,
            **({"model_ema": self.ema.module.state_dict()} if self.ema is not None else {}),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint made by :meth:`state_dict`."""
        self.net.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.batches.load_state_dict(state["batches"])
        self.path_rng.bit_generator.state = json.loads(state["path_rng"])
        restore_rng_state(state["rng"])
        self.step, self.history = int(state["step"]), list(state["history"])
        if self.ema is not None:
            if "model_ema" not in state:
                raise SpeedyNASError("optim.ema_decay is set, but the checkpoint holds no weight "
                                     "average (the run was started without one)")
            self.ema.module.load_state_dict(state["model_ema"])

    def save(self, epoch_end: bool) -> None:
        """Atomically write ``last.pt`` (and ``epoch_N.pt`` when due) and ``history.json`` (rank
        0; BN running statistics are averaged over ranks first, and the weight average takes
        them)."""
        average_buffers(self.net, self.env)
        if self.ema is not None:
            for kept, current in zip(self.ema.module.buffers(), self.net.buffers()):
                kept.copy_(current)
        if self.env.is_main:
            self.write_checkpoint(epoch_end)
        self.env.barrier()

    def write_checkpoint(self, epoch_end: bool) -> None:
        """The files of :meth:`save`."""
        state = self.state_dict()
        save_checkpoint(state, last_checkpoint(self.run_dir))
        keep = self.cfg.log.keep_every
        epoch = self.step // self.steps_per_epoch
        if epoch_end and keep and epoch % keep == 0:
            save_checkpoint(state, epoch_checkpoint(self.run_dir, epoch))
        atomic_write_json(self.run_dir / "history.json", self.history)

    def resume(self) -> bool:
        """Load ``last.pt`` if there is one; True when it was loaded."""
        path = last_checkpoint(self.run_dir)
        if not path.exists():
            return False
        state = load_checkpoint(path, expected=checkpoint_meta(self.net))
        restore(path, lambda: self.load_state_dict(state))
        return True

    # ------------------------------------------------------------------ training

    def train_step(self, x: torch.Tensor, y: torch.Tensor,
                   stop: bool = False) -> tuple[float, float, bool]:
        """One optimizer step over the sampler's paths on this rank's share of the global batch
        (split into ``optim.micro_batches``); returns the loss and accuracy (means over paths,
        micro-batches and ranks) and whether any rank was asked to stop."""
        self.optimizer.zero_grad(set_to_none=not self.cfg.optim.legacy_zero_grad)
        paths = self.sampler.paths(self.path_rng)
        micro = self.cfg.optim.micro_batches
        stats = np.zeros(2)
        for xm, ym in self.shards(x, y):
            stats += accumulate_paths(self.net, xm, ym, paths, scale=1.0 / micro,
                                      precision=self.cfg.precision)
        loss, acc, stopping = average_gradients(self.net, self.env,
                                                [*(stats / micro), float(stop)])
        self.weight_step(loss)
        return loss, acc, stopping > 0

    def shards(self, x: torch.Tensor, y: torch.Tensor) -> zip:
        """This rank's share of a global batch, split into ``optim.micro_batches``."""
        start = self.env.rank * self.rank_batch
        x, y = x[start:start + self.rank_batch], y[start:start + self.rank_batch]
        size = len(y) // self.cfg.optim.micro_batches
        return zip(x.split(size), y.split(size))

    def weight_step(self, loss: float) -> None:
        """Refuse a non-finite ``loss``, clip the gradients, step the optimizer, the learning
        rate and the weight average."""
        if not math.isfinite(loss):
            kept = last_checkpoint(self.run_dir)
            raise SpeedyNASError(
                f"training loss became {loss} at step {self.step} (epoch "
                f"{self.step // self.steps_per_epoch + 1}); stopped, "
                + (f"and the last good checkpoint {kept} is kept" if kept.exists() else
                   "before any checkpoint was written")
                + "; try a lower optim.lr or set optim.grad_clip")
        if self.cfg.optim.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.cfg.optim.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.net)

    def probe(self) -> list[float]:
        """Validation accuracy of the fixed probe archs on the first ``probe_images``."""
        if not self.probe_archs:
            return []
        idx = self.data.val_idx[: self.cfg.log.probe_images]
        x = self.data.augment.eval(self.data.images[idx].to(self.device))
        y = self.data.labels[idx].to(self.device)
        return [path_accuracy(self.net, x, y, arch, precision=self.cfg.precision)
                for arch in self.probe_archs]

    def run(self) -> list[dict[str, float]]:
        """Train until ``optim.epochs``; returns the per-epoch history (a finished run's:
        nothing is trained, ``started_at`` says so)."""
        resumed = self.resume()
        self.started_at = self.step
        if self.step >= self.total_steps:
            return self.history
        self.net.train()
        main = self.env.is_main
        writer = EventLog(self.run_dir / "tb", purge_step=self.step if resumed else None
                          ) if main else None
        if main and not resumed:
            writer.add_text("probe_archs", "\n\n".join(f"{i}: {a}" for i, a in
                                                       enumerate(self.probe_archs)))
        bar = tqdm(total=self.total_steps, initial=self.step, unit="step", dynamic_ncols=True,
                   disable=not (self.cfg.log.progress and main))
        try:
            with stop_signals() as stop:
                while self.step < self.total_steps:
                    self.train_epoch(writer, bar, stop)
        finally:
            bar.close()
            if writer is not None:
                writer.close()
        return self.history

    def train_epoch(self, writer: EventLog | None, bar: tqdm, stop: list[str]) -> None:
        """The rest of the current epoch, then its probes, history entry and checkpoint."""
        epoch = self.step // self.steps_per_epoch
        bar.set_description(f"epoch {epoch + 1}/{self.cfg.optim.epochs}")
        start, window = time.perf_counter(), time.perf_counter()
        sums = np.zeros(3)  # loss, accuracy, steps (this epoch since start/resume)
        interval = np.zeros(3)
        stopping = False
        for x, y in self.batches:
            loss, acc, stopping = self.train_step(x, y, bool(stop))
            self.step += 1
            sums += (loss, acc, 1)
            interval += (loss, acc, 1)
            bar.update()
            if writer is not None and self.step % self.cfg.log.log_every == 0:
                elapsed = time.perf_counter() - window
                bar.set_postfix(loss=f"{interval[0] / interval[2]:.3f}",
                                acc=f"{interval[1] / interval[2]:.3f}")
                writer.add_scalar("train/loss", interval[0] / interval[2], self.step)
                writer.add_scalar("train/acc", interval[1] / interval[2], self.step)
                writer.add_scalar("train/lr", self.scheduler.get_last_lr()[0], self.step)
                writer.add_scalar("train/images_per_s", interval[2] * len(y) / elapsed, self.step)
                interval[:], window = 0, time.perf_counter()
            if stopping and self.step % self.steps_per_epoch:
                self.save(epoch_end=False)
                self.stop_requested(stop)
        probes = self.probe() if self.env.is_main else []
        entry = {"epoch": epoch + 1, "step": self.step,
                 "train_loss": float(sums[0] / max(sums[2], 1)),
                 "train_acc": float(sums[1] / max(sums[2], 1)),
                 "lr": self.scheduler.get_last_lr()[0], "seconds": time.perf_counter() - start}
        if probes:
            entry["probe_acc_mean"] = float(np.mean(probes))
        entry.update(self.epoch_extras(writer))
        self.history.append(entry)
        self.save(epoch_end=True)
        if writer is not None:
            self.log_epoch(writer, bar, entry, probes)
        if stopping and self.step < self.total_steps:  # stopped on the epoch's last step
            self.stop_requested(stop)

    def log_epoch(self, writer: EventLog, bar: tqdm, entry: dict[str, Any],
                  probes: list[float]) -> None:
        """The epoch's TensorBoard scalars and its line under the progress bar (rank 0)."""
        for i, acc in enumerate(probes):
            writer.add_scalar(f"probe/arch_{i}", acc, self.step)
        for key, value in entry.items():
            if key not in ("epoch", "step") and isinstance(value, (int, float)):
                writer.add_scalar(f"epoch/{key}", value, self.step)
        writer.flush()
        bar.write(" ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                           for k, v in entry.items() if not isinstance(v, dict)))

    def stop_requested(self, stop: list[str]) -> None:
        """Raise :class:`StopRequested` (the checkpoint of ``self.step`` is written)."""
        raise StopRequested(f"{stop[0] if stop else 'stop'}: checkpoint saved at step "
                            f"{self.step}; continue with python train.py --run-dir "
                            f"{self.run_dir} --resume")

    def epoch_extras(self, writer: EventLog | None) -> dict[str, Any]:
        """More entries of the epoch's history record (a subclass's; ``writer`` on rank 0)."""
        return {}
