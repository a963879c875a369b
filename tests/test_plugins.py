"""Plugins own their options: one of each kind, registered from a user's module, runs end to end,
and every registered plugin's options are derived from its factory."""
from __future__ import annotations

import dataclasses
import inspect
import json
import shutil

import pytest
import yaml

from core.errors import SpeedyNASError
from core.plugins import options_schema
from estimators import ESTIMATORS
from search_pipeline import GROUND_TRUTHS
from supernet.registry import NETWORKS, SUPERNETS
from supernet.samplers import SAMPLERS

from .conftest import CIFAR10_DIR, REPO, assert_one_line_error, run_script

REGISTRIES = [SAMPLERS, SUPERNETS, NETWORKS, ESTIMATORS, GROUND_TRUTHS]


@pytest.mark.parametrize("registry", REGISTRIES, ids=lambda r: r.kind)
def test_every_plugin_option_is_a_keyword_of_its_factory_with_its_default(registry):
    for name in registry.names():
        factory = registry.get(name)
        params = inspect.signature(factory).parameters
        for f in dataclasses.fields(options_schema(registry, name)):
            assert f.name in params and f.name not in registry.fixed
            default = params[f.name].default
            if default is not inspect.Parameter.empty:
                value = f.default if f.default is not dataclasses.MISSING else f.default_factory()
                assert value == (list(default) if isinstance(default, tuple) else default)


def test_an_unknown_plugin_lists_the_registered_ones():
    with pytest.raises(SpeedyNASError, match="unknown path sampler 'nope'; registered: fairnas"):
        options_schema(SAMPLERS, "nope")


@pytest.fixture(scope="module")
def user_module(tmp_path_factory) -> dict[str, str]:
    """tests/toy_plugins.py as a user's own module ``my_plugins`` outside the repo."""
    folder = tmp_path_factory.mktemp("user_code")
    shutil.copy(REPO / "tests" / "toy_plugins.py", folder / "my_plugins.py")
    return {"PYTHONPATH": str(folder)}


@pytest.mark.e2e
def test_one_plugin_of_each_kind_trains_and_searches(tmp_path, user_module):
    run_dir, config = tmp_path / "run", tmp_path / "chain.yaml"
    toy = yaml.safe_load((REPO / "configs" / "toy.yaml").read_text())
    toy.update(plugins=["my_plugins"], model={"space": "chain", "C": 6},
               sampler={"name": "mutants", "num_mutants": 2}, optim={**toy["optim"], "epochs": 1})
    config.write_text(yaml.safe_dump(toy))
    train = ["--config", str(config), "--run-dir", str(run_dir), f"data.root={CIFAR10_DIR}"]
    proc = run_script("train.py", *train, "model.N=1", check=False, env=user_module)
    assert_one_line_error(proc, "model.N", "valid keys in section 'model' (space 'chain')")
    run_script("train.py", *train, env=user_module)
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["plugins"] == ["my_plugins"]
    assert saved["model"] == {"space": "chain", "channels_last": True, "C": 6}
    assert saved["sampler"] == {"name": "mutants", "per_cell": False, "num_mutants": 2}

    search = ["--run-dir", str(run_dir), "progress=false", "candidates.num=10",
              "finetune={budgets: [2, 4], batch_size: 32, val_images: 128}", "plugins=[my_plugins]",
              "estimators.names=[last_loss, params, combo(last_loss+params)]",
              "estimators.last_loss.scale=2", "ground_truth={source: size_truth, C: 6}"]
    run_script("search.py", *search, env=user_module)
    summary = json.loads((run_dir / "search" / "summary.json").read_text())
    assert summary["settings"]["estimators"][0] == "last_loss(scale=2.0)"
    assert summary["settings"]["ground_truth"] == "parameter count at C=6 (a test stand-in)"
    last = str(summary["budgets"][-1])
    assert summary["metrics"]["params"][last]["spearman"] == pytest.approx(1.0)
    records = [json.loads(line) for line in (run_dir / "search" / "results.jsonl").open()]
    for record in records:
        loss = record["trajectory"]["train_losses"][int(last) - 1]
        assert record["scores"]["last_loss"][last] == pytest.approx(-2 * loss)
