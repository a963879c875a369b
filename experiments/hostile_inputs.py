"""Hostile and clumsy inputs, tried as a new user would: each must end in one ``error:`` line
naming the bad value (at most 2,100 characters), exit status 2, no traceback (or, for a
corrected retry, succeed), and where a case says so, leave a file it must not touch unchanged.

    python experiments/hostile_inputs.py [--work-dir /tmp/hostile]

Trains a toy supernet first (seconds), then runs every case as a real ``train.py`` /
``search.py`` process (or a ``bash`` line, for process substitution) and prints a table: case,
command, expected, observed, verdict. The read-only and full-disk cases mount a tmpfs (root
only; skipped otherwise).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from speedynas_core.atomic_io import load_checkpoint, save_checkpoint

REPO = Path(__file__).resolve().parents[1]
TOY, SEARCH_TOY = str(REPO / "configs" / "toy.yaml"), str(REPO / "configs" / "search_toy.yaml")
DATA = f"data.root={REPO / 'data' / 'cifar10'}"
ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


@dataclass
class Case:
    """One try: ``setup(work)`` returns the script's arguments (for ``bash``: ``["-c", line]``);
    ``expect`` is a fragment of the one-line error, or ``None`` when the command must succeed;
    ``check(work)`` afterwards says what went wrong on disk (``None``: nothing)."""

    name: str
    script: str
    setup: Callable[[Path], list[str]]
    expect: str | None
    check: Callable[[Path], str | None] | None = None


#: The longest error line a case accepts (the CLI cuts longer messages).
LONGEST_LINE = 2100
#: A module on the cases' PYTHONPATH, as a user's plugin folder (see :func:`plugin`).
PLUGINS = "plugins"


def run(script: str, args: list[str], work: Path | None = None) -> subprocess.CompletedProcess:
    command = ["bash", *args] if script == "bash" else [sys.executable, str(REPO / script), *args]
    env = dict(os.environ)
    if work is not None:
        env["PYTHONPATH"] = str(work / PLUGINS)
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=600,
                          env=env)


def toy_run(work: Path) -> Path:
    """A finished toy supernet, trained once and copied for each case that changes it."""
    run_dir = work / "toy"
    if not (run_dir / "checkpoints" / "last.pt").exists():
        proc = run("train.py", ["--config", TOY, "--run-dir", str(run_dir), DATA])
        assert proc.returncode == 0, proc.stderr
    return run_dir


def copy_run(work: Path, name: str) -> Path:
    target = work / name
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(toy_run(work), target, ignore=shutil.ignore_patterns("search"))
    return target


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def mount(work: Path, name: str, options: str) -> Path | None:
    point = work / name
    subprocess.run(["umount", str(point)], capture_output=True)
    point.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)],
                          capture_output=True)
    return point if proc.returncode == 0 else None


def damaged_results(work: Path, name: str, change: Callable[[list[str]], list[str]]) -> list[str]:
    """A finished 3-candidate search whose results.jsonl lines are changed by ``change``."""
    run_dir = copy_run(work, name)
    args = ["--run-dir", str(run_dir), "--config", SEARCH_TOY, "retrain.enabled=false",
            "candidates.num=3", "finetune.budgets=[2]"]
    assert run("search.py", args).returncode == 0
    results = run_dir / "search" / "results.jsonl"
    results.write_text("\n".join(change(results.read_text().splitlines())) + "\n")
    return args


def changed_checkpoint(work: Path, name: str, how: str) -> list[str]:
    run_dir = copy_run(work, name)
    path = run_dir / "checkpoints" / "last.pt"
    data = path.read_bytes()
    if how == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif how == "flip":
        middle = len(data) // 2
        path.write_bytes(data[:middle] + bytes(b ^ 0x5A for b in data[middle:middle + 64])
                         + data[middle + 64:])
    elif how == "shape":
        state = load_checkpoint(path)
        state["model"][next(iter(state["model"]))] = __import__("torch").zeros(2, 2)
        save_checkpoint(state, path)
    elif how == "garbage":
        path.write_text("this is not a checkpoint\n")
    elif how == "no_digest":
        state = load_checkpoint(path)
        __import__("torch").save(state, path)
    return ["--run-dir", str(run_dir), "name=x", "progress=false"]


def full_disk(work: Path) -> list[str]:
    disk = mount(work, "full", "size=4m")
    if disk is None:
        raise RuntimeError("skipped: cannot mount a tmpfs here (not root?)")
    run_dir = disk / "run"
    shutil.copytree(toy_run(work), run_dir, ignore=shutil.ignore_patterns("search"))
    with contextlib.suppress(OSError), open(disk / "filler", "wb") as filler:
        filler.write(bytes(shutil.disk_usage(disk).free))  # the disk is full to the last page
    return ["--run-dir", str(run_dir), "progress=false", "candidates.num=3",
            "finetune.budgets=[2]"]


def read_only(work: Path) -> list[str]:
    point = mount(work, "ro", "ro,size=1m")
    if point is None:
        raise RuntimeError("skipped: cannot mount a tmpfs here (not root?)")
    return ["--config", TOY, "--run-dir", str(point / "run"), DATA]


def held_lock(work: Path, script: str) -> list[str]:
    """The run (or its search dir) locked by a live second process (left running)."""
    run_dir = copy_run(work, f"locked_{script}")
    target = run_dir if script == "train.py" else run_dir / "search"
    holder = subprocess.Popen([sys.executable, "-c",
                               "import sys, time; from speedynas_core.locks import directory_lock\n"
                               "with directory_lock(sys.argv[1], 'x'):\n"
                               "    print('held', flush=True); time.sleep(120)", str(target)],
                              cwd=REPO, stdout=subprocess.PIPE, text=True)
    holder.stdout.readline()
    HOLDERS.append(holder)
    return (["--run-dir", str(run_dir), "--resume"] if script == "train.py"
            else ["--run-dir", str(run_dir), "progress=false"])


HOLDERS: list[subprocess.Popen] = []


def refused_then_retried(work: Path) -> list[str]:
    run_dir, empty = work / "retry_run", work / "empty_data"
    shutil.rmtree(run_dir, ignore_errors=True)
    (empty / "train").mkdir(parents=True, exist_ok=True)
    (empty / "test").mkdir(exist_ok=True)
    first = run("train.py", ["--config", TOY, "--run-dir", str(run_dir),
                             "data.dataset=imagefolder", f"data.root={empty}", "optim.epochs=1"])
    assert first.returncode == 2, first.stderr
    return ["--config", TOY, "--run-dir", str(run_dir), DATA, "optim.epochs=1"]


def few_classes(work: Path) -> list[str]:
    root = work / "two_classes"
    for split in ("train", "test"):
        for name in ("cat", "dog"):
            source = next((REPO / "data" / "cifar10" / split / name).glob("*.jpg"))
            write(root / split / name / "0.jpg", source.read_bytes())
    return ["--config", TOY, "--run-dir", str(work / "few_classes_run"), f"data.root={root}"]


def plugin(work: Path, name: str, code: str) -> str:
    """Write a user's plugin module ``name`` (importable by every case); its name."""
    write(work / PLUGINS / f"{name}.py", code)
    return name


def unchanged(name: str, before: bytes) -> Callable[[Path], str | None]:
    """A check that the work dir's file ``name`` still holds ``before``."""
    return lambda w: None if (w / name).read_bytes() == before else f"W/{name} was changed"


VICTIM = b"a file of the user's, outside every run\n"


def planted_link(work: Path, name: str, inside: str, hard: bool = False) -> list[str]:
    """A finished toy run whose ``inside`` path is a link to a victim file outside it; the
    search (or, for ``.lock``, the resumed training) that would write through it."""
    run_dir = copy_run(work, name)
    victim = write(work / f"{name}_victim.txt", VICTIM)
    if inside.startswith("search/"):
        args = ["--run-dir", str(run_dir), "--config", SEARCH_TOY, "retrain.enabled=false",
                "candidates.num=3", "finetune.budgets=[2]"]
        assert run("search.py", args).returncode == 0
        (run_dir / inside).unlink()
    else:
        args = ["--run-dir", str(run_dir), "--resume"]
    link = run_dir / inside
    os.link(victim, link) if hard else link.symlink_to(victim)
    return args


def users_folder(work: Path) -> list[str]:
    """A user's own project folder, holding a config.yaml of theirs, given as a run dir."""
    folder = work / "my_project"
    shutil.rmtree(folder, ignore_errors=True)
    write(folder / "config.yaml", "my: project\n")
    write(folder / "notes.txt", "results of last year\n")
    return ["--config", TOY, "--run-dir", str(folder), DATA]


def planted_plugin(work: Path) -> list[str]:
    """A run dir whose saved config lists a module the person searching it never named."""
    run_dir = copy_run(work, "planted_plugin")
    plugin(work, "planted_module", "import pathlib\n"
           "pathlib.Path(__file__).with_name('planted_module_ran').write_text('ran')\n")
    (work / PLUGINS / "planted_module_ran").unlink(missing_ok=True)
    config = run_dir / "config.yaml"
    config.write_text("plugins: [planted_module]\n" + "\n".join(
        line for line in config.read_text().splitlines() if not line.startswith("plugins:")))
    return ["--run-dir", str(run_dir), "--config", SEARCH_TOY, "name=hostile"]


def full_event_log(work: Path) -> list[str]:
    """A finished search rerun (it reports again) with its TensorBoard folder on a full disk,
    so that TensorBoard's background writer thread fails."""
    run_dir = copy_run(work, "full_tb")
    args = ["--run-dir", str(run_dir), "--config", SEARCH_TOY, "retrain.enabled=false",
            "candidates.num=3", "finetune.budgets=[2]", "--ground-truth", "nb201"]
    assert run("search.py", args).returncode == 0
    tb = run_dir / "search" / "tb"
    shutil.rmtree(tb)
    if mount(run_dir / "search", "tb", "size=4k") is None:
        raise RuntimeError("skipped: cannot mount a tmpfs here (not root?)")
    with contextlib.suppress(OSError), open(tb / "filler", "wb") as filler:
        filler.write(bytes(8192))
    MOUNTS.append(tb)
    return args


MOUNTS: list[Path] = []


def laughs(levels: int) -> str:
    """YAML whose aliases expand to 10**levels values."""
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def sparse(path: Path, size: int) -> Path:
    """A file of ``size`` bytes that takes no disk space."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.truncate(size)
    return path


def fifo(work: Path) -> Path:
    path = work / "config.fifo"
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    return path


def cases() -> list[Case]:
    t = lambda *a: (lambda w: ["--config", TOY, "--run-dir", str(w / "new_run"), DATA, *a])  # noqa: E731
    s = lambda *a: (lambda w: ["--run-dir", str(toy_run(w)), "--config", SEARCH_TOY,  # noqa: E731
                               "name=hostile", *a])
    return [
        Case("unknown key", "train.py", t("optim.lrr=0.1"), "unknown key 'optim.lrr'"),
        Case("value out of range", "train.py", t("optim.lr=-1"), "optim.lr"),
        Case("wrong type", "train.py", t("optim.epochs=abc"), "optim.epochs: expected int"),
        Case("unknown space", "train.py", t("model.space=nb101"), "unknown supernet 'nb101'"),
        Case("key of another space", "train.py", t("model.layers=3"),
             "'layers' is an option of supernet darts"),
        Case("key of another sampler", "train.py", t("sampler.stratify=params"),
             "'stratify' is an option of sampler multipaths"),
        Case("unknown sampler", "train.py", t("sampler.name=spos"), "unknown sampler 'spos'"),
        Case("TSE option on a path sampler", "train.py", t("sampler.tse_steps=5"),
             "'tse_steps' is an option of gradient-based method darts_tse or drnas_tse"),
        Case("TSE option on DARTS", "train.py", t("method.name=darts", "method.tse_steps=5"),
             "valid keys in section 'method' (name 'darts')"),
        Case("config file missing", "train.py",
             lambda w: ["--config", str(w / "nope.yaml"), "--run-dir", str(w / "r")],
             "config file not found"),
        Case("config path is a folder", "train.py",
             lambda w: ["--config", str(w), "--run-dir", str(w / "r")], "is a directory"),
        Case("config not UTF-8", "train.py",
             lambda w: ["--config", str(write(w / "latin1.yaml", "seed: 0 # caf\xe9".encode(
                 "latin-1"))), "--run-dir", str(w / "r")], "is not UTF-8"),
        Case("config is a YAML list", "train.py",
             lambda w: ["--config", str(write(w / "list.yaml", "- 1\n- 2\n")), "--run-dir",
                        str(w / "r")], "must hold a mapping"),
        Case("config YAML syntax", "train.py",
             lambda w: ["--config", str(write(w / "bad.yaml", "optim: {lr: 0.1\n")),
                        "--run-dir", str(w / "r")], "invalid YAML"),
        Case("duplicate YAML key", "train.py",
             lambda w: ["--config", str(write(w / "dup.yaml", "seed: 1\nseed: 2\n")),
                        "--run-dir", str(w / "r")], "duplicate key 'seed'"),
        Case("override without =", "train.py", t("optim.lr"), "malformed override"),
        Case("plugin module missing", "train.py", t("plugins=[no_such_module]"),
             "cannot import module 'no_such_module'"),
        Case("unknown device", "train.py", t("device=tpu"), "unknown device 'tpu'"),
        Case("CUDA without a GPU", "train.py", t("device=cuda"), "CUDA is not available"),
        Case("data folder missing", "train.py", t("data.root=/nonexistent/cifar",
                                                  "data.download=false"), "/nonexistent/cifar"),
        Case("too many train images", "train.py", t("data.train_size=30000"),
             "data.train_size=30000 exceeds"),
        Case("cifar10 folder with 2 classes", "train.py", few_classes,
             "cifar10 has 10 classes but the image folder"),
        Case("run dir is a file", "train.py",
             lambda w: ["--config", TOY, "--run-dir", str(write(w / "a_file", "x")), DATA],
             "a_file"),
        Case("run dir name too long", "train.py",
             lambda w: ["--config", TOY, "--run-dir", str(w / ("r" * 300)), DATA],
             "File name too long"),
        Case("run dir on a read-only disk", "train.py", read_only, "Read-only file system"),
        Case("run exists, no --resume", "train.py",
             lambda w: ["--config", TOY, "--run-dir", str(toy_run(w)), DATA], "pass --resume"),
        Case("--resume of an empty dir", "train.py",
             lambda w: ["--run-dir", str(w / "nothing_here"), "--resume"], "holds no run"),
        Case("--resume with another lr", "train.py",
             lambda w: ["--run-dir", str(toy_run(w)), "--resume", "optim.lr=0.1"],
             "differs in: optim.lr"),
        Case("second trainer on a locked run", "train.py", lambda w: held_lock(w, "train.py"),
             "in use by process"),
        Case("corrected retry after a refused run", "train.py", refused_then_retried, None),
        Case("checkpoint truncated", "search.py",
             lambda w: changed_checkpoint(w, "ck_trunc", "truncate"), "truncated or corrupted"),
        Case("checkpoint bytes overwritten", "search.py",
             lambda w: changed_checkpoint(w, "ck_flip", "flip"), "last.pt"),
        Case("checkpoint tensor of another shape", "search.py",
             lambda w: changed_checkpoint(w, "ck_shape", "shape"), "does not fit this run"),
        Case("checkpoint replaced by text", "search.py",
             lambda w: changed_checkpoint(w, "ck_text", "garbage"), "cannot load checkpoint"),
        Case("checkpoint without digest", "search.py",
             lambda w: changed_checkpoint(w, "ck_old", "no_digest"), "holds no digest"),
        Case("search of a folder that is no run", "search.py",
             lambda w: ["--run-dir", str(w / "no_run")], "not a training run dir"),
        Case("unknown estimator", "search.py", s("estimators.names=[tse, tsee]"),
             "unknown estimator 'tsee'"),
        Case("estimator listed twice", "search.py", s("estimators.names=[tse, tse]"),
             "lists tse more than once"),
        Case("bad inline combination", "search.py", s("estimators.names=['combo(tse+)']"),
             "separated by '+'"),
        Case("option of an unlisted estimator", "search.py",
             s("estimators.names=[tse]", "estimators.tse_ema.gamma=0.9"), "apply only when"),
        Case("init-network size with inherited weights", "search.py",
             s("zero_cost.weights=inherited", "zero_cost.C=8"), "zero_cost.C sets the size"),
        Case("a supernet epoch that was not kept", "search.py", s("supernet_epoch=7"),
             "kept no checkpoint after epoch 7"),
        Case("negative bootstrap resamples", "search.py", s("report.resamples=-5"),
             "report.resamples"),
        Case("budget above the data", "search.py", s("finetune.budgets=[1000]"), "B=1000"),
        Case("no budget", "search.py", s("finetune.budgets=[]"), "at least one B"),
        Case("a billion candidates", "search.py", s("candidates.num=1000000000"),
             "candidates.num: value 1000000000 is out of range"),
        Case("more unique archs than the space", "search.py",
             s("candidates.num=7000", "candidates.unique=isomorphic"), "at most 6466"),
        Case("candidates file missing", "search.py",
             lambda w: s(f"candidates.file={w / 'nope.txt'}")(w), "nope.txt"),
        Case("candidates file not UTF-8", "search.py",
             lambda w: s(f"candidates.file={write(w / 'utf16.txt', ARCH.encode('utf-16'))}")(w),
             "is not UTF-8 text"),
        Case("bad arch in candidates file", "search.py",
             lambda w: s(f"candidates.file={write(w / 'bad.txt', ARCH + chr(10) + 'x' + chr(10))}")(w),
             "bad.txt:2:"),
        Case("ground-truth file missing", "search.py",
             lambda w: s("--ground-truth", str(w / "nope.json"))(w), "not found"),
        Case("ground-truth JSON of another shape", "search.py",
             lambda w: s("--ground-truth", str(write(w / "list.json", "[1, 2, 3]")))(w),
             "list.json"),
        Case("unknown nb201 column", "search.py", s("--ground-truth", "nb201",
                                                    "ground_truth.column=nope"), "nope"),
        Case("learned combo without ground truth", "search.py",
             s("estimators.names=[tse, combo_learned]"), "fitted on ground truth"),
        Case("search name with a slash", "search.py", s("name=../x"), "plain folder name"),
        Case("retrain key of another space", "search.py", s("retrain.layers=3"),
             "'layers' is an option of stand-alone network darts"),
        Case("zero threads", "search.py", s("threads=0"), "threads"),
        Case("results record duplicated", "search.py",
             lambda w: damaged_results(w, "dup_records", lambda ls: ls + ls[:1]),
             "appears twice"),
        Case("results records of another search", "search.py",
             lambda w: damaged_results(w, "index_records", lambda ls: [
                 ls[1].replace('"index": 1', '"index": 0'),
                 ls[0].replace('"index": 0', '"index": 1')] + ls[2:]),
             "the results belong to another search"),
        Case("evolution without a budget", "search.py", s("strategy.name=evolution"),
             "runs until a limit stops it"),
        Case("halving rungs growing", "search.py",
             s("strategy.name=halving", "strategy.sizes=[2,4]", "strategy.rung_steps=[0,2]"),
             "must decrease from rung to rung"),
        Case("results line of another JSON shape", "search.py",
             lambda w: damaged_results(w, "shape_records", lambda ls: ls + ["[1, 2]"]),
             "not a results record"),
        Case("second search on a locked search dir", "search.py",
             lambda w: held_lock(w, "search.py"), "in use by process"),
        Case("search on a full disk", "search.py", full_disk, "/run/search: No space left"),
        # second round: unbounded input read whole and echoed whole
        Case("YAML aliases expanding to 10**12 values", "train.py",
             lambda w: ["--config", str(write(w / "laughs.yaml", laughs(12))), "--run-dir",
                        str(w / "r")], "expands to more than 100,000 values"),
        Case("device file as config", "train.py",
             lambda w: ["--config", "/dev/zero", "--run-dir", str(w / "r")],
             "config file /dev/zero is a character device"),
        Case("config file of 300 MB", "train.py",
             lambda w: ["--config", str(sparse(w / "huge.yaml", 300 << 20)), "--run-dir",
                        str(w / "r")], "is 300.0 MiB, larger than 1.0 MiB"),
        Case("ground-truth table of 1 GB", "search.py",
             lambda w: s("--ground-truth", str(sparse(w / "huge.json", 1 << 30)))(w),
             "is 1024.0 MiB, larger than 256.0 MiB"),
        Case("ground truth from a device", "search.py", s("--ground-truth", "/dev/urandom"),
             "ground-truth table /dev/urandom is a character device"),
        Case("candidates file of one 2 MB line", "search.py",
             lambda w: s(f"candidates.file={write(w / 'long.txt', 'x' * 2_000_000)}")(w),
             "long.txt:1: the line holds 2,000,000 characters"),
        Case("a hundred budgets", "search.py",
             s("finetune.budgets=[" + ",".join(map(str, range(1, 101))) + "]"),
             "finetune.budgets: 100 items; at most 64"),
        Case("a 100,000-character value echoed", "train.py", t("optim.lr=" + "x" * 100_000),
             "optim.lr: expected float"),
        # exceptions other than OSError at the boundary
        Case("config nested 10,000 deep", "train.py",
             lambda w: ["--config", str(write(w / "deep.yaml", "seed: " + "[" * 10000
                                              + "]" * 10000)), "--run-dir", str(w / "r")],
             "nests deeper than 32 levels"),
        Case("NUL byte in a path", "train.py",
             lambda w: ["--config", str(write(w / "nul.yaml", 'data: {root: "cifar\\0x"}\n')),
                        "--run-dir", str(w / "r")], "data.root: 'cifar\\x00x' holds a NUL byte"),
        Case("ground-truth JSON nested 100,000 deep", "search.py",
             lambda w: s("--ground-truth", str(write(w / "deep.json", "[" * 100_000
                                                     + "]" * 100_000)))(w),
             "not valid JSON (nested too deeply)"),
        Case("plugin that raises on import", "train.py",
             lambda w: t(f"plugins=[{plugin(w, 'raising', 'raise RuntimeError(1 / 1)')}]")(w),
             "plugins: module 'raising' failed on import: RuntimeError: 1.0"),
        Case("plugin registering a taken name", "train.py",
             lambda w: t("plugins=[" + plugin(w, "taken", "from estimators.registry import "
                                              "Estimator, register_estimator\n"
                                              "@register_estimator('tse')\n"
                                              "class Mine(Estimator): pass\n") + "]")(w),
             "estimator 'tse' is already registered (by module estimators.builtin)"),
        Case("TensorBoard's writer thread on a full disk", "search.py", full_event_log,
             "/search/tb: cannot write the event log: No space left on device"),
        # writes through links planted in a run dir
        Case("lock file planted as a symbolic link", "train.py",
             lambda w: planted_link(w, "lock_link", ".lock"), "symbolic link",
             unchanged("lock_link_victim.txt", VICTIM)),
        Case("results.jsonl planted as a symbolic link", "search.py",
             lambda w: planted_link(w, "results_link", "search/results.jsonl"), "symbolic link",
             unchanged("results_link_victim.txt", VICTIM)),
        Case("results.jsonl planted as a hard link", "search.py",
             lambda w: planted_link(w, "results_hard", "search/results.jsonl", hard=True),
             "hard link", unchanged("results_hard_victim.txt", VICTIM)),
        # a folder taken over
        Case("a user's project folder as run dir", "train.py", users_folder,
             "is not a speedynas run dir",
             unchanged("my_project/config.yaml", b"my: project\n")),
        Case("--resume of a missing run dir", "train.py",
             lambda w: ["--run-dir", str(w / "never_made"), "--resume"], "never_made",
             lambda w: f"{w / 'never_made'} was created" if (w / "never_made").exists()
             else None),
        # the config read once
        Case("config from a process substitution", "bash",
             lambda w: ["-c", f"{sys.executable} train.py --config <(cat {TOY}) --run-dir "
                              f"{w / 'piped_run'} {DATA} optim.epochs=1"], None),
        Case("empty config", "train.py",
             lambda w: ["--config", str(write(w / "empty.yaml", "# nothing yet\n")),
                        "--run-dir", str(w / "r")], "holds no keys"),
        # text splitting, ground-truth tables
        Case("U+2028 inside a candidates line", "search.py",
             lambda w: s(f"candidates.file={write(w / 'seps.txt', ARCH + chr(10) + ARCH + chr(0x2028) + ARCH + chr(10))}")(w),  # noqa: E501
             "seps.txt:2:"),
        Case("ground truth listing an arch twice", "search.py",
             lambda w: s("--ground-truth", str(write(w / "twice.csv", f"arch,acc\n{ARCH},93.1"
                                                     f"\n{ARCH},91.0\n")),
                         "ground_truth.column=acc")(w),
             "is listed twice with different values (93.1 and 91.0)"),
        Case("ground-truth CSV with a byte-order mark", "search.py",
             lambda w: s("--ground-truth", str(write(w / "bom.csv", b"\xef\xbb\xbfarch,acc\n"
                                                     + f"{ARCH},93.1\n".encode())),
                         "ground_truth.column=acc", "name=bom", "retrain.enabled=false")(w),
             None),
        # lesser ones
        Case("FIFO with no writer as config", "train.py",
             lambda w: ["--config", str(fifo(w)), "--run-dir", str(w / "r")],
             "is a pipe that nothing was written to in 10 s"),
        Case("a run dir's saved config naming a plugin", "search.py", planted_plugin,
             "asks to import planted_module, which this command did not name",
             lambda w: ("the planted module was imported"
                        if (w / PLUGINS / "planted_module_ran").exists() else None)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "hostile")
    args = parser.parse_args()
    work = args.work_dir
    shutil.rmtree(work / "new_run", ignore_errors=True)
    toy_run(work)
    rows, passed = [], 0
    try:
        for number, case in enumerate(cases(), 1):
            try:
                argv = case.setup(work)
            except RuntimeError as err:
                rows.append((number, case, "-", str(err), "skipped"))
                continue
            proc = run(case.script, argv, work)
            err = proc.stderr.strip()
            lines = err.splitlines()
            if case.expect is None:
                ok = proc.returncode == 0
                observed = f"exit {proc.returncode}" + (f": {lines[-1]}" if not ok and lines
                                                        else "")
            else:
                ok = (proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:")
                      and case.expect in lines[0] and "Traceback" not in err
                      and len(lines[0]) <= LONGEST_LINE)
                observed = f"exit {proc.returncode}: {lines[-1] if lines else ''}"
            problem = case.check(work) if case.check else None
            if problem:
                ok, observed = False, f"{observed}; {problem}"
            passed += ok
            command = f"{case.script} " + " ".join(a.replace(str(work), "W")
                                                   .replace(str(REPO), ".") for a in argv)
            rows.append((number, case, command, observed.replace(str(work), "W"),
                         "ok" if ok else "FAILED"))
    finally:
        for holder in HOLDERS:
            holder.kill()
        for point in [work / "ro", work / "full", *MOUNTS]:
            subprocess.run(["umount", str(point)], capture_output=True)
    print("| # | case | command | expected | observed | verdict |")
    print("|---|---|---|---|---|---|")
    for number, case, command, observed, verdict in rows:
        expected = "exit 0" if case.expect is None else f"exit 2, one line with `{case.expect}`"
        cell = lambda text: text.replace("|", "\\|")[:160]  # noqa: E731
        print(f"| {number} | {case.name} | `{cell(command)}` | {cell(expected)} | "
              f"{cell(observed)} | {verdict} |")
    print(f"\n{passed} of {len(rows)} cases as expected")
    print(json.dumps({"passed": passed, "cases": len(rows)}))


if __name__ == "__main__":
    main()
