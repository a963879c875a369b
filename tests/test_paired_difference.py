"""speedynas_search.analysis's paired differences (and experiments/paired_difference.py, its
command line) on a hand-made scores.csv (the format a search writes)."""
from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np
import pytest

from speedynas_core.errors import SpeedyNASError
from speedynas_search import analysis
from speedynas_search.metrics import difference_interval, pooled_interval, rank_metrics

from .conftest import REPO


def test_difference_table_reads_a_scores_csv(tmp_path) -> None:
    rng = np.random.default_rng(0)
    truth = rng.normal(90, 2, size=60)
    good, params = truth + rng.normal(0, 1, 60), truth + rng.normal(0, 3, 60)
    path = tmp_path / "scores.csv"
    lines = ["arch,params,flops,truth,good@B100,params@B100"]
    lines += [f"a{i},1,2,{t},{'' if i == 0 else g},{p}"  # an empty cell: a non-finite score
              for i, (t, g, p) in enumerate(zip(truth, good, params))]
    path.write_text("\n".join(lines) + "\n")
    columns = analysis.read_columns(path)
    assert np.isnan(columns["good@B100"][0]) and set(columns) == {"truth", "good@B100",
                                                                 "params@B100"}
    table = analysis.difference_table(columns, "params", 100, None)
    row = next(line for line in table.splitlines() if line.startswith("| good |"))
    rho = rank_metrics(columns["good@B100"], truth, resamples=0)["spearman"]
    base = rank_metrics(params, truth, resamples=0)["spearman"]
    low, high = difference_interval("spearman", columns["good@B100"], params, truth)
    assert row == f"| good | {rho:.3f} | {rho - base:+.3f} | [{low:+.3f}, {high:+.3f}] |"
    assert low > 0  # the less noisy estimator wins beyond doubt
    with pytest.raises(SpeedyNASError, match="no column tse@B100; estimators: good, params"):
        analysis.difference_table(columns, "params", 100, ["tse"])
    (tmp_path / "other.csv").write_text("arch,score\nx,1\n")
    with pytest.raises(SpeedyNASError, match="not a search's scores.csv"):
        analysis.read_columns(tmp_path / "other.csv")


def test_against_compares_each_estimator_with_itself_in_another_search(tmp_path) -> None:
    rng = np.random.default_rng(1)
    truth = rng.normal(90, 2, size=50)
    better, worse = truth + rng.normal(0, 1, 50), truth + rng.normal(0, 4, 50)
    params = rng.normal(0, 1, 50)

    def write(name: str, tse: np.ndarray, order: list[int]) -> Path:
        path = tmp_path / name
        path.write_text("arch,truth,tse@B100,params@B100\n" + "".join(
            f"a{i},{truth[i]},{tse[i]},{params[i]}\n" for i in order))
        return path

    lever = write("lever.csv", better, list(range(50)))
    base = write("base.csv", worse, list(range(49, -1, -1)))  # the same archs, another order
    columns = analysis.read_columns(lever)
    other = analysis.aligned(analysis.read_columns(base), analysis.read_archs(base),
                             analysis.read_archs(lever), base)
    assert other["truth"] == columns["truth"]
    table = analysis.against_table(columns, other, 100, None)
    rows = {line.split(" | ")[0][2:]: line for line in table.splitlines()[2:]}
    rho, base_rho = (rank_metrics(v, truth, resamples=0)["spearman"] for v in (better, worse))
    low, high = difference_interval("spearman", better, worse, truth)
    assert rows["tse"] == (f"| tse | {rho:.3f} | {base_rho:.3f} | {rho - base_rho:+.3f} | "
                           f"[{low:+.3f}, {high:+.3f}] |") and low > 0
    assert rows["params"].endswith("| +0.000 | [+0.000, +0.000] |")  # the same scores
    fewer = write("fewer.csv", worse, list(range(40)))
    with pytest.raises(SpeedyNASError, match="fewer.csv scores other candidates .*10 not shared"):
        analysis.aligned(analysis.read_columns(fewer), analysis.read_archs(fewer),
                         analysis.read_archs(lever), fewer)


def test_pool_reports_means_over_candidate_draws(tmp_path, capsys) -> None:
    rng = np.random.default_rng(2)
    paths, sets = [], []
    for draw in range(3):
        truth = rng.normal(90, 2, size=80)
        tse, params = truth + rng.normal(0, 1, 80), truth + rng.normal(0, 2, 80)
        path = tmp_path / f"seed{draw}.csv"
        path.write_text("arch,truth,tse@B100,params@B100\n" + "".join(
            f"a{draw}_{i},{t},{s},{p}\n" for i, (t, s, p) in enumerate(zip(truth, tse, params))))
        paths.append(path)
        sets.append((tse, params, truth))
    command_line = runpy.run_path(str(REPO / "experiments" / "paired_difference.py"))
    assert command_line["main"]([*map(str, paths), "--pool"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| tse |"))
    bases = [rank_metrics(p, t, resamples=0)["spearman"] for _, p, t in sets]
    assert f"minus params ({' / '.join(f'{b:.3f}' for b in bases)}) per draw" in out
    assert "| params |" not in out  # the baseline against itself is left out
    cells = [cell.strip() for cell in row.strip("| ").split(" | ")]
    rhos = [rank_metrics(s, t, resamples=0)["spearman"] for s, _, t in sets]
    diffs = [r - rank_metrics(p, t, resamples=0)["spearman"] for r, (_, p, t) in zip(rhos, sets)]
    assert cells[1] == " / ".join(f"{r:.3f}" for r in rhos)
    assert cells[2] == f"{np.mean(rhos):.3f}" and cells[5] == f"{np.mean(diffs):+.3f}"
    low, high = pooled_interval("spearman", [(s, p, t) for s, p, t in sets])
    assert cells[6] == f"[{low:+.3f}, {high:+.3f}]" and low > 0
    alone = pooled_interval("spearman", [(s, None, t) for s, _, t in sets])
    assert cells[3] == f"[{alone[0]:.3f}, {alone[1]:.3f}]"
    partial = tmp_path / "partial.csv"
    partial.write_text("arch,truth,params@B100\nx,1,1\ny,2,2\nz,3,3\n")
    with pytest.raises(SpeedyNASError, match="no column tse@B100 in .*partial.csv"):
        analysis.pooled_table([analysis.read_columns(p) for p in (paths[0], partial)],
                              [paths[0], partial], "params", 100, None)
