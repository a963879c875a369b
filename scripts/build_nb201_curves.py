"""Build the shipped learning-curve table from the matched-scale training records.

    python scripts/build_nb201_curves.py [--records results/matched_scale/archs]
                                         [--out search_spaces/tables/nb201_c8n1_curves.npz]

Reads every ``<position>.json`` that ``experiments/matched_scale.py`` wrote (one NB201 cell
trained stand-alone at the CPU supernet's scale), checks that they share one recipe and that
each cell appears once, and writes :mod:`search_spaces.nb201_curves`'s format: per-epoch
metrics and final values as float64, the first epochs' minibatch losses as float32, the cells'
table rows, and a ``meta`` with the recipe, the arch texts in candidate order, each cell's
training seconds, the records' sha256 and this command. The same records give the same bytes.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

import search_spaces
from search_spaces.nb201_curves import CURVES_PATH, EPOCH_METRICS, FORMAT
from search_spaces.nb201_table import write_table
from speedynas_core.atomic_io import atomic_writer
from speedynas_core.cli import run_cli
from speedynas_core.errors import SpeedyNASError

DESCRIPTIONS = {
    "train_loss": "mean training cross-entropy over the epoch's minibatches (train mode, "
                  "augmented, while training)",
    "train_acc": "training accuracy (%) over the epoch's minibatches, while training",
    "val_loss": "cross-entropy on a fixed draw of 5,000 images of the validation half "
                "(eval mode) after the epoch",
    "val_acc": "accuracy (%) on the same 5,000 validation images after the epoch",
    "test_loss": "cross-entropy on the 10,000 CIFAR-10 test images after the epoch",
    "test_acc": "accuracy (%) on the 10,000 test images after the epoch",
}


def read_records(folder: Path) -> list[dict[str, Any]]:
    """The records of ``folder`` in candidate order; refuses mixed recipes and repeated cells."""
    files = sorted(folder.glob("*.json"))
    if not files:
        raise SpeedyNASError(f"no records in {folder}; run experiments/matched_scale.py first")
    records = [json.loads(f.read_text()) for f in files]
    recipes = {json.dumps(r["recipe"], sort_keys=True) for r in records}
    if len(recipes) != 1:
        raise SpeedyNASError(f"the records in {folder} were trained with {len(recipes)} "
                             "different recipes; keep one")
    archs = [r["arch"] for r in records]
    if len(set(archs)) != len(archs):
        raise SpeedyNASError(f"{folder} holds a cell twice")
    return sorted(records, key=lambda r: r["position"])


def build(records: list[dict[str, Any]], digest: str) -> tuple[dict[str, np.ndarray],
                                                               dict[str, Any]]:
    """The table's arrays and meta."""
    space = search_spaces.create("nb201")
    recipe = records[0]["recipe"]
    arrays: dict[str, np.ndarray] = {
        "rows": np.array([space.index_of(space.parse(r["arch"])) for r in records], np.int32)}
    for metric in EPOCH_METRICS:
        arrays[f"epoch_{metric}"] = np.array([[h[metric] for h in r["history"]]
                                              for r in records], np.float64)
    arrays["minibatch_loss"] = np.array([r["minibatch_loss"] for r in records], np.float32)
    for key in ("val_acc_all", "val_loss_all"):
        arrays[f"final_{key}"] = np.array([r["final"][key] for r in records], np.float64)
    meta = {
        "format": FORMAT, "space": "nb201", "cells": len(records),
        "recipe": recipe,
        "archs": [r["arch"] for r in records],
        "positions": [r["position"] for r in records],
        "seconds": [round(r["seconds"], 1) for r in records],
        "epoch_metrics": {m: DESCRIPTIONS[m] for m in EPOCH_METRICS},
        "minibatch_loss": f"training loss of every minibatch of the first "
                          f"{recipe['minibatch_epochs']} epochs ({recipe['steps_per_epoch']} "
                          "per epoch), float32",
        "final": {"val_acc_all": "accuracy (%) on the whole 25,000-image validation half "
                                 "after the last epoch",
                  "val_loss_all": "cross-entropy on the whole validation half after the "
                                  "last epoch"},
        "source": "experiments/matched_scale.py records (the cells of the seed-123 candidate "
                  "draw of results/table2/randnas/scores.csv, in its order)",
        "records_sha256": digest,
        "command": "python " + " ".join(["scripts/build_nb201_curves.py", *sys.argv[1:]]),
    }
    return arrays, meta


def records_digest(folder: Path) -> str:
    """sha256 over the record files' names and bytes, in name order."""
    sha = hashlib.sha256()
    for f in sorted(folder.glob("*.json")):
        sha.update(f.name.encode())
        sha.update(f.read_bytes())
    return sha.hexdigest()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=Path, default=Path("results/matched_scale/archs"))
    parser.add_argument("--out", type=Path, default=CURVES_PATH)
    args = parser.parse_args(argv)
    records = read_records(args.records)
    arrays, meta = build(records, records_digest(args.records))
    with atomic_writer(args.out) as handle:
        write_table(handle, arrays, meta)
    print(f"{args.out}: {len(records)} cells, {args.out.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    run_cli(main)
