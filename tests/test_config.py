"""Typed configuration (speedynas_core.config) and entry-point plumbing (speedynas_core.cli)."""
from __future__ import annotations

import dataclasses
import math
import os
import runpy
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import pytest
import torch
import yaml

from speedynas_core.cli import call_main, run_cli
from speedynas_core.config import (
    config_diff,
    config_to_dict,
    dump_config,
    format_schema_help,
    load_config,
    parse_override,
    read_config_file,
    replace_path,
    save_config,
    setting,
)
from speedynas_core.errors import SpeedyNASError, shown
from speedynas_core.runtime import resolve_device, seed_everything

# --------------------------------------------------------------------------- example schema

@dataclass(frozen=True)
class Optim:
    lr: float = setting(0.025, gt=0, max=10, help="initial learning rate")
    momentum: float = setting(0.9, min=0.0, max=1.0)
    nesterov: bool = True
    milestones: tuple[int, ...] = setting((100, 200), min=0)


@dataclass(frozen=True)
class Data:
    name: Literal["cifar10", "cifar100", "folder"] = "cifar10"
    root: Optional[str] = None
    batch_size: int = setting(64, min=1, help="minibatch size")


@dataclass(frozen=True)
class Config:
    name: str = "run"
    epochs: int = setting(20, min=1)
    seed: Optional[int] = None
    tags: list[str] = setting(["a", "b"])
    shape: tuple[int, int] = (32, 32)
    optim: Optim = field(default_factory=Optim)
    data: Data = field(default_factory=Data)


@dataclass
class Required:
    space: str
    width: float = setting(1.0, gt=0)


@dataclass(frozen=True)
class Window:
    start: int = 0
    stop: int = 10

    def __post_init__(self) -> None:
        if self.start >= self.stop:
            raise SpeedyNASError(f"window.start ({self.start}) must be < window.stop ({self.stop})")


@dataclass(frozen=True)
class WithCheck:
    window: Window = field(default_factory=Window)


def write(tmp_path: Path, text: str, name: str = "cfg.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def error_of(*args, **kwargs) -> str:
    with pytest.raises(SpeedyNASError) as info:
        load_config(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


# --------------------------------------------------------------------------- loading

def test_defaults_without_file():
    assert load_config(Config, None, []) == Config()


def test_precedence_cli_over_file_over_defaults(tmp_path):
    path = write(tmp_path, """
        epochs: 5
        optim:
          lr: 0.1
        data:
          batch_size: 32
    """)
    cfg = load_config(Config, path, ["optim.lr=0.5", "data.name=cifar100"])
    assert cfg.optim.lr == 0.5                 # CLI beats file
    assert cfg.epochs == 5                     # file beats default
    assert cfg.data.batch_size == 32
    assert cfg.data.name == "cifar100"
    assert cfg.optim.momentum == 0.9           # default kept inside a partly given section
    assert cfg.optim.milestones == (100, 200)
    assert cfg.name == "run"


def test_later_override_wins():
    assert load_config(Config, None, ["epochs=3", "epochs=4"]).epochs == 4


def test_empty_file_and_empty_section_mean_defaults(tmp_path):
    assert load_config(Config, write(tmp_path, "# nothing\n"), []) == Config()
    assert load_config(Config, write(tmp_path, "optim:\n", "b.yaml"), []) == Config()


@pytest.mark.parametrize("text, value", [
    ("1e-3", 1e-3), ("1E-3", 1e-3), ("5e4", 5e4), ("-2.5e+2", -250.0), (".5e1", 5.0),
    ("1.e2", 100.0), ("0.001", 1e-3), (".inf", math.inf), ("1_000.5", 1000.5),
])
def test_override_values_parse_exponent_floats(text, value):
    key, parsed = parse_override(f"optim.lr={text}")
    assert key == "optim.lr" and parsed == value and isinstance(parsed, float)


@pytest.mark.parametrize("text, value", [("1e-3", 1e-3), ("2E-4", 2e-4), ("3", 3.0),
                                         ("5e0", 5.0)])
def test_float_overrides(text, value):
    cfg = load_config(Config, None, [f"optim.lr={text}"])
    assert cfg.optim.lr == value and type(cfg.optim.lr) is float


def test_exponent_float_in_file(tmp_path):
    cfg = load_config(Config, write(tmp_path, "optim:\n  lr: 1e-3\n"), [])
    assert cfg.optim.lr == 1e-3


def test_int_accepted_for_float_and_converted():
    cfg = load_config(Config, None, ["optim.momentum=1"])
    assert cfg.optim.momentum == 1.0 and type(cfg.optim.momentum) is float


def test_list_overrides():
    cfg = load_config(Config, None, ["optim.milestones=[10, 20, 30]", "tags=[x, 'y z']",
                                     "shape=[64, 48]"])
    assert cfg.optim.milestones == (10, 20, 30)
    assert cfg.tags == ["x", "y z"]
    assert cfg.shape == (64, 48)
    assert load_config(Config, None, ["optim.milestones=[]"]).optim.milestones == ()


def test_bool_null_and_quoted_overrides():
    cfg = load_config(Config, None, ["optim.nesterov=false", "seed=null", "name='1e-3'",
                                     "data.root=/data/cifar"])
    assert cfg.optim.nesterov is False
    assert cfg.seed is None
    assert cfg.name == "1e-3"
    assert cfg.data.root == "/data/cifar"


def test_override_value_may_contain_equals_sign():
    assert load_config(Config, None, ["name=a=b"]).name == "a=b"


def test_section_override_merges_into_file_values(tmp_path):
    path = write(tmp_path, "optim:\n  lr: 0.1\n  momentum: 0.5\n")
    cfg = load_config(Config, path, ["optim={lr: 0.2}"])
    assert cfg.optim.lr == 0.2 and cfg.optim.momentum == 0.5


def test_yaml_anchors_merge_keys_and_bom(tmp_path):
    path = tmp_path / "cfg.yaml"
    # A byte-order mark, and a merge key whose value is overridden by an explicit key.
    path.write_text("\ufeffoptim:\n  <<: {lr: 0.5, momentum: 0.1}\n  lr: 0.2\n",
                    encoding="utf-8")
    cfg = load_config(Config, path, None)
    assert cfg.optim.lr == 0.2 and cfg.optim.momentum == 0.1


def test_date_like_text_stays_a_string(tmp_path):
    cfg = load_config(Config, write(tmp_path, "name: 2024-01-31\n"), [])
    assert cfg.name == "2024-01-31"


def test_post_init_checks_run(tmp_path):
    assert load_config(WithCheck, None, ["window.start=3"]).window.start == 3
    with pytest.raises(SpeedyNASError, match="window.start"):
        load_config(WithCheck, None, ["window.start=30"])


@dataclass(frozen=True)
class Pair:
    low: int = 0
    high: int = 1

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise SpeedyNASError(f"low={self.low} must not exceed high={self.high}")


@dataclass(frozen=True)
class WithPairs:
    first: Pair = field(default_factory=Pair)
    second: Pair = field(default_factory=Pair)


def test_a_section_check_is_told_which_section_failed():
    assert error_of(WithPairs, None, ["second.low=5"]) == "second: low=5 must not exceed high=1"
    # a message that already names its section is left as it is
    assert error_of(WithCheck, None, ["window.start=30"]).startswith("window.start (30)")


def test_nesterov_without_momentum_is_refused_naming_the_section():
    from supernet.train_config import TrainConfig

    assert error_of(TrainConfig, None, ["optim.momentum=0"]).startswith(
        "optim: nesterov=true needs a momentum above 0")
    assert load_config(TrainConfig, None, ["optim.momentum=0", "optim.nesterov=false"])


def test_required_key():
    assert load_config(Required, None, ["space=nb201"]) == Required("nb201")
    assert "missing required key 'space'" in error_of(Required, None, [])


def test_mutable_defaults_are_not_shared():
    a, b = Config(), Config()
    assert a.tags == b.tags and a.tags is not b.tags


# --------------------------------------------------------------------------- rejected input

def test_unknown_top_level_key(tmp_path):
    path = write(tmp_path, "epoch: 3\n")
    message = error_of(Config, path, [])
    assert "unknown key 'epoch'" in message
    assert str(path) in message
    assert "valid keys at the top level: name, epochs, seed, tags, shape, optim, data" in message
    assert "did you mean 'epochs'?" in message


def test_unknown_key_in_section():
    message = error_of(Config, None, ["optim.lrr=0.1"])
    assert "unknown key 'optim.lrr'" in message
    assert "valid keys in section 'optim': lr, momentum, nesterov, milestones" in message
    assert "did you mean 'optim.lr'?" in message
    assert "override 'optim.lrr=0.1'" in message


def test_unknown_key_without_close_match():
    message = error_of(Config, None, ["zzzzzz=1"])
    assert "unknown key 'zzzzzz'" in message and "did you mean" not in message


def test_unknown_section_in_override():
    message = error_of(Config, None, ["optm.lr=1"])
    assert "unknown key 'optm'" in message and "did you mean 'optim'?" in message


@pytest.mark.parametrize("override, fragment", [
    ("epochs=ten", "epochs: expected int, got 'ten' (str)"),
    ("epochs=2.0", "epochs: expected int, got 2.0 (float)"),
    ("epochs=true", "epochs: expected int, got True (bool)"),      # bool is not an int
    ("epochs=null", "epochs: expected int, got null"),
    ("optim.lr=fast", "optim.lr: expected float, got 'fast' (str)"),
    ("optim.lr=true", "optim.lr: expected float, got True (bool)"),
    ("optim.nesterov=1", "optim.nesterov: expected bool, got 1 (int)"),
    ("name=5", "name: expected str, got 5 (int)"),
    ("seed=abc", "seed: expected int or null, got 'abc'"),
    ("tags=x", "tags: expected list of str, got 'x'"),
    ("tags=[1]", "item 0: expected str, got 1 (int)"),
    ("shape=[1, 2, 3]", "shape: expected list of 2 items [int, int]"),
    ("optim.milestones=[1, x]", "item 1: expected int, got 'x' (str)"),
    ("optim=3", "optim: expected a mapping (section), got 3 (int)"),
    ("optim.lr={a: 1}", "optim.lr: expected float, got {'a': 1} (dict)"),
    (f"optim.lr={10**400}", "the number is too large for a float"),
])
def test_wrong_types(override, fragment):
    message = error_of(Config, None, [override])
    assert fragment in message
    assert f"override {shown(override, 120)}" in message  # cut when long (a 400-digit number)


def test_strings_in_file_are_not_converted_to_numbers(tmp_path):
    message = error_of(Config, write(tmp_path, 'optim:\n  lr: "0.1"\n'), [])
    assert "optim.lr: expected float, got '0.1' (str)" in message


@pytest.mark.parametrize("override, fragment", [
    ("epochs=0", "epochs: value 0 is out of range; must be >= 1"),
    ("optim.lr=0", "optim.lr: value 0.0 is out of range; must be > 0 and <= 10"),
    ("optim.lr=-1e-3", "must be > 0"),
    ("optim.lr=11", "must be > 0 and <= 10"),
    ("optim.lr=.nan", "optim.lr: value nan is out of range"),
    ("optim.momentum=1.5", "optim.momentum: value 1.5 is out of range; must be >= 0.0 and <= 1.0"),
    ("optim.milestones=[5, -1]", "optim.milestones: item 1 (-1) is out of range; must be >= 0"),
    ("data.batch_size=0", "data.batch_size: value 0 is out of range"),
])
def test_out_of_range(override, fragment):
    assert fragment in error_of(Config, None, [override])


def test_range_bounds_are_inclusive_for_min_max():
    cfg = load_config(Config, None, ["epochs=1", "optim.momentum=0", "optim.lr=10"])
    assert (cfg.epochs, cfg.optim.momentum, cfg.optim.lr) == (1, 0.0, 10.0)


def test_bad_choice_lists_choices(tmp_path):
    message = error_of(Config, write(tmp_path, "data:\n  name: cifar11\n"), [])
    assert "data.name: invalid choice 'cifar11'; choose from 'cifar10', 'cifar100', 'folder'" \
        in message
    assert "did you mean 'cifar10'?" in message
    assert "data.name: invalid choice 3" in error_of(Config, None, ["data.name=3"])


@pytest.mark.parametrize("override, fragment", [
    ("epochs", "malformed override 'epochs': expected section.key=value"),
    ("=3", "is not a dotted key"),
    ("optim..lr=3", "is not a dotted key"),
    ("a b=3", "is not a dotted key"),
    ("optim.lr=[1", "cannot parse the value as YAML"),
    ("epochs.x=1", "'epochs' holds 20"),
])
def test_malformed_overrides(override, fragment, tmp_path):
    path = write(tmp_path, "epochs: 20\n")
    assert fragment in error_of(Config, path, [override])


@pytest.mark.parametrize("text, kind", [("- 1\n- 2\n", "list"), ("just text\n", "str"),
                                        ("3\n", "int")])
def test_yaml_must_be_a_mapping(tmp_path, text, kind):
    path = write(tmp_path, text)
    message = error_of(Config, path, [])
    assert f"config file {path} must hold a mapping of keys to values, got {kind}" in message


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = write(tmp_path, "epochs: 3\noptim:\n  lr: [0.1\nname: x\n")
    message = error_of(Config, path, [])
    assert message.startswith(f"{path}:")
    line = int(message.split(":")[1])
    assert line in (3, 4)
    assert "invalid YAML" in message


def test_yaml_tab_indentation_error(tmp_path):
    path = write(tmp_path, "optim:\n\tlr: 0.1\n")
    assert f"{path}:2:" in error_of(Config, path, [])


def test_duplicate_key_rejected(tmp_path):
    path = write(tmp_path, "epochs: 3\nname: a\nepochs: 4\n")
    assert f"{path}:3:1: invalid YAML" in error_of(Config, path, [])
    assert "duplicate key 'epochs'" in error_of(Config, path, [])


def test_missing_file_and_directory(tmp_path):
    assert f"config file not found: {tmp_path / 'nope.yaml'}" in \
        error_of(Config, tmp_path / "nope.yaml", [])
    assert "is a directory" in error_of(Config, tmp_path, [])


def test_yaml_never_executes_code(tmp_path):
    marker = tmp_path / "pwned"
    path = write(tmp_path, f'name: !!python/object/apply:os.system ["touch {marker}"]\n')
    assert "invalid YAML" in error_of(Config, path, [])
    assert "cannot parse the value" in error_of(Config, None, ["name=!!python/name:os.system ''"])
    assert not marker.exists()


def test_non_string_keys_rejected(tmp_path):
    message = error_of(Config, write(tmp_path, "1: 2\n"), [])
    assert "invalid key 1 at the top level" in message


# --------------------------------------------------------------------------- saving, diffs

def test_config_to_dict_plain_types():
    d = config_to_dict(Config())
    assert d["optim"] == {"lr": 0.025, "momentum": 0.9, "nesterov": True,
                          "milestones": [100, 200]}
    assert d["shape"] == [32, 32]
    assert list(d) == ["name", "epochs", "seed", "tags", "shape", "optim", "data"]
    assert yaml.safe_load(yaml.safe_dump(d)) == d


def test_save_load_round_trip(tmp_path):
    cfg = load_config(Config, None, [
        "name='1e-3'", "tags=['true', 'null', '2024-01-31', 'ünï', '0x10', 'a: b', '']",
        "optim.lr=1e-5", "optim.milestones=[1, 2, 3]", "seed=7", "data.root='~/x #y'",
        "optim.momentum=0.30000000000000004",
    ])
    path = tmp_path / "run" / "config.yaml"
    save_config(cfg, path)
    assert load_config(Config, path, []) == cfg
    assert sorted(os.listdir(path.parent)) == ["config.yaml"]
    assert load_config(Config, path, []).optim.lr == 1e-5
    text = dump_config(cfg)
    assert "optim:" in text and "\n  lr: 1.0e-05\n" in text


def test_save_defaults_round_trip(tmp_path):
    save_config(Config(), tmp_path / "c.yaml")
    assert load_config(Config, tmp_path / "c.yaml", []) == Config()


def test_config_diff():
    a = Config()
    b = load_config(Config, None, ["optim.lr=0.1", "tags=[a]", "data.batch_size=32"])
    assert config_diff(a, a) == []
    assert config_diff(a, Config()) == []
    assert config_diff(a, b) == ["tags", "optim.lr", "data.batch_size"]
    assert config_diff(config_to_dict(a), b) == ["tags", "optim.lr", "data.batch_size"]
    # A key present on one side only counts as a difference.
    extra = {**config_to_dict(a), "new_key": 1}
    assert config_diff(a, extra) == ["new_key"]
    # Saved and reloaded values compare equal (tuples vs lists, 1 vs 1.0).
    assert config_diff(a, {**config_to_dict(a), "optim": {**config_to_dict(a.optim),
                                                          "milestones": (100, 200)}}) == []
    assert config_diff({"x": 1}, {"x": 1.0}) == []
    assert config_diff({"x": 1}, {"x": True}) == ["x"]


def test_replace_path():
    cfg = Config()
    new = replace_path(cfg, "optim.lr", 0.5)
    assert new.optim.lr == 0.5 and cfg.optim.lr == 0.025
    assert replace_path(cfg, "optim.milestones", [7]).optim.milestones == (7,)
    assert replace_path(cfg, "data", {"batch_size": 8}).data == Data(batch_size=8)
    with pytest.raises(SpeedyNASError, match="optim.lr: value -1.0 is out of range"):
        replace_path(cfg, "optim.lr", -1.0)
    with pytest.raises(SpeedyNASError, match="unknown key 'optim.lrr'; valid keys in section 'optim'"):
        replace_path(cfg, "optim.lrr", 1)
    with pytest.raises(SpeedyNASError, match="'epochs' is not a section"):
        replace_path(cfg, "epochs.x", 1)


def test_format_schema_help():
    text = format_schema_help(Config)
    assert "optim.lr: float = 0.025  [must be > 0 and <= 10]  initial learning rate" in text
    assert "data.name: one of 'cifar10', 'cifar100', 'folder' = cifar10" in text
    assert "seed: int or null = null" in text
    assert "missing" not in format_schema_help(Required) and "(required)" in \
        format_schema_help(Required)


def test_schema_mistakes_are_type_errors():
    @dataclass
    class BadType:
        x: dict = field(default_factory=dict)

    @dataclass
    class BadMeta:
        x: int = field(default=1, metadata={"minimum": 0})

    @dataclass
    class TupleAsList:
        x: tuple[int, ...] = setting([1, 2])

    @dataclass
    class DefaultOutOfRange:
        x: float = setting(0.0, gt=0)

    with pytest.raises(TypeError, match="unsupported type"):
        load_config(BadType, None, [])
    with pytest.raises(TypeError, match=r"default \[1, 2\] does not match its type list of int"):
        load_config(TupleAsList, None, [])
    with pytest.raises(TypeError, match="default value 0.0 is out of range; must be > 0"):
        load_config(DefaultOutOfRange, None, [])
    with pytest.raises(TypeError, match="unknown metadata"):
        load_config(BadMeta, None, [])
    with pytest.raises(TypeError, match="dataclass"):
        load_config(dict, None, [])


def test_non_frozen_schema_and_init_false_fields():
    @dataclass
    class Plain:
        a: int = 1
        derived: int = field(init=False, default=0)

    cfg = load_config(Plain, None, ["a=2"])
    assert cfg.a == 2
    assert config_to_dict(cfg) == {"a": 2}
    assert "unknown key 'derived'" in error_of(Plain, None, ["derived=3"])
    assert dataclasses.is_dataclass(cfg)


# --------------------------------------------------------------------------- speedynas_core.cli

SCRIPT = """
import sys
from speedynas_core.cli import run_cli
from speedynas_core.config import load_config, setting
from dataclasses import dataclass

@dataclass
class Cfg:
    epochs: int = setting(1, min=1)

def main(argv):
    mode = argv[0]
    if mode == "config":
        load_config(Cfg, None, argv[1:])
        return 0
    if mode == "bug":
        return 1 / 0
    if mode == "interrupt":
        raise KeyboardInterrupt
    if mode == "interrupt_twice":  # a second Ctrl-C arrives while the exit handlers run
        import atexit, os, signal, time
        atexit.register(lambda: (os.kill(os.getpid(), signal.SIGINT), time.sleep(0.2)))
        raise KeyboardInterrupt
    if mode == "thread":  # a background writer hits a full disk; the main thread goes on
        import threading
        def write():
            raise OSError(28, "No space left on device", "run/tb/events.out")
        worker = threading.Thread(target=write, name="event-writer")
        worker.start()
        worker.join()
        return 0
    if mode == "thread_bug":
        import threading
        worker = threading.Thread(target=lambda: 1 / 0)
        worker.start()
        worker.join()
        return 0
    if mode == "status":
        return int(argv[1])
    print("ok")

if __name__ == "__main__":
    run_cli(main)
"""


def run_script(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    script = tmp_path / "entry.py"
    script.write_text(SCRIPT)
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True,
                          timeout=120)


@pytest.mark.e2e
def test_run_cli_user_error_is_one_line_exit_2(tmp_path):
    result = run_script(tmp_path, "config", "epochs=0")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        "error: epochs: value 0 is out of range; must be >= 1 (from override 'epochs=0')"]


@pytest.mark.e2e
@pytest.mark.parametrize("mode", ["interrupt", "interrupt_twice"])
def test_run_cli_interrupt_exits_130_with_one_line(tmp_path, mode):
    """Also when a second Ctrl-C arrives while the exit handlers run."""
    result = run_script(tmp_path, mode)
    assert result.returncode == 130
    assert result.stderr.splitlines() == [
        "interrupted: Ctrl-C; completed checkpoints and results are kept"]


def test_run_cli_exits_with_main_status(tmp_path, capsys):
    script = tmp_path / "entry.py"
    script.write_text(SCRIPT)
    main = runpy.run_path(str(script), run_name="entry")["main"]
    for argv, status in ((["ok"], 0), (["status", "3"], 3), (["config", "epochz=3"], 2)):
        with pytest.raises(SystemExit) as info:
            run_cli(main, argv)
        assert info.value.code == status
    assert capsys.readouterr().err.startswith("error: unknown key 'epochz'")


@pytest.mark.e2e
def test_a_background_threads_disk_fault_is_one_line_not_a_traceback(tmp_path):
    result = run_script(tmp_path, "thread")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: run/tb/events.out: No space left on device (in background thread event-writer)"]
    bug = run_script(tmp_path, "thread_bug")  # a bug in a thread keeps its traceback
    assert "Traceback" in bug.stderr and "ZeroDivisionError" in bug.stderr


@pytest.mark.e2e
def test_run_cli_bugs_keep_their_traceback(tmp_path):
    result = run_script(tmp_path, "bug")
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "ZeroDivisionError" in result.stderr


def test_call_main_in_process(capsys):
    def main(argv):
        raise SpeedyNASError("bad thing\non two lines")

    assert call_main(main, []) == 2
    assert capsys.readouterr().err == "error: bad thing on two lines\n"
    assert call_main(lambda argv: None, []) == 0
    assert call_main(lambda argv: len(argv), ["a", "b"]) == 2


def test_a_huge_error_message_is_cut_saying_how_much(capsys):
    def main(argv):
        raise SpeedyNASError("bad " + "x" * 10**6)

    assert call_main(main, []) == 2
    err = capsys.readouterr().err
    assert len(err) < 2100 and err.endswith("(998,004 more characters)\n")


def test_out_of_memory_is_one_line(capsys):
    def main(argv):
        raise MemoryError

    assert call_main(main, []) == 2
    assert capsys.readouterr().err.startswith("error: out of memory (MemoryError)")


def test_resolve_device_cpu_only(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(SpeedyNASError, match="'cuda': CUDA is not available here; available: cpu"):
        resolve_device("cuda")
    with pytest.raises(SpeedyNASError, match="CUDA is not available"):
        resolve_device("cuda:0")
    with pytest.raises(SpeedyNASError,
                       match=r"unknown device 'gpu'; valid: auto, cpu, cuda, cuda:N"):
        resolve_device("gpu")
    with pytest.raises(SpeedyNASError, match="unknown device 'cuda:x'"):
        resolve_device("cuda:x")
    with pytest.raises(SpeedyNASError, match="must be a string"):
        resolve_device(0)


def test_resolve_device_with_fake_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert resolve_device("cuda") == torch.device("cuda", 0)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(SpeedyNASError, match="no such CUDA device; available: cpu, cuda:0, cuda:1"):
        resolve_device("cuda:2")


def test_seed_everything_is_reproducible():
    import random

    import numpy as np

    seed_everything(123)
    first = (random.random(), np.random.rand(), torch.rand(3))
    seed_everything(123)
    second = (random.random(), np.random.rand(), torch.rand(3))
    assert first[:2] == second[:2] and torch.equal(first[2], second[2])
    for bad in (-1, 2**32, 1.5, True, "1"):
        with pytest.raises(SpeedyNASError, match="seed must be an integer"):
            seed_everything(bad)


def test_set_deterministic_toggles_torch():
    from speedynas_core.runtime import set_deterministic

    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
              torch.backends.cudnn.benchmark)
    try:
        set_deterministic(True)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
        set_deterministic(False)
        assert not torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[1:]


# --------------------------------------------------------------------------- bounded input

def laughs(levels: int) -> str:
    """A billion-laughs document: each level aliases the one below ten times."""
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_yaml_aliases_that_expand_without_bound_are_refused(tmp_path):
    path = write(tmp_path, laughs(12))  # 10**12 values once expanded, 2 kB of text
    message = error_of(Config, path)
    assert "is refused: its YAML expands to more than 100,000 values" in message
    assert load_config(Config, write(tmp_path, "optim: &o {lr: 0.5}\n", "ok.yaml")) == \
        Config(optim=Optim(lr=0.5))  # an ordinary anchor still works


def test_a_recursive_alias_and_deep_nesting_are_refused(tmp_path):
    assert "recursive alias" in error_of(Config, write(tmp_path, "epochs: &a [1, *a]\n"))
    deep = write(tmp_path, "epochs: " + "[" * 20000 + "]" * 20000 + "\n", "deep.yaml")
    assert "its YAML nests deeper than 32 levels" in error_of(Config, deep)
    assert "nests deeper" in error_of(Config, None, ["epochs=" + "[" * 5000 + "]" * 5000])


def test_a_list_longer_than_its_bound_is_refused():
    @dataclass(frozen=True)
    class Lists:
        budgets: list[int] = setting([1], max_items=4)
        names: list[str] = setting([])

    assert "budgets: 5 items; at most 4" in error_of(Lists, None, ["budgets=[1,2,3,4,5]"])
    many = "names=[" + ",".join(["a"] * 1001) + "]"
    message = error_of(Lists, None, [many])
    assert "names: 1001 items; at most 1000" in message and len(message) < 400


@pytest.mark.parametrize("text, fragment", [
    ('"a\\0b"', r"'a\x00b' holds a NUL byte (at character 1)"),
    ('"a\\udc80b"', r"'a\udc80b' is not valid UTF-8 text (character 1: surrogates not allowed)"),
])
def test_text_a_file_cannot_hold_is_refused_naming_the_key(tmp_path, text, fragment):
    @dataclass(frozen=True)
    class Named:
        name: str = ""
        names: list[str] = setting([])

    path = write(tmp_path, f"name: {text}\n")
    assert f"name: {fragment}" in error_of(Named, path)
    assert f"names: item 0: {fragment}" in error_of(Named, write(tmp_path, f"names: [{text}]\n"))


def test_a_config_is_read_once_so_a_pipe_works(tmp_path):
    read_end, write_end = os.pipe()
    os.write(write_end, b"epochs: 7\n")
    os.close(write_end)
    try:
        source = read_config_file(f"/dev/fd/{read_end}")
    finally:
        os.close(read_end)
    assert load_config(Config, source).epochs == 7
    assert load_config(Config, source, ["epochs=8"]).epochs == 8  # no second read


# --------------------------------------------------------------------------- plugins

@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("hostile_plugin")]:
        del sys.modules[name]


def test_a_plugin_that_raises_on_import_is_named(plugin_dir):
    (plugin_dir / "hostile_plugin_raises.py").write_text("raise RuntimeError('no licence')\n")
    from supernet.train_config import TrainConfig

    with pytest.raises(SpeedyNASError, match="plugins: module 'hostile_plugin_raises' failed on "
                                             "import: RuntimeError: no licence"):
        load_config(TrainConfig, None, ["plugins=[hostile_plugin_raises]"])


def test_a_plugin_registering_a_taken_name_is_named(plugin_dir):
    (plugin_dir / "hostile_plugin_taken.py").write_text(
        "from estimators.registry import Estimator, register_estimator\n"
        "@register_estimator('tse')\n"
        "class Mine(Estimator): pass\n")
    from supernet.train_config import TrainConfig

    with pytest.raises(SpeedyNASError) as info:
        load_config(TrainConfig, None, ["plugins=[hostile_plugin_taken]"])
    assert str(info.value) == (
        "plugins: module 'hostile_plugin_taken' failed on import: SpeedyNASError: estimator "
        "'tse' is already registered (by module estimators.builtin); a plugin must register "
        "another name")


def test_a_saved_configs_plugins_are_imported_only_when_the_user_names_them(plugin_dir):
    (plugin_dir / "hostile_plugin_planted.py").write_text(
        "import pathlib\npathlib.Path(__file__).with_name('ran').write_text('x')\n")
    from supernet.train_config import TrainConfig

    saved = write(plugin_dir, "plugins: [hostile_plugin_planted]\n", "config.yaml")
    message = error_of(TrainConfig, saved, trust_plugins=False)
    assert f"plugins: {saved} asks to import hostile_plugin_planted, which this command did " \
           "not name" in message and "add plugins=[hostile_plugin_planted]" in message
    assert not (plugin_dir / "ran").exists()
    named = load_config(TrainConfig, saved, ["plugins=[hostile_plugin_planted]"],
                        trust_plugins=False)
    assert named.plugins == ["hostile_plugin_planted"] and (plugin_dir / "ran").exists()
    assert load_config(TrainConfig, saved, trust_plugins=False).plugins == named.plugins
