"""Supernet vs extracted sub-network speed, inheritance cost and the channels_last speed-up.

    python benchmarks/supernet_speed.py [--repeats 15] [--batch 64] [--resolution 32]

For each space at a CPU-scale size, and several random archs, prints (all measured in this run,
timings interleaved and summarised by their median):
  supernet single-path train step / sub-network train step   (goal <= 1.05)
  extract() (weight inheritance) / one sub-network train step  (goal <= 0.1)
  channels_last speed-up of a sub-network train step (contiguous time / channels_last time)
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

import search_spaces
import supernet

SIZES = {"nb201": {"C": 8, "N": 1}, "darts": {"C": 8, "layers": 5}}


def train_step(model: torch.nn.Module, optim: torch.optim.Optimizer, x: torch.Tensor,
               y: torch.Tensor, *arch) -> None:
    """One SGD step (forward, backward, update)."""
    loss = F.cross_entropy(model(x, *arch), y)
    optim.zero_grad(set_to_none=True)
    loss.backward()
    optim.step()


def seconds_of(fn: Callable[[], None]) -> float:
    """Wall time of one call of ``fn``."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(space_name: str, archs: int, repeats: int, batch: int, resolution: int) -> None:
    space = search_spaces.create(space_name)
    torch.manual_seed(0)
    net = supernet.create_supernet(space_name, **SIZES[space_name]).train()
    x = torch.randn(batch, 3, resolution, resolution)
    y = torch.randint(0, 10, (batch,))
    sgd = dict(lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
    net_opt = torch.optim.SGD(net.parameters(), **sgd)
    rows = []
    for arch in space.sample_many(archs, np.random.default_rng(0)):
        sub = net.extract(arch)
        sub_opt = torch.optim.SGD(sub.parameters(), **sgd)
        sub_cl = net.extract(arch).to(memory_format=torch.channels_last)
        cl_opt = torch.optim.SGD(sub_cl.parameters(), **sgd)
        x_cl = x.contiguous(memory_format=torch.channels_last)
        times: dict[str, list[float]] = {"super": [], "sub": [], "extract": [], "sub_cl": []}
        for _ in range(2):  # warm-up
            train_step(net, net_opt, x, y, arch)
            train_step(sub, sub_opt, x, y)
            train_step(sub_cl, cl_opt, x_cl, y)
        for _ in range(repeats):
            times["super"].append(seconds_of(lambda: train_step(net, net_opt, x, y, arch)))
            times["sub"].append(seconds_of(lambda: train_step(sub, sub_opt, x, y)))
            times["extract"].append(seconds_of(lambda: net.extract(arch)))
            times["sub_cl"].append(seconds_of(lambda: train_step(sub_cl, cl_opt, x_cl, y)))
        med = {k: statistics.median(v) for k, v in times.items()}
        rows.append(med)
        print(f"  {space_name} sub step {med['sub'] * 1e3:7.1f} ms | super/sub "
              f"{med['super'] / med['sub']:.3f} | extract/step {med['extract'] / med['sub']:.3f} "
              f"({med['extract'] * 1e3:.1f} ms) | channels_last x{med['sub'] / med['sub_cl']:.2f}")
    geo = {k: float(np.exp(np.mean([np.log(r[k]) for r in rows]))) for k in rows[0]}
    print(f"{space_name} {SIZES[space_name]} batch {batch} {resolution}px, geometric mean over "
          f"{archs} archs: super/sub step {geo['super'] / geo['sub']:.3f} (goal <= 1.05), "
          f"extract/step {geo['extract'] / geo['sub']:.3f} (goal <= 0.1), channels_last speed-up "
          f"x{geo['sub'] / geo['sub_cl']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", nargs="+", default=sorted(SIZES), choices=sorted(SIZES))
    parser.add_argument("--archs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--resolution", type=int, default=32)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for space_name in args.spaces:
        measure(space_name, args.archs, args.repeats, args.batch, args.resolution)


if __name__ == "__main__":
    main()
