"""torchrun data parallelism on CPU (gloo, 2 processes): same weights as one process, resume."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from speedynas_core.atomic_io import load_checkpoint, read_jsonl

from .conftest import CIFAR10_DIR, NB201_TABLE, REPO, TIMING, wait_until

pytestmark = pytest.mark.e2e

TOY = REPO / "configs" / "toy.yaml"
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
            "--master_port=0", "--standalone"]
# torchrun gives each worker one thread; the single-process reference must match it, or
# different kernel blockings make float results differ in the last bits.
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("env", ONE_THREAD)
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=600, **kwargs)
    # a rank's one-line error first: torchrun's report after it fills the tail
    errors = [line for line in proc.stderr.splitlines() if "error: " in line]
    assert proc.returncode == 0, "\n".join(errors[:5]) + "\n" + proc.stderr[-3000:]
    return proc


def kill_tree(proc: subprocess.Popen, marker: str) -> None:
    """SIGKILL ``proc`` (started in a session of its own) and every process whose command line
    holds ``marker``: torchrun's workers run in sessions of their own and outlive its group."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    subprocess.run(["pkill", "-KILL", "-f", marker], check=False)
    while subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode == 0:
        time.sleep(0.05)


def train_args(run_dir: Path, *extra: str) -> list[str]:
    return [str(REPO / "train.py"), "--config", str(TOY), "--run-dir", str(run_dir),
            f"data.root={CIFAR10_DIR}", *extra]


def parameters(run_dir: Path) -> dict[str, torch.Tensor]:
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert state["finished"]
    return {k: v for k, v in state["model"].items() if "running" not in k and "num_batches" not in k}


@pytest.mark.parametrize("method", [[], ["method.name=darts"],
                                    ["method.name=darts_tse", "method.tse_steps=3"]],
                         ids=["randnas", "darts", "darts_tse"])
def test_two_ranks_match_one_process_with_two_micro_batches(method, tmp_path):
    ddp = run(TORCHRUN + train_args(tmp_path / "ddp", "optim.epochs=2", *method))
    assert ddp.stdout.count("finished 2 epochs") == 1  # only rank 0 reports
    run([sys.executable] + train_args(tmp_path / "single", "optim.epochs=2",
                                      "optim.micro_batches=2", *method))
    ours, reference = parameters(tmp_path / "ddp"), parameters(tmp_path / "single")
    if method:  # and the same architecture parameters
        ours.update(load_checkpoint(tmp_path / "ddp" / "checkpoints" / "last.pt")["alphas"])
        reference.update(load_checkpoint(tmp_path / "single" / "checkpoints" / "last.pt"
                                         )["alphas"])
    assert ours.keys() == reference.keys()
    for key in ours:
        torch.testing.assert_close(ours[key], reference[key], rtol=1e-5, atol=1e-6)
    assert len(list((tmp_path / "ddp" / "tb").iterdir())) == 1  # one TensorBoard writer


def test_a_killed_two_rank_run_resumes_on_one_process(tmp_path):
    run_dir = tmp_path / "ddp"
    proc = subprocess.Popen(TORCHRUN + train_args(run_dir, "optim.epochs=3",
                                                  "data.train_size=2048"),
                            cwd=REPO, env=ONE_THREAD, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    wait_until((run_dir / "history.json").exists, proc)
    kill_tree(proc, str(run_dir))
    assert not load_checkpoint(run_dir / "checkpoints" / "last.pt")["finished"]
    run([sys.executable, str(REPO / "train.py"), "--run-dir", str(run_dir), "--resume"])
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert state["finished"] and state["step"] == 3 * 32


def test_sharded_search_writes_the_same_results_as_one_process(toy_supernet):
    common = [str(REPO / "search.py"), "--run-dir", str(toy_supernet), "--config",
              str(REPO / "configs" / "search_toy.yaml"), "candidates.num=7",
              "retrain.top_k=1", "--ground-truth", str(NB201_TABLE)]
    run([sys.executable] + common + ["name=single"])
    sharded = run(TORCHRUN + common + ["name=sharded"])
    assert sharded.stdout.count("best possible top-") == 1  # only rank 0 reports
    out = toy_supernet / "search"
    assert not list((out / "sharded").glob("results.rank*.jsonl"))
    single, ours = (read_jsonl(out / name / "results.jsonl") for name in ("single", "sharded"))
    assert {r["processes"] for r in single} == {1} and {r["processes"] for r in ours} == {2}
    wall = json.loads((out / "sharded" / "summary.json").read_text())["search_wall_seconds"]
    assert wall == pytest.approx(sum(r["seconds"] for r in ours) / 2)
    assert [r["index"] for r in ours] == list(range(7))
    for a, b in zip(single, ours, strict=True):  # one thread per process on both sides
        assert {k: v for k, v in a.items() if k not in TIMING} == {
            k: v for k, v in b.items() if k not in TIMING}
    summaries = [json.loads((out / name / "summary.json").read_text())["retrain"]["archs"]
                 for name in ("single", "sharded")]
    assert summaries[0].keys() == summaries[1].keys()


def test_a_failing_rank_ends_the_job_with_its_message(toy_supernet):
    cmd = TORCHRUN + [str(REPO / "search.py"), "--run-dir", str(toy_supernet / "nowhere")]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300,
                          env=ONE_THREAD)  # ends instead of waiting on the failed rank
    assert proc.returncode != 0
    assert "error: " in proc.stderr and "not a training run dir" in proc.stderr


def _kill_when(cmd: list[str], out: Path, records: int, env: dict[str, str]) -> None:
    """Start ``cmd`` and SIGKILL it and every process it started (torchrun's workers run in
    sessions of their own) once ``out`` holds ``records`` records (in results.jsonl and the
    per-rank files together)."""
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def count() -> int:
        """Distinct evaluations recorded: rank 0's merge writes results.jsonl before it deletes
        the per-rank files, so counting lines would count a merged record twice for a moment."""
        indices = set()
        for path in out.glob("results*.jsonl"):
            try:
                lines = path.read_text().splitlines()
            except FileNotFoundError:  # a per-rank file merged and deleted since the glob
                continue
            for line in lines:
                try:
                    indices.add(json.loads(line)["index"])
                except (ValueError, KeyError):  # a line being appended right now
                    continue
        return len(indices)

    wait_until(lambda: count() >= records, proc)
    kill_tree(proc, cmd[-1])  # name=..., unique to this search
    assert records <= count() < 12  # killed mid-search


def test_searches_killed_and_resumed_across_process_counts_give_identical_records(toy_supernet):
    """threads is recorded at the first run and kept by a resume under another process count,
    so records do not depend on how many processes shared the search."""
    default = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}  # torch's default
    search = [str(REPO / "search.py"), "--run-dir", str(toy_supernet), "--config",
              str(REPO / "configs" / "search_toy.yaml"), "retrain.enabled=false",
              "candidates.num=12", "finetune.budgets=[8, 16]", "progress=false"]
    out = toy_supernet / "search"
    # torchrun first (one thread per worker, recorded), then one process with torch's default.
    _kill_when(TORCHRUN + search + ["name=from_torchrun"], out / "from_torchrun", 4, default)
    run([sys.executable, *search, "name=from_torchrun"], env=default)
    run([sys.executable, *search, "name=reference1", "threads=1"], env=default)
    assert json.loads((out / "from_torchrun" / "summary.json").read_text())["settings"][
        "threads"] == 1
    # One process with torch's default first, then torchrun keeps that thread count.
    _kill_when([sys.executable, *search, "name=from_one"], out / "from_one", 4, default)
    threads = json.loads((out / "from_one" / "config.yaml").read_text().split("threads: ")[1]
                         .split("\n")[0])
    run(TORCHRUN + search + ["name=from_one"], env=default)
    run([sys.executable, *search, "name=reference2", f"threads={threads}"], env=default)
    for resumed, reference in (("from_torchrun", "reference1"), ("from_one", "reference2")):
        got = read_jsonl(out / resumed / "results.jsonl")
        want = read_jsonl(out / reference / "results.jsonl")
        assert [{k: v for k, v in r.items() if k not in TIMING} for r in got] == \
               [{k: v for k, v in r.items() if k not in TIMING} for r in want]


def test_a_sharded_evolution_equals_one_process_and_resumes_after_a_kill(toy_supernet):
    """A generation's children are evaluated on both ranks; the fitness is a rank combination
    re-ranked over everything evaluated. Single process, torchrun, and torchrun killed and
    resumed give the same records and incumbent trajectory."""
    search = [str(REPO / "search.py"), "--run-dir", str(toy_supernet), "--config",
              str(REPO / "configs" / "search_toy.yaml"), "retrain.enabled=false",
              "progress=false", "count_flops=false", "ground_truth.source=nb201",
              "strategy.name=evolution", "strategy.population=4", "strategy.tournament=2",
              "strategy.children=3", "finetune.budgets=[8]", "limit.evaluations=25",
              "estimators.names=[combo(tse+params), tse, params]"]
    out = toy_supernet / "search"
    run([sys.executable, *search, "name=evo_single"])
    run(TORCHRUN + search + ["name=evo_sharded"])
    _kill_when(TORCHRUN + search + ["name=evo_killed"], out / "evo_killed", 5, ONE_THREAD)
    run(TORCHRUN + search + ["name=evo_killed"])

    def untimed(name: str) -> tuple[list, list]:
        records = read_jsonl(out / name / "results.jsonl")
        trace = json.loads((out / name / "summary.json").read_text())["strategy"]["trace"]
        return ([{k: v for k, v in r.items() if k not in TIMING} for r in records],
                [{k: v for k, v in t.items() if k != "seconds"} for t in trace])

    single = untimed("evo_single")
    assert len(single[0]) == 25 and len({r["arch"] for r in single[0]}) == 25
    assert untimed("evo_sharded") == single
    assert untimed("evo_killed") == single
