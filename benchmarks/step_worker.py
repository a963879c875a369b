"""Times supernet training steps and fine-tune steps with whatever ``supernet`` package is
first on ``PYTHONPATH`` (benchmarks/step_speed.py runs it against two source trees).

    python benchmarks/step_worker.py SPACE RESOLUTION BATCH STEPS [COMPILE [ARCH]]

Prints one JSON line: ``train_seconds`` (per single-path training step: forward, backward,
grad clip 5, SGD with Nesterov and weight decay, as the trainer), ``finetune_seconds`` (per
step of the sub-network of ``ARCH``, or of a sampled arch, extracted as for a candidate's
fine-tune), ``warmup_seconds`` (the untimed warm-up steps of each, where any compilation
happens) and ``losses`` (the first 5 training losses from a fixed seed, for checking that
results are unchanged). Without ``ARCH`` it uses only APIs that every version of the project
has had.

``COMPILE`` (``benchmarks/step_speed.py --compile``) applies ``torch.compile`` to the parts
whose graph is static: ``ops`` compiles every module below the path choice (each op,
reduction, stem and head) in the supernet and the sub-network; ``subnet`` compiles the whole
extracted sub-network (its graph is fixed for a candidate's fine-tune; the training step stays
eager). ``none`` (default) compiles nothing.
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
#: Module classes whose graph does not depend on the sampled path (compiled by ``ops``).
STATIC_KINDS = ("ReLUConvBN", "SepConv", "DilConv", "FactorizedReduce", "AvgPool2d",
                "MaxPool2d", "ResidualReduction")
#: Untimed warm-up steps: enough sampled paths to compile every op at every stage's shape.
WARMUP = {"none": 3, "ops": 40, "subnet": 3}


def compile_static_parts(net: torch.nn.Module) -> None:
    """``torch.compile`` each module of ``net`` that sits below the path choice, in place."""
    torch._dynamo.config.recompile_limit = 64
    torch._dynamo.config.accumulated_recompile_limit = 4096
    for name, module in net.named_modules():
        if type(module).__name__ in STATIC_KINDS or name in ("stem", "lastact"):
            module.compile(dynamic=False)


def main() -> None:
    space_name, resolution, batch, steps = sys.argv[1], *map(int, sys.argv[2:5])
    compile_mode = sys.argv[5] if len(sys.argv) > 5 else "none"
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = supernet.create_supernet(space_name, **SIZES[space_name]).train()
    net = net.to(memory_format=torch.channels_last)
    if compile_mode == "ops":
        compile_static_parts(net)
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

    arch = (net.space.parse(sys.argv[6]) if len(sys.argv) > 6
            else net.space.sample(np.random.default_rng(1)))
    sub = net.extract(arch).train()
    if compile_mode == "ops":
        compile_static_parts(sub)
    elif compile_mode == "subnet":
        sub.compile(dynamic=False)
    sub_optimizer = torch.optim.SGD(sub.parameters(), **{**sgd, "lr": 0.001})

    def finetune_step() -> None:
        loss = F.cross_entropy(sub(x), y)
        sub_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        sub_optimizer.step()

    warmup: dict[str, float] = {}
    timings: dict[str, object] = {"warmup_seconds": warmup}
    for name, step in (("train_seconds", train_step), ("finetune_seconds", finetune_step)):
        start = time.perf_counter()
        for _ in range(WARMUP[compile_mode]):
            step()
        warmup[name] = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(steps):
            step()
        timings[name] = (time.perf_counter() - start) / steps
    print(json.dumps({**timings, "losses": losses[:5]}))


if __name__ == "__main__":
    main()
