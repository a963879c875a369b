"""What the matched-scale learning curves say (issue 31): the ceiling, the paper's Figure 1 at
matched scale, the one-shot estimators against both truths, and curve extrapolation.

    python experiments/matched_scale_report.py [--curves search_spaces/tables/nb201_c8n1_curves.npz]
        [--scores results/table2] [--out results/matched_scale]

Reads the curve table (``scripts/build_nb201_curves.py``), NAS-Bench-201's shipped table, and
each committed one-shot search of the same cells (``<scores>/<sampler>/scores.csv``, the
seed-123 candidate draw). Writes ``report.md`` and ``report.json`` (every correlation with its
bootstrap 95 % interval), ``settling.csv``, ``figure1.csv``, ``lce.csv``, ``one_shot.csv``,
``curves.png`` and ``figure1.png`` into ``--out``. The matched-scale truth is the last epoch's
test accuracy (10,000 images); NB201's is ``cifar10_test`` (C = 16, N = 5, 200 epochs).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import search_spaces  # noqa: E402
from estimators import create_estimator  # noqa: E402
from estimators.curves import extrapolate  # noqa: E402
from estimators.trajectory import Candidate, Trajectory  # noqa: E402
from search_spaces.nb201_curves import CURVES_PATH, Curves, read_curves  # noqa: E402
from speedynas_core.atomic_io import (atomic_write_csv, atomic_write_json,  # noqa: E402
                                      atomic_write_text)
from speedynas_core.cli import run_cli  # noqa: E402
from speedynas_search.analysis import shown_interval  # noqa: E402
from speedynas_search.metrics import (difference_interval, finite_or_bottom,  # noqa: E402
                                      rank_metrics)

SAMPLERS = ("randnas", "fairnas", "multipaths")
#: One-shot estimators read from each search's scores.csv, at the table's largest B.
ONE_SHOT = ("tse", "tse_e", "tse_ema", "sovl", "valacc", "tlmini", "params", "synflow", "jacov",
            "nwot", "combo(tse+synflow+jacov+nwot)")
#: Minibatch budgets of the first epochs at which the TSE family is read.
MINIBATCH_BUDGETS = (50, 100, 200, 300, 390, 780)
#: Epoch-level TSE family as in the paper's Figure 1 (TSE-E over the last epoch, EMA 0.9).
EPOCH_ESTIMATORS = {"tse": {}, "tse_e": {"window": 1}, "tse_ema": {"gamma": 0.9}}
LCE_FAMILIES = ("pow3", "ensemble")
PLURAL = {"epoch": "epochs", "minibatch": "minibatches"}
#: Cells ``lce_learned`` sees to the last epoch (fitted on; left out of the LCE comparison).
LCE_FIT = 20


def correlation(scores: Sequence[float], truth: Sequence[float]) -> dict[str, Any]:
    """Spearman and Kendall with bootstrap 95 % intervals (and Kendall in the true top 10 %)."""
    m = rank_metrics(list(scores), list(truth), ks=(1,))
    return {k: m[k] for k in ("n", "spearman", "spearman_ci", "kendall", "kendall_ci",
                              "kendall_top")}


def shown(m: dict[str, Any], kind: str = "spearman") -> str:
    """``0.812 [0.75, 0.86]``."""
    if m[kind] is None:
        return "n/a"
    return f"{m[kind]:.3f} {shown_interval(m[f'{kind}_ci'], signed=False)}"


def score_curves(name: str, options: dict[str, Any], curves: Sequence[Sequence[float]],
                 budget: int) -> list[float]:
    """Estimator ``name`` of each loss curve at ``budget`` (epochs or minibatches)."""
    estimator = create_estimator(name, **options)
    return [estimator.compute(Trajectory(list(losses)), Candidate("", 0, None), budget)
            for losses in curves]


def spearman_of(scores: Sequence[float], truth: Sequence[float]) -> dict[str, Any]:
    """Spearman with its bootstrap 95 % interval."""
    m = correlation(scores, truth)
    return {"spearman": m["spearman"], "spearman_ci": m["spearman_ci"]}


def settling(curves: Curves) -> list[dict[str, Any]]:
    """Per epoch: Spearman of its test-accuracy ranking with the previous epoch's (none for the
    first) and the last, with intervals."""
    acc = curves.epoch["test_acc"]
    rows = []
    for e in range(curves.epochs):
        row: dict[str, Any] = {"epoch": e + 1, "mean_test_acc": float(acc[:, e].mean())}
        row["vs_previous"] = (spearman_of(acc[:, e], acc[:, e - 1]) if e
                              else {"spearman": None, "spearman_ci": None})
        row["vs_last"] = spearman_of(acc[:, e], acc[:, -1])
        rows.append(row)
    return rows


def figure1(curves: Curves, truth: np.ndarray) -> list[dict[str, Any]]:
    """The TSE family after T epochs and after B minibatches, and the early-stopped validation
    accuracy after T epochs, each as rank correlation with ``truth``."""
    rows = []
    losses = curves.epoch["train_loss"]
    for t in range(1, curves.epochs + 1):
        for name, options in EPOCH_ESTIMATORS.items():
            scores = score_curves(name, options, losses, t)
            rows.append({"unit": "epoch", "at": t, "estimator": name,
                         **correlation(scores, truth)})
        rows.append({"unit": "epoch", "at": t, "estimator": "val_acc",
                     **correlation(curves.epoch["val_acc"][:, t - 1], truth)})
    for b in (b for b in MINIBATCH_BUDGETS if b <= curves.minibatch_loss.shape[1]):
        for name in EPOCH_ESTIMATORS:
            scores = score_curves(name, {}, curves.minibatch_loss, b)
            rows.append({"unit": "minibatch", "at": b, "estimator": name,
                         **correlation(scores, truth)})
    return rows


def lce_rows(curves: Curves, truth: np.ndarray) -> list[dict[str, Any]]:
    """From the first E epochs' train losses: the extrapolated last-epoch loss (each parametric
    family), the learned extrapolation (``lce_learned``: an SVR fitted on :data:`LCE_FIT` cells
    seen to the last epoch) and the last loss, against TSE after E epochs, as rank correlation
    with ``truth`` on the cells not fitted on."""
    losses = curves.epoch["train_loss"]
    fit = set(np.random.default_rng(0).choice(len(losses), size=LCE_FIT, replace=False).tolist())
    held = [i for i in range(len(losses)) if i not in fit]
    order = sorted(fit) + held
    learned = create_estimator("lce_learned", target=curves.epochs, fit_size=None, points=4)
    rows = []
    for e in range(4, curves.epochs):
        entries = {"tse": score_curves("tse", {}, losses[held], e),
                   "last_loss": [-losses[i][e - 1] for i in held]}
        for family in LCE_FAMILIES:
            entries[f"lce_{family}"] = [-extrapolate(losses[i][:e], family, curves.epochs, e)
                                        for i in held]
        trajectories = [Trajectory(list(losses[i] if i in fit else losses[i][:e]))
                        for i in order]
        scores = learned.score_set(trajectories, [Candidate("", 0, None)] * len(order), e)
        entries["lce_learned"] = scores[LCE_FIT:]
        for name, values in entries.items():
            rows.append({"epochs_seen": e, "estimator": name,
                         **correlation(values, truth[held])})
    return rows


def read_scores(path: Path) -> tuple[dict[str, dict[str, float]], list[int]]:
    """arch -> column -> value of a search's scores.csv, and its B values in order."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    budgets = sorted({int(c.rsplit("@B", 1)[1]) for c in rows[0] if "@B" in c})
    return {r["arch"]: {k: float(v) if v not in ("", None) else math.nan for k, v in r.items()
                        if k != "arch"} for r in rows}, budgets


def one_shot(curves: Curves, matched: np.ndarray, nb201: np.ndarray,
             scores_dir: Path) -> list[dict[str, Any]]:
    """Each committed search's estimators at its smallest and largest B against the
    matched-scale truth and against NB201, on the cells of the curve table."""
    rows = []
    for sampler in SAMPLERS:
        path = scores_dir / sampler / "scores.csv"
        if not path.exists():
            continue
        table, budgets = read_scores(path)
        for name in ONE_SHOT:
            for budget in dict.fromkeys((budgets[0], budgets[-1])):
                column = f"{name}@B{budget}"
                if column not in next(iter(table.values())):
                    continue
                scores = [table[a][column] for a in curves.archs]
                vs_matched, vs_nb201 = correlation(scores, matched), correlation(scores, nb201)
                rows.append({"sampler": sampler, "estimator": name, "budget": budget,
                             "matched": vs_matched, "nb201": vs_nb201,
                             "scale": {"spearman": vs_matched["spearman"] - vs_nb201["spearman"],
                                       "spearman_ci": scale_interval(scores, matched, nb201)}})
    return rows


def scale_interval(scores: Sequence[float], matched: np.ndarray,
                   nb201: np.ndarray) -> list[float] | None:
    """The paired bootstrap interval of what the change of scale costs an estimator: its
    Spearman with the matched truth minus its Spearman with NB201's, both on the same resampled
    cells (Spearman is symmetric, so the truths take the scores' place; a non-finite score
    ranks at the bottom, as in :func:`rank_metrics`)."""
    return difference_interval("spearman", matched, nb201,
                               finite_or_bottom(np.asarray(scores, dtype=float)))


def plot_curves(curves: Curves, nb201: np.ndarray, path: Path) -> None:
    """Test accuracy and train loss per epoch of every cell, coloured by the rank of its NB201
    accuracy (a rank, so that a few degenerate cells do not wash out the others' colours)."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.4), layout="constrained")
    order = np.argsort(nb201)
    rank = np.empty(len(order))
    rank[order] = np.arange(len(order))
    colours = plt.cm.viridis((rank + 0.5) / len(order))
    epochs = np.arange(1, curves.epochs + 1)
    for i in order:
        axes[0].plot(epochs, curves.epoch["test_acc"][i], color=colours[i], lw=0.8, alpha=0.8)
        axes[1].plot(epochs, curves.epoch["train_loss"][i], color=colours[i], lw=0.8, alpha=0.8)
    axes[0].set(xlabel="epoch", ylabel="test accuracy (%)",
                title=f"test accuracy of {len(nb201)} NB201 cells at C=8, N=1")
    axes[1].set(xlabel="epoch", ylabel="train loss (epoch mean)", yscale="log",
                title="training loss")
    sm = plt.cm.ScalarMappable(cmap="viridis", norm=plt.Normalize(0, 100))
    fig.colorbar(sm, ax=axes, label="NB201 cifar10_test accuracy, percentile")
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_figure1(rows: list[dict[str, Any]], path: Path) -> None:
    """Spearman with the final accuracy against epochs (left) and minibatches (right)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, unit in zip(axes, ("epoch", "minibatch")):
        names = dict.fromkeys(r["estimator"] for r in rows if r["unit"] == unit)
        for name in names:
            mine = [r for r in rows if r["unit"] == unit and r["estimator"] == name]
            x = [r["at"] for r in mine]
            ax.plot(x, [r["spearman"] for r in mine], marker="o", ms=3, label=name)
            ax.fill_between(x, [r["spearman_ci"][0] for r in mine],
                            [r["spearman_ci"][1] for r in mine], alpha=0.15)
        ax.set(xlabel=f"{PLURAL[unit]} trained", title=f"after T {PLURAL[unit]}")
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_ylabel("Spearman with the last epoch's test accuracy")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def flattened(row: dict[str, Any]) -> dict[str, Any]:
    """A row for CSV: a nested dict as ``key_field`` columns, an interval as ``low;high``."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        for name, v in (value.items() if isinstance(value, dict) else [(None, value)]):
            column = key if name is None else f"{key}_{name}"
            out[column] = f"{v[0]:.4f};{v[1]:.4f}" if isinstance(v, list) else v
    return out


def report(curves: Curves, scores_dir: Path, out: Path) -> dict[str, Any]:
    """Every measurement, written into ``out``; the summary dict."""
    space = search_spaces.create("nb201")
    nb201_truth = space.ground_truth("cifar10_test")
    twelve = space.ground_truth("cifar10_test_12ep_1seed")
    nb201 = np.array(nb201_truth.lookup_many(curves.archs), dtype=float)
    nb201_12 = np.array(twelve.lookup_many(curves.archs), dtype=float)
    matched = curves.column("test_acc")
    result = {
        "cells": len(curves.archs), "epochs": curves.epochs, "recipe": dict(curves.meta["recipe"]),
        "train_hours": sum(curves.meta["seconds"]) / 3600,
        "mean_test_acc": float(matched.mean()),
        "ceiling": {
            "matched_vs_nb201": correlation(matched, nb201),
            "matched_val_vs_nb201": correlation(curves.column("val_acc"), nb201),
            "nb201_12ep_vs_nb201": correlation(nb201_12, nb201),
            "matched_vs_nb201_12ep": correlation(matched, nb201_12),
        },
        "settling": settling(curves),
        "figure1": figure1(curves, matched),
        "figure1_nb201": figure1(curves, nb201),
        "lce": lce_rows(curves, matched),
        "one_shot": one_shot(curves, matched, nb201, scores_dir),
    }
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "report.json", result)
    for name in ("settling", "figure1", "lce", "one_shot"):
        atomic_write_csv(out / f"{name}.csv", [flattened(r) for r in result[name]])
    plot_curves(curves, nb201, out / "curves.png")
    plot_figure1(result["figure1"], out / "figure1.png")
    atomic_write_text(out / "report.md", markdown(result))
    return result


def markdown(r: dict[str, Any]) -> str:
    """The report as Markdown tables."""
    c = r["ceiling"]
    lines = [f"# Matched-scale learning curves: {r['cells']} NB201 cells, C=8 N=1, "
             f"{r['epochs']} epochs", "",
             f"Mean last-epoch test accuracy {r['mean_test_acc']:.2f} %; "
             f"{r['train_hours']:.2f} core-hours of training.", "",
             "## Ceiling (Spearman / Kendall, bootstrap 95 % intervals)", "",
             "| pair | Spearman | Kendall |", "|---|---|---|"]
    names = {"matched_vs_nb201": "matched test acc vs NB201 cifar10_test (200 ep)",
             "matched_val_vs_nb201": "matched val acc (25k) vs NB201 cifar10_test",
             "nb201_12ep_vs_nb201": "NB201 12-epoch vs NB201 200-epoch",
             "matched_vs_nb201_12ep": "matched test acc vs NB201 12-epoch"}
    lines += [f"| {names[k]} | {shown(m)} | {shown(m, 'kendall')} |" for k, m in c.items()]
    lines += ["", "## Settling: Spearman of each epoch's test-accuracy ranking", "",
              "| epoch | mean test acc | vs previous epoch | vs last epoch |", "|---|---|---|---|"]
    for s in r["settling"]:
        lines.append(f"| {s['epoch']} | {s['mean_test_acc']:.2f} | {shown(s['vs_previous'])} | "
                     f"{shown(s['vs_last'])} |")
    for key, truth in (("figure1", "the matched last-epoch test accuracy"),
                       ("figure1_nb201", "NB201 cifar10_test")):
        lines += ["", f"## Figure 1 at matched scale: Spearman with {truth}", "",
                  "| after | tse | tse_e | tse_ema | val_acc |", "|---|---|---|---|---|"]
        points = dict.fromkeys((x["unit"], x["at"]) for x in r[key])
        for unit, at in points:
            cells = {x["estimator"]: shown(x) for x in r[key]
                     if x["unit"] == unit and x["at"] == at}
            lines.append(f"| {at} {PLURAL[unit]} | " + " | ".join(
                cells.get(n, "") for n in ("tse", "tse_e", "tse_ema", "val_acc")) + " |")
    lines += ["", "## Extrapolating the train-loss curve from the first E epochs "
              "(Spearman with the matched last-epoch test accuracy, on the cells lce_learned "
              "was not fitted on)", "",
              "| E | tse | last loss | lce pow3 | lce ensemble | lce_learned |",
              "|---|---|---|---|---|---|"]
    for e in dict.fromkeys(x["epochs_seen"] for x in r["lce"]):
        cells = {x["estimator"]: shown(x) for x in r["lce"] if x["epochs_seen"] == e}
        lines.append(f"| {e} | {cells['tse']} | {cells['last_loss']} | {cells['lce_pow3']} | "
                     f"{cells['lce_ensemble']} | {cells['lce_learned']} |")
    lines += ["", "## One-shot estimators (results/table2, seed 123) against both truths", "",
              "| sampler | estimator | vs matched (Spearman) | vs NB201 (Spearman) | "
              "difference (paired) |", "|---|---|---|---|---|"]
    lines += [f"| {o['sampler']} | {o['estimator']}@B{o['budget']} | {shown(o['matched'])} | "
              f"{shown(o['nb201'])} | {o['scale']['spearman']:+.3f} "
              f"{shown_interval(o['scale']['spearman_ci'], signed=True)} |"
              for o in r["one_shot"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--curves", type=Path, default=CURVES_PATH)
    parser.add_argument("--scores", type=Path, default=Path("results/table2"))
    parser.add_argument("--out", type=Path, default=Path("results/matched_scale"))
    args = parser.parse_args(argv)
    result = report(read_curves(args.curves), args.scores, args.out)
    print(json.dumps({k: shown(v) for k, v in result["ceiling"].items()}, indent=1))


if __name__ == "__main__":
    run_cli(main)
