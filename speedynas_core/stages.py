"""Experiment stages: commands run as subprocesses, each with its own log, skipped once done.

    runner = StageRunner(out / "commands.jsonl", cwd=repo, env={"OMP_NUM_THREADS": "1"})
    runner.run([train_stage("train", run_dir, config, log=out / "train.log"),
                search_stage("search", run_dir, search_config, log=out / "search.log")])

A :class:`Stage` is a command and the output that says it has finished. :class:`StageRunner`
skips a finished stage and runs the others in subprocesses, their output going to their logs
(appended to, so a resumed stage keeps the earlier attempt's lines). A killed experiment
resumes when it is run again: finished stages are skipped and an unfinished one runs the
command that continues its work (``train.py --resume`` once the run dir holds a run; a search
resumes from its ``results.jsonl``). Every stage started is recorded, with its exact command,
in a JSON-lines file of the experiment's output folder; a failing stage ends the experiment
with one line naming its log.

This module only runs processes and reads files: it imports no training or search code.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import yaml

from .atomic_io import append_jsonl
from .errors import SpeedyNASError

__all__ = ["Stage", "StageFailed", "StageRunner", "python_command", "search_stage",
           "train_stage", "trained"]

#: Seconds between looks at the running stages.
POLL_SECONDS = 0.1
#: The most characters of a failing stage's log line quoted in its error.
QUOTED = 300


class StageFailed(SpeedyNASError):
    """A stage's command exited with a non-zero status."""


@dataclass(frozen=True)
class Stage:
    """One step of an experiment: ``command`` (run in the runner's folder) writes ``output``;
    the stage is done once ``finished(output)`` (by default: once the output exists)."""

    name: str
    command: tuple[str, ...]
    output: Path
    log: Path
    finished: Callable[[Path], bool] = Path.exists

    def done(self) -> bool:
        """Whether the stage has finished (it is then skipped)."""
        return self.finished(self.output)


@dataclass
class _Running:
    """A started stage: its process, its open log and when it started."""

    stage: Stage
    process: subprocess.Popen
    log: IO[str]
    start: float


@dataclass(frozen=True)
class StageRunner:
    """Runs stages in ``cwd`` with ``env`` added to the environment, recording each command
    it starts in ``record`` (JSON lines: stage, command, cwd, env, log)."""

    record: Path
    cwd: Path
    env: Mapping[str, str] = field(default_factory=dict)

    def run(self, stages: Sequence[Stage], jobs: int = 1) -> dict[str, float]:
        """Run every stage that is not done, ``jobs`` at a time, in order; the wall seconds of
        each stage run (a skipped stage has none). When one fails, the others still running
        are stopped (they resume on the next run) and :class:`StageFailed` names its log."""
        pending = deque(stage for stage in stages if not self._skip(stage))
        running: list[_Running] = []
        seconds: dict[str, float] = {}
        try:
            while pending or running:
                while pending and len(running) < max(1, jobs):
                    running.append(self._start(pending.popleft()))
                ended = [r for r in running if r.process.poll() is not None]
                if not ended:
                    time.sleep(POLL_SECONDS)
                for item in ended:
                    running.remove(item)
                    item.log.close()
                    if item.process.returncode != 0:
                        raise failure(item.stage, item.process.returncode)
                    seconds[item.stage.name] = time.perf_counter() - item.start
                    say(f"{item.stage.name}: finished in {seconds[item.stage.name]:.0f} s")
        finally:
            for item in running:  # stopped early: a failure elsewhere, or Ctrl-C
                item.process.terminate()
                item.process.wait()
                item.log.close()
        return seconds

    def _skip(self, stage: Stage) -> bool:
        """Whether ``stage`` is done (said on stderr)."""
        if stage.done():
            say(f"{stage.name}: done before ({stage.output}), skipped")
            return True
        return False

    def _start(self, stage: Stage) -> _Running:
        """Record ``stage``'s command and start it, its output appended to its log."""
        stage.log.parent.mkdir(parents=True, exist_ok=True)
        self.record.parent.mkdir(parents=True, exist_ok=True)
        append_jsonl(self.record, {"stage": stage.name, "command": list(stage.command),
                                   "cwd": str(self.cwd), "env": dict(self.env),
                                   "log": str(stage.log)})
        say(f"{stage.name}: running, log {stage.log}")
        log = open(stage.log, "a")
        process = subprocess.Popen(stage.command, cwd=self.cwd, stdout=log,
                                   stderr=subprocess.STDOUT, env={**os.environ, **self.env})
        return _Running(stage, process, log, time.perf_counter())


def failure(stage: Stage, status: int) -> StageFailed:
    """The one-line error of a stage that exited with ``status``: the last ``error:`` line of
    its log (a speedynas command's message; under torchrun, a rank's), else its last line, and
    the log's path."""
    lines = [line.strip() for line in stage.log.read_text(errors="replace").splitlines()
             if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    quoted = (errors or lines or [""])[-1].removeprefix("error: ")[:QUOTED]
    return StageFailed(f"stage {stage.name} failed (exit {status})"
                       + (f": {quoted}" if quoted else "") + f"; its output is in {stage.log}")


def say(message: str) -> None:
    """A progress line on stderr (stdout stays the experiment's own report)."""
    print(message, file=sys.stderr, flush=True)


def python_command(script: str, *args: str, processes: int = 1) -> tuple[str, ...]:
    """``python script args``, or under ``torchrun --standalone`` with ``processes`` > 1."""
    launcher = [sys.executable] if processes == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc_per_node={processes}"]
    return (*launcher, script, *args)


def trained(history: Path) -> bool:
    """Whether the training run whose ``history.json`` this is has every epoch of its saved
    config (the history is written after every epoch, so its existence says nothing)."""
    config = history.parent / "config.yaml"
    if not (history.exists() and config.exists()):
        return False
    epochs = yaml.safe_load(config.read_text())["optim"]["epochs"]
    return len(json.loads(history.read_text())) >= epochs


def train_stage(name: str, run_dir: Path, config: str | Path, overrides: Sequence[str] = (),
                *, log: Path, processes: int = 1) -> Stage:
    """Train a supernet into ``run_dir`` with ``train.py`` (``config`` and ``overrides``), or
    resume it once the run dir holds a run; done when its history has every epoch."""
    resume = (run_dir / "config.yaml").exists()
    args = ["--run-dir", str(run_dir)] + (
        ["--resume"] if resume else ["--config", str(config), *overrides])
    return Stage(name, python_command("train.py", *args, processes=processes),
                 run_dir / "history.json", log, trained)


def search_stage(name: str, run_dir: Path, config: str | Path, overrides: Sequence[str] = (),
                 *, log: Path, search_name: str | None = None, processes: int = 1) -> Stage:
    """Search the supernet of ``run_dir`` with ``search.py`` (``config``, ``name=search_name``
    and ``overrides``); done when the search's ``summary.json`` exists. Run again, an
    unfinished search resumes from its results."""
    folder = run_dir / "search" / search_name if search_name else run_dir / "search"
    args = ["--run-dir", str(run_dir), "--config", str(config),
            *([f"name={search_name}"] if search_name else []), *overrides]
    return Stage(name, python_command("search.py", *args, processes=processes),
                 folder / "summary.json", log)
