"""--help of train.py and search.py (speedynas_core.cli): typical commands after the options,
taken from the script's docstring unless the caller gives them; the module imports no torch,
and --list-keys takes its schema as an import path, so that a script can parse first; the
argparse types of counts and seeds refuse what is not one, naming the value."""
from __future__ import annotations

import ast
import subprocess
import sys

import argparse

import pytest

from speedynas_core.cli import (doc_examples, load_schema, non_negative_int, parse_run_args,
                                positive_int, run_parser)
from speedynas_core.config import format_schema_help
from supernet.train_config import TrainConfig

from .conftest import REPO


def script_doc(name: str) -> str:
    """A script's docstring, read without importing it."""
    return ast.get_docstring(ast.parse((REPO / name).read_text()), clean=False) or ""


def test_the_entry_points_docstrings_give_two_or_more_examples():
    for script in ("train.py", "search.py"):
        examples = doc_examples(script_doc(script))
        assert len(examples) >= 2, script
        assert all(line.startswith(("python ", "torchrun ")) for line in examples)
        assert any(f"python {script}" in line for line in examples)


def test_doc_examples_takes_only_indented_command_lines():
    doc = ("Train.\n\n    python train.py --config c.yaml --run-dir r\n    torchrun --nproc_per_node=2"
           " train.py ...   # data parallel\n\npython is mentioned here in prose.\n    not a command\n")
    assert doc_examples(doc) == ["python train.py --config c.yaml --run-dir r",
                                 "torchrun --nproc_per_node=2 train.py ...   # data parallel"]
    assert doc_examples(None) == [] and doc_examples("") == []


def test_help_ends_with_the_examples_as_written():
    examples = ["python train.py --config configs/toy.yaml --run-dir runs/toy",
                "python train.py --run-dir runs/toy --resume"]
    text = run_parser("Train.", "a config", examples).format_help()
    assert text.rstrip().endswith("examples:\n" + "\n".join(f"  {e}" for e in examples))
    assert "section.key=value" in text and "--list-keys" in text


def test_help_without_examples_has_no_examples_section():
    assert "examples:" not in run_parser("Train.", "a config", []).format_help()


def test_the_cli_module_imports_no_torch():
    """So that a script importing its heavy modules after parsing answers --help at once."""
    code = "import sys, speedynas_core.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         check=True).stdout
    assert out.strip() == "False"


def test_list_keys_takes_the_schema_as_an_import_path(capsys):
    parser = run_parser("Train.", "a config", [])
    assert parse_run_args(parser, "supernet.train_config:TrainConfig", ["--list-keys"]) is None
    assert capsys.readouterr().out.rstrip("\n") == format_schema_help(TrainConfig)
    assert load_schema("supernet.train_config:TrainConfig") is TrainConfig
    assert load_schema(TrainConfig) is TrainConfig


def test_counts_and_seeds_refuse_what_is_not_one_naming_the_value(capsys):
    parser = argparse.ArgumentParser(prog="x")
    parser.add_argument("--jobs", type=positive_int, default=2)
    parser.add_argument("--seed", type=non_negative_int, default=0)
    assert vars(parser.parse_args(["--jobs", "1", "--seed", "0"])) == {"jobs": 1, "seed": 0}
    for argv, said in ((["--jobs", "0"], "argument --jobs: 0 is below 1; give an integer of "
                                         "at least 1"),
                       (["--seed", "-3"], "argument --seed: -3 is below 0"),
                       (["--jobs", "two"], "argument --jobs: 'two' is not an integer")):
        with pytest.raises(SystemExit) as exit_:
            parser.parse_args(argv)
        assert exit_.value.code == 2
        assert said in capsys.readouterr().err
