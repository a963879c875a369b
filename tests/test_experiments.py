"""The experiments' shared stage runner (speedynas_core.stages) on tiny ``python -c`` stages:
skip-if-done, resume after a failure or a stop, the recorded commands and the one-line error of
a failing stage; the train/search stage builders; the results index; each experiment starts."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from speedynas_core.atomic_io import append_jsonl, read_jsonl
from speedynas_core.stages import (Stage, StageFailed, StageRunner, python_command, search_stage,
                                   train_stage, trained)
from speedynas_search.analysis import compare_records

from .conftest import REPO

RESULTS = REPO / "results"
#: Top-level results folders: lowercase snake_case ``topic[_variant]`` (results/README.md).
FOLDER_NAME = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")


def counting_stage(name: str, tmp_path: Path, fail_first: bool = False) -> Stage:
    """A stage that appends a line to ``<name>.runs`` each time it runs and writes
    ``<name>.out``; with ``fail_first`` its first run fails (exit 3) before writing it."""
    code = "\n".join([
        "import pathlib, sys",
        f"folder = pathlib.Path({str(tmp_path)!r})",
        f"runs = folder / '{name}.runs'",
        "first = not runs.exists()",
        "with runs.open('a') as handle: handle.write('run\\n')",
        f"print('working on {name}')",
        f"if first and {fail_first}: sys.exit(3)",
        f"(folder / '{name}.out').write_text('done')"])
    return Stage(name, (sys.executable, "-c", code), tmp_path / f"{name}.out",
                 tmp_path / "logs" / f"{name}.log")


def runs(tmp_path: Path, name: str) -> int:
    path = tmp_path / f"{name}.runs"
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_a_finished_stage_is_skipped_and_every_started_command_recorded(tmp_path):
    record = tmp_path / "out" / "commands.jsonl"
    runner = StageRunner(record, cwd=tmp_path, env={"OMP_NUM_THREADS": "1"})
    stages = [counting_stage("a", tmp_path), counting_stage("b", tmp_path)]
    assert set(runner.run(stages)) == {"a", "b"}  # each stage's seconds
    assert runner.run(stages) == {}  # both done: nothing runs again
    assert runs(tmp_path, "a") == runs(tmp_path, "b") == 1
    assert read_jsonl(record) == [
        {"stage": s.name, "command": list(s.command), "cwd": str(tmp_path),
         "env": {"OMP_NUM_THREADS": "1"}, "log": str(s.log)} for s in stages]
    assert stages[0].log.read_text() == "working on a\n"  # the stage's output goes to its log


def test_a_failing_stage_is_one_line_naming_its_log_and_the_rerun_resumes(tmp_path):
    runner = StageRunner(tmp_path / "commands.jsonl", cwd=tmp_path)
    stages = [counting_stage("train", tmp_path), counting_stage("search", tmp_path, True),
              counting_stage("report", tmp_path)]
    with pytest.raises(StageFailed) as failed:
        runner.run(stages)
    message = str(failed.value)
    assert "\n" not in message and message.startswith("stage search failed (exit 3)")
    assert message.endswith(f": working on search; its output is in {stages[1].log}")
    assert (runs(tmp_path, "train"), runs(tmp_path, "search"), runs(tmp_path, "report")) == (
        1, 1, 0)  # nothing after the failure ran
    assert set(runner.run(stages)) == {"search", "report"}  # the finished stage is skipped
    assert (runs(tmp_path, "train"), runs(tmp_path, "search"), runs(tmp_path, "report")) == (
        1, 2, 1)
    assert stages[1].log.read_text() == "working on search\n" * 2  # both tries kept
    assert [r["stage"] for r in read_jsonl(tmp_path / "commands.jsonl")] == [
        "train", "search", "search", "report"]


def test_a_failure_stops_the_stages_running_beside_it_and_they_rerun_later(tmp_path):
    runner = StageRunner(tmp_path / "commands.jsonl", cwd=tmp_path)
    forever = Stage("forever", (sys.executable, "-c", "import time; time.sleep(600)"),
                    tmp_path / "never", tmp_path / "forever.log")
    failing = Stage("failing", (sys.executable, "-c", "raise SystemExit('broken input')"),
                    tmp_path / "failing.out", tmp_path / "failing.log")
    with pytest.raises(StageFailed, match=r"stage failing failed \(exit 1\): broken input; "):
        runner.run([forever, failing], jobs=2)
    assert not forever.done()  # stopped, not finished: the next run starts it again


def test_the_experiment_command_line_turns_a_failing_stage_into_one_error_line(tmp_path):
    code = "\n".join([
        "import sys",
        "from pathlib import Path",
        "from speedynas_core.cli import run_cli",
        "from speedynas_core.stages import Stage, StageRunner",
        "folder = Path(sys.argv[1])",
        "stage = Stage('bad', (sys.executable, '-c', 'import nothing_'), folder / 'out',",
        "              folder / 'bad.log')",
        "def main(argv):",
        "    StageRunner(folder / 'commands.jsonl', cwd=folder).run([stage])",
        "run_cli(main, [])"])
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                          text=True, cwd=REPO)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: stage bad failed (exit 1): ModuleNotFoundError: No module named "
                      f"'nothing_'; its output is in {tmp_path / 'bad.log'}"]
    assert "Traceback" in (tmp_path / "bad.log").read_text()
    assert "Traceback" not in proc.stderr


def test_train_and_search_stages_build_their_commands_and_know_when_they_are_done(tmp_path):
    run_dir, log = tmp_path / "run", tmp_path / "train.log"
    fresh = train_stage("train", run_dir, "configs/toy.yaml", ["optim.epochs=2"], log=log)
    assert fresh.command == python_command("train.py", "--run-dir", str(run_dir), "--config",
                                           "configs/toy.yaml", "optim.epochs=2")
    assert not fresh.done()
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("optim:\n  epochs: 2\n")
    epoch = [{"epoch": 1, "seconds": 1.0}]
    (run_dir / "history.json").write_text(json.dumps(epoch))
    resumed = train_stage("train", run_dir, "configs/toy.yaml", ["optim.epochs=2"], log=log)
    assert resumed.command[-3:] == ("--run-dir", str(run_dir), "--resume")
    assert not resumed.done() and not trained(run_dir / "history.json")  # 1 epoch of 2
    (run_dir / "history.json").write_text(json.dumps(epoch * 2))
    assert resumed.done()
    search = search_stage("search", run_dir, "configs/search_toy.yaml", ["progress=false"],
                          search_name="s1", log=tmp_path / "search.log", processes=2)
    assert search.command[1:5] == ("-m", "torch.distributed.run", "--standalone",
                                   "--nproc_per_node=2")
    assert search.command[5:] == ("search.py", "--run-dir", str(run_dir), "--config",
                                  "configs/search_toy.yaml", "name=s1", "progress=false")
    assert search.output == run_dir / "search" / "s1" / "summary.json"


def test_compare_records_leaves_timings_aside(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for index in (0, 1, 2):
        append_jsonl(a, {"index": index, "score": index, "seconds": 1.0, "processes": 1})
    append_jsonl(b, {"index": 0, "score": 0, "seconds": 7.0, "processes": 2})  # same scores
    append_jsonl(b, {"index": 1, "score": 5, "seconds": 1.0, "processes": 1})  # another score
    append_jsonl(b, {"index": 3, "score": 3, "seconds": 1.0, "processes": 1})  # not in a
    assert compare_records(a, b) == (3, 3, 1)


def index_entries() -> dict[str, str]:
    """The results index: folder name -> its entry (heading to next heading) in
    results/README.md."""
    text = (RESULTS / "README.md").read_text()
    parts = re.split(r"^## \[`([^`]+)/`\]\(\1/NOTES\.md\)$", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2]))


def test_every_results_folder_is_indexed_named_by_the_rule_and_has_notes():
    folders = sorted(p.name for p in RESULTS.iterdir() if p.is_dir())
    entries = index_entries()
    assert sorted(entries) == folders  # each folder listed once, no stale entry
    for name in folders:
        assert FOLDER_NAME.fullmatch(name), f"results/{name} breaks the naming rule"
        assert (RESULTS / name / "NOTES.md").is_file(), f"results/{name} has no NOTES.md"
        for field in ("Question", "Command", "Headline", "Dates"):
            assert f"- **{field}**: " in entries[name], f"results/{name}: no {field}"
    commands = " ".join(entries.values())
    for script in re.findall(r"python (experiments/\w+\.py|benchmarks/\w+\.py)", commands):
        assert (REPO / script).is_file(), script


@pytest.mark.e2e  # a fresh interpreter per script
@pytest.mark.parametrize("script", sorted(p.name for p in (REPO / "experiments").glob("*.py")))
def test_every_experiment_starts(script):
    proc = subprocess.run([sys.executable, f"experiments/{script}", "--help"], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage:")


#: ``--option`` of an experiment whose type is a count (at least 1).
COUNT_OPTION = re.compile(r'add_argument\("(--[\w-]+)"[^\n]*type=positive_int')


@pytest.mark.e2e  # a fresh interpreter per script
@pytest.mark.parametrize("script", sorted(p.name for p in (REPO / "experiments").glob("*.py")
                                          if COUNT_OPTION.search(p.read_text())))
def test_every_experiment_refuses_a_count_of_zero_naming_it(script):
    option = COUNT_OPTION.search((REPO / "experiments" / script).read_text()).group(1)
    proc = subprocess.run([sys.executable, f"experiments/{script}", option, "0"], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert f"error: argument {option}: 0 is below 1" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_experiments_are_scripts_not_a_package():
    assert not (REPO / "experiments" / "__init__.py").exists()
