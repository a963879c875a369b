"""Times supernet training steps and fine-tune steps with whatever ``supernet`` package is
first on ``PYTHONPATH`` (benchmarks/step_speed.py runs it against two source trees).

    python benchmarks/step_worker.py SPACE RESOLUTION BATCH STEPS

Prints one JSON line: ``train_seconds`` (per single-path training step: forward, backward,
grad clip 5, SGD with Nesterov and weight decay, as the trainer), ``finetune_seconds`` (per
step of an extracted sub-network, as a candidate's fine-tune) and ``losses`` (the first 5
training losses from a fixed seed, for checking that results are unchanged). It uses only APIs
that every version of the project has had.
"""
from __future__ import annotations

import json
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

import supernet

SIZES = {"nb201": {"C": 8, "N": 1}, "darts": {"C": 8, "layers": 5}}


def main() -> None:
    space_name, resolution, batch, steps = sys.argv[1], *map(int, sys.argv[2:5])
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = supernet.create_supernet(space_name, **SIZES[space_name]).train()
    net = net.to(memory_format=torch.channels_last)
    rng = np.random.default_rng(0)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, resolution, resolution, generator=generator)
    x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), generator=generator)
    sgd = {"lr": 0.025, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4}
    optimizer = torch.optim.SGD(net.parameters(), **sgd)
    losses = []

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(x, net.space.sample(rng)), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        optimizer.step()
        losses.append(loss.item())

    sub = net.extract(net.space.sample(np.random.default_rng(1))).train()
    sub_optimizer = torch.optim.SGD(sub.parameters(), **{**sgd, "lr": 0.001})

    def finetune_step() -> None:
        loss = F.cross_entropy(sub(x), y)
        sub_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        sub_optimizer.step()

    timings = {}
    for name, step in (("train_seconds", train_step), ("finetune_seconds", finetune_step)):
        for _ in range(3):
            step()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        timings[name] = (time.perf_counter() - start) / steps
    print(json.dumps({**timings, "losses": losses[:5]}))


if __name__ == "__main__":
    main()
