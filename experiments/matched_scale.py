"""Stand-alone learning curves of NB201 archs at the CPU supernet's own scale (issue 31).

Every arch is trained from scratch as the CPU supernets are (``configs/nb201_cpu_*.yaml``):
C = 8, N = 1, 32 px, the 25k training half of ``split_seed`` 0, batch 64, SGD with Nesterov,
lr 0.025 cosine to 0.001, weight decay 5e-4, gradient clip 5, the same batches and
augmentation for every arch. Recorded per epoch: the running train loss and accuracy, loss and
accuracy on a fixed 5,000-image draw of the validation half and on all 10,000 test images, the
lr and the seconds; the training loss of every minibatch of the first ``--minibatch-epochs``
epochs; after the last epoch, loss and accuracy on the whole validation half.

The archs are the reported candidate draw (seed 123) in its order, read from a committed
search's ``scores.csv``, so their one-shot scores exist. Each arch's record is
``<out>/archs/<position>.json``, written once it is finished; an unfinished arch is checkpointed
after every epoch in ``<work-dir>`` (verified, ``weights_only``) and continues from there, so a
killed run resumes where it stopped. ``--processes N`` runs N shards as subprocesses (shard k
trains positions k, k+N, ...; one thread each), each with its log in ``<out>/logs``::

    OMP_NUM_THREADS=1 python experiments/matched_scale.py --processes 2 \\
        --out results/matched_scale --work-dir runs/matched_scale
"""
from __future__ import annotations

import argparse
import csv
import math
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

import search_spaces
from speedynas_core.atomic_io import atomic_write_json, load_checkpoint, save_checkpoint
from speedynas_core.cli import non_negative_int, positive_int, run_cli
from speedynas_core.errors import SpeedyNASError
from speedynas_core.optim import SGDConfig, cosine_schedule
from speedynas_core.stages import Stage, StageRunner, python_command, say
from speedynas_data.batches import BatchIterator
from speedynas_data.data_config import DataConfig
from speedynas_data.datasets import load_dataset
from speedynas_data.run_data import RunData, load_run_data
from speedynas_data.splits import subset_indices
from supernet import build_network

#: The recipe: the CPU supernets' data, size and optimiser (configs/nb201_cpu_randnas.yaml).
RECIPE: dict[str, Any] = {
    "C": 8, "N": 1, "resolution": 32, "split_seed": 0, "val_fraction": 0.5, "batch_size": 64,
    "lr": 0.025, "lr_min": 0.001, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4,
    "grad_clip": 5.0, "seed": 0, "val_images_per_epoch": 5000,
}
EVAL_BATCH = 1000


def read_archs(scores: Path, num: int) -> list[str]:
    """The first ``num`` distinct archs of a search's ``scores.csv``, in candidate order."""
    with scores.open(newline="") as handle:
        archs = list(dict.fromkeys(row["arch"] for row in csv.DictReader(handle)))
    if len(archs) < num:
        raise SpeedyNASError(f"{scores} lists {len(archs)} distinct archs, fewer than --num {num}")
    return archs[:num]


@torch.no_grad()
def evaluate(net: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor
             ) -> tuple[float, float]:
    """(mean cross-entropy, accuracy %) of ``net`` in eval mode on normalised ``images``."""
    net.eval()
    loss_sum, correct = 0.0, 0
    for start in range(0, len(labels), EVAL_BATCH):
        logits = net(images[start:start + EVAL_BATCH])
        y = labels[start:start + EVAL_BATCH]
        loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
        correct += int((logits.argmax(1) == y).sum())
    net.train()
    return loss_sum / len(labels), 100.0 * correct / len(labels)


class MatchedScaleTrainer:
    """The data every arch is trained and measured on, loaded once per process."""

    def __init__(self, root: str, epochs: int, train_size: int | None = None) -> None:
        cfg = DataConfig(root=root, resolution=RECIPE["resolution"], download=False,
                         split_seed=RECIPE["split_seed"], val_fraction=RECIPE["val_fraction"],
                         train_size=train_size)
        self.train_size = train_size
        self.data: RunData = load_run_data(cfg, None, channels_last=True)
        self.epochs = epochs
        test = load_dataset(cfg.dataset, cfg.root, "test", cfg.resolution, download=False)
        val_draw = subset_indices(self.data.val_idx, RECIPE["val_images_per_epoch"],
                                  seed=RECIPE["seed"])
        self.val = self._prepared(self.data.images[val_draw], self.data.labels[val_draw])
        self.test = self._prepared(test.images, test.labels)

    def _prepared(self, images: torch.Tensor, labels: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.data.augment.eval(images), labels

    def batches(self) -> BatchIterator:
        """The training batches, the same for every arch."""
        return self.data.batches("train", RECIPE["batch_size"], order="shuffle",
                                 seed=RECIPE["seed"], device=torch.device("cpu"),
                                 train_transform=True)

    def train(self, arch_text: str, checkpoint: Path, minibatch_epochs: int) -> dict[str, Any]:
        """Train one arch to the end (continuing from ``checkpoint`` if it exists); its record."""
        space = search_spaces.create("nb201")
        torch.manual_seed(RECIPE["seed"])
        net = build_network(space.parse(arch_text), num_classes=self.data.num_classes,
                            C=RECIPE["C"], N=RECIPE["N"]).to(memory_format=torch.channels_last)
        sgd = SGDConfig(lr=RECIPE["lr"], momentum=RECIPE["momentum"],
                        nesterov=RECIPE["nesterov"], weight_decay=RECIPE["weight_decay"])
        optimizer = sgd.optimizer(net.parameters())
        batches = self.batches()
        steps = len(batches)
        scheduler = cosine_schedule(optimizer, self.epochs * steps, RECIPE["lr_min"])
        state: dict[str, Any] = {"arch": arch_text, "history": [], "minibatch_loss": [],
                                 "seconds": 0.0}
        if checkpoint.exists():
            saved = load_checkpoint(checkpoint)
            if saved["arch"] != arch_text:
                raise SpeedyNASError(f"{checkpoint} holds {saved['arch']}, not {arch_text}")
            net.load_state_dict(saved["net"])
            optimizer.load_state_dict(saved["optimizer"])
            scheduler.load_state_dict(saved["scheduler"])
            batches.load_state_dict(saved["batches"])
            state = {k: saved[k] for k in state}
        net.train()
        for epoch in range(len(state["history"]), self.epochs):
            start = time.perf_counter()
            correct, seen = 0, 0
            losses = []
            for x, y in batches:
                logits = net(x)
                loss = F.cross_entropy(logits, y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(net.parameters(), RECIPE["grad_clip"])
                optimizer.step()
                scheduler.step()
                losses.append(loss.item())
                correct += int((logits.argmax(1) == y).sum())
                seen += len(y)
            loss_sum = sum(losses)
            if epoch < minibatch_epochs:
                state["minibatch_loss"].extend(losses)
            val_loss, val_acc = evaluate(net, *self.val)
            test_loss, test_acc = evaluate(net, *self.test)
            state["history"].append({
                "epoch": epoch + 1, "train_loss": loss_sum / steps, "train_acc": 100.0 * correct / seen,
                "val_loss": val_loss, "val_acc": val_acc, "test_loss": test_loss,
                "test_acc": test_acc, "lr": optimizer.param_groups[0]["lr"],
                "seconds": time.perf_counter() - start})
            state["seconds"] += time.perf_counter() - start
            if not all(math.isfinite(v) for v in (loss_sum, val_loss, test_loss)):
                raise SpeedyNASError(f"{arch_text}: the loss is not finite after epoch {epoch + 1}")
            save_checkpoint({**state, "net": net.state_dict(), "optimizer": optimizer.state_dict(),
                             "scheduler": scheduler.state_dict(),
                             "batches": batches.state_dict()}, checkpoint)
        full_val = self._prepared(self.data.images[self.data.val_idx],
                                  self.data.labels[self.data.val_idx])
        val_loss, val_acc = evaluate(net, *full_val)
        return {**state, "final": {"val_loss_all": val_loss, "val_acc_all": val_acc,
                                   **{k: state["history"][-1][k] for k in
                                      ("train_loss", "train_acc", "test_loss", "test_acc")}},
                "recipe": {**RECIPE, "epochs": self.epochs,
                           "minibatch_epochs": minibatch_epochs, "steps_per_epoch": steps,
                           **({"train_size": self.train_size} if self.train_size else {})}}


def run_shard(args: argparse.Namespace) -> None:
    """Train this shard's archs that have no record yet."""
    torch.set_num_threads(1)
    archs = read_archs(args.scores, args.num)
    mine = [(i, a) for i, a in enumerate(archs)
            if i % args.shards == args.shard and not (args.out / "archs" / f"{i:03d}.json").exists()]
    if not mine:
        return
    trainer = MatchedScaleTrainer(args.data_root, args.epochs, args.train_size)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    for done, (i, arch) in enumerate(mine):
        checkpoint = args.work_dir / f"{i:03d}.pt"
        record = trainer.train(arch, checkpoint, args.minibatch_epochs)
        atomic_write_json(args.out / "archs" / f"{i:03d}.json", {"position": i, **record})
        checkpoint.unlink(missing_ok=True)
        say(f"shard {args.shard}: arch {i} done ({done + 1}/{len(mine)}), test "
            f"{record['final']['test_acc']:.2f}%, {record['seconds']:.0f} s")


def all_done(out: Path, num: int, shard: int, shards: int) -> bool:
    """Whether every arch of ``shard`` has its record."""
    return all((out / "archs" / f"{i:03d}.json").exists() for i in range(shard, num, shards))


def run_all(args: argparse.Namespace) -> None:
    """Run ``--processes`` shards as subprocesses (resuming, skipping finished shards)."""
    args.out.mkdir(parents=True, exist_ok=True)
    common = ["--scores", str(args.scores), "--num", str(args.num), "--epochs", str(args.epochs),
              "--minibatch-epochs", str(args.minibatch_epochs), "--out", str(args.out),
              "--work-dir", str(args.work_dir), "--data-root", args.data_root,
              *(["--train-size", str(args.train_size)] if args.train_size else []),
              "--shards", str(args.processes)]
    stages = [Stage(f"shard{k}", python_command(__file__, *common, "--shard", str(k)),
                    args.out / "archs", args.out / "logs" / f"shard{k}.log",
                    lambda _, k=k: all_done(args.out, args.num, k, args.processes))
              for k in range(args.processes)]
    runner = StageRunner(args.out / "commands.jsonl", cwd=Path.cwd(),
                         env={"OMP_NUM_THREADS": "1"})
    runner.run(stages, jobs=args.processes)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scores", type=Path, default=Path("results/table2/randnas/scores.csv"),
                        help="the candidate draw whose archs are trained, in its order")
    parser.add_argument("--num", type=positive_int, default=100, help="how many archs")
    parser.add_argument("--epochs", type=positive_int, default=12)
    parser.add_argument("--minibatch-epochs", type=non_negative_int, default=2,
                        help="record every minibatch's loss in these first epochs")
    parser.add_argument("--out", type=Path, default=Path("results/matched_scale"))
    parser.add_argument("--work-dir", type=Path, default=Path("runs/matched_scale"))
    parser.add_argument("--data-root", default="data/cifar10")
    parser.add_argument("--train-size", type=positive_int, default=None,
                        help="train on this many images of the training half (tests; default: "
                             "all 25,000)")
    parser.add_argument("--processes", type=positive_int, default=1,
                        help="shards run as subprocesses, one thread each")
    parser.add_argument("--shard", type=non_negative_int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--shards", type=positive_int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.shard is not None:
        run_shard(args)
    elif args.processes == 1:
        args.shard, args.shards = 0, 1
        run_shard(args)
    else:
        run_all(args)


if __name__ == "__main__":
    run_cli(main)
