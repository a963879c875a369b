"""torch.distributed plumbing for ``torchrun``: process group, rank roles, gradient averaging.

Launched by ``torchrun --nproc_per_node=K`` (which sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
MASTER_PORT), each rank joins one process group: ``nccl`` when it trains on CUDA (one GPU per
rank, ``cuda:LOCAL_RANK``), ``gloo`` on CPU. Without torchrun everything here is a no-op for a
single process, so the same code path serves both.

Why gradients are averaged by hand instead of wrapping the supernet in DistributedDataParallel:
a step trains m paths (FairNAS: 5, MultiPaths: k) with one backward each and a different subgraph
each time; DDP would need ``find_unused_parameters`` plus ``no_sync`` for the first m-1
backwards, and it then treats parameters used only by earlier paths as unused in the synchronised
pass. Every rank draws the same paths from the same step-seeded generator, so every rank has
gradients for exactly the same parameters: one all-reduce over those (flattened into one buffer)
after the last path is the whole synchronisation, and the thousands of unused ops are never
touched or waited for.
"""
from __future__ import annotations

import datetime
import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

from .errors import SpeedyNASError
from .runtime import resolve_device


@dataclass(frozen=True)
class DistEnv:
    """This process's place in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0 writes checkpoints, TensorBoard, results and progress bars."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True under torchrun with more than one process."""
        return self.world_size > 1

    def barrier(self) -> None:
        """Wait for every rank (no-op for one process)."""
        if self.distributed:
            dist.barrier()


def init_distributed(device_name: str, timeout_s: float = 600.0) -> tuple[DistEnv, torch.device]:
    """Join the process group torchrun describes (if any) and pick this rank's device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistEnv(), resolve_device(device_name)
    env = DistEnv(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")))
    device = resolve_device(device_name)
    if device.type == "cuda":
        if env.local_rank >= torch.cuda.device_count():
            raise SpeedyNASError(f"local rank {env.local_rank} has no GPU: this node has "
                                 f"{torch.cuda.device_count()}; use --nproc_per_node <= that")
        device = torch.device("cuda", env.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                                timeout=datetime.timedelta(seconds=timeout_s))
    return env, device


def average_gradients(module: nn.Module, env: DistEnv,
                      values: Sequence[float] = ()) -> list[float]:
    """All-reduce (mean) the gradients that exist and ``values`` (a step's loss, accuracy and
    flags) in one flattened buffer, so a training step waits on one collective; returns the
    averaged ``values`` (as given when not distributed)."""
    if not env.distributed:
        return list(values)
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    extra = torch.tensor(values, dtype=grads[0].dtype if grads else torch.float32,
                         device=grads[0].device if grads else None)
    flat = _flatten_dense_tensors([*grads, extra])
    dist.all_reduce(flat)
    flat /= env.world_size
    *synced, averaged = _unflatten_dense_tensors(flat, [*grads, extra])
    for grad, new in zip(grads, synced):
        grad.copy_(new)
    return averaged.tolist()


def average_buffers(module: nn.Module, env: DistEnv) -> None:
    """Average floating-point buffers (BN running statistics) over ranks."""
    if not env.distributed:
        return
    buffers = [b for b in module.buffers() if b.is_floating_point()]
    if buffers:
        flat = _flatten_dense_tensors(buffers)
        dist.all_reduce(flat)
        flat /= env.world_size
        for buffer, synced in zip(buffers, _unflatten_dense_tensors(flat, buffers)):
            buffer.copy_(synced)


def shutdown(env: DistEnv) -> None:
    """Leave the process group."""
    if env.distributed and dist.is_initialized():
        dist.destroy_process_group()
