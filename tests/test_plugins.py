"""Plugins own their options: one of each kind, registered from a user's module, runs end to end,
and every registered plugin's options are derived from its factory."""
from __future__ import annotations

import dataclasses
import inspect
import json
import shutil

import pytest
import yaml

import search_spaces
from speedynas_core.config import format_schema_help, load_config, replace_path
from speedynas_core.errors import SpeedyNASError
from speedynas_core.plugins import options_schema
from estimators import ESTIMATORS
from search_spaces import GROUND_TRUTHS
from speedynas_search.retrain import cache_file
from speedynas_search.search_config import SearchConfig
from supernet.methods import METHODS
from supernet.registry import NETWORKS, SUPERNETS
from supernet.samplers import SAMPLERS
from supernet.train_config import TrainConfig

from .conftest import CIFAR10_DIR, REPO, assert_one_line_error, run_script

REGISTRIES = [SAMPLERS, METHODS, SUPERNETS, NETWORKS, ESTIMATORS, GROUND_TRUTHS]


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
    with pytest.raises(SpeedyNASError, match="unknown sampler 'nope'; registered: fairnas"):
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


@pytest.mark.e2e
def test_a_run_dirs_saved_plugins_are_not_imported_by_a_search_that_did_not_name_them(
        toy_supernet, tmp_path):
    run_dir = tmp_path / "copied_run"
    shutil.copytree(toy_supernet, run_dir, ignore=shutil.ignore_patterns("search"))
    config = run_dir / "config.yaml"
    config.write_text(config.read_text().replace("plugins: []", "plugins: [planted_module]"))
    (tmp_path / "planted_module.py").write_text(
        "import pathlib\npathlib.Path(__file__).with_name('ran').write_text('x')\n")
    env = {"PYTHONPATH": str(tmp_path)}
    search = ["--run-dir", str(run_dir), "--config", str(REPO / "configs" / "search_toy.yaml"),
              "retrain.enabled=false", "candidates.num=2", "finetune.budgets=[2]"]
    proc = run_script("search.py", *search, check=False, env=env)
    assert_one_line_error(proc, f"plugins: {config} asks to import planted_module, which this "
                                "command did not name", "add plugins=[planted_module]")
    assert not (tmp_path / "ran").exists()
    run_script("search.py", *search, "plugins=[planted_module]", env=env)  # named: trusted
    assert (tmp_path / "ran").exists()


# --------------------------------------------------------------------------- config sections

def test_a_key_of_another_plugin_is_refused_naming_who_takes_it():
    with pytest.raises(SpeedyNASError, match=r"unknown key 'model.layers' .*valid keys in section "
                       r"'model' \(space 'nb201'\): space, channels_last, C, N; 'layers' is an "
                       r"option of supernet darts"):
        load_config(TrainConfig, None, ["model.layers=3"])
    cfg = load_config(TrainConfig, None, ["model={space: darts, layers: 5}",
                                          "sampler={name: multipaths, num_paths: 2}"])
    assert cfg.model.options() == {"C": 16, "layers": 5, "stem_multiplier": 3}
    assert cfg.sampler.options() == {"per_cell": False, "num_paths": 2, "stratify": "none",
                                     "calibration": 256, "seed": 0}
    with pytest.raises(SpeedyNASError, match=r"model.layers: .*must be >= 3"):
        load_config(TrainConfig, None, ["model={space: darts, layers: 2}"])


def test_replace_path_checks_keys_against_the_chosen_plugin():
    cfg = load_config(TrainConfig, None, ["sampler.name=multipaths", "sampler.num_paths=3"])
    assert replace_path(cfg, "sampler.num_paths", 5).sampler.num_paths == 5
    with pytest.raises(SpeedyNASError, match="'num_paths' is an option of sampler"):
        replace_path(cfg, "sampler.name", "fairnas")  # num_paths would stay: refused
    fair = replace_path(cfg, "sampler", {"name": "fairnas", "per_cell": True})
    assert fair.sampler.options() == {"per_cell": True}


def test_estimator_options_exist_only_for_listed_estimators():
    nb201 = {"space": "nb201"}
    cfg = load_config(SearchConfig, None, ["estimators.names=[tse_e, combo(tse_e+params)]",
                                           "estimators.tse_e.window=7"], context=nb201)
    assert cfg.estimators.options("tse_e") == {"window": 7, "window_fraction": 0.5}
    assert cfg.estimators.options("combo(tse_e+params)")["method"] == "rank_mean"
    with pytest.raises(SpeedyNASError, match="options of tse_ema apply only when "
                                             "estimators.names lists tse_ema"):
        load_config(SearchConfig, None, ["estimators.names=[tse]", "estimators.tse_ema.gamma=0.9"],
                    context=nb201)
    with pytest.raises(SpeedyNASError, match="estimators.names: unknown estimator 'tsee'"):
        load_config(SearchConfig, None, ["estimators.names=[tsee]"], context=nb201)


def test_retrain_network_keys_follow_the_run_space():
    darts = load_config(SearchConfig, None, ["retrain.layers=6"], context={"space": "darts"})
    assert darts.retrain.options() == {"C": 36, "layers": 6, "drop_path_prob": 0.0,
                                       "stem_multiplier": 3}
    with pytest.raises(SpeedyNASError, match="'layers' is an option of stand-alone network darts"):
        load_config(SearchConfig, None, ["retrain.layers=6"], context={"space": "nb201"})
    with pytest.raises(SpeedyNASError,
                       match=r"(zero_cost|retrain): its keys depend on the space"):
        load_config(SearchConfig)


def test_ground_truth_sources_are_chosen_with_their_options(tmp_path):
    space = search_spaces.create("nb201")
    arch = str(next(space.enumerate()))
    cache = tmp_path / "retrain"
    cache.mkdir()
    cache_file(cache, space, arch).write_text(json.dumps({"test_acc": 42.0}))
    cfg = load_config(SearchConfig, None, [f"ground_truth={{source: retrain, cache_dir: {cache}}}"],
                      context={"space": "nb201"})
    assert cfg.ground_truth.create(space).lookup(arch) == 42.0
    assert load_config(SearchConfig, context={"space": "nb201"}).ground_truth.create(space) is None
    with pytest.raises(SpeedyNASError, match="missing required key 'ground_truth.path'"):
        load_config(SearchConfig, None, ["ground_truth.source=table"], context={"space": "nb201"})


def test_list_keys_shows_each_plugin_option_with_its_choice():
    text = format_schema_help(TrainConfig)
    assert "model.N: int = 5  [must be >= 1]  cells per stage  (space=nb201)" in text
    assert "sampler.per_cell: bool = false" in text and "(name=fairnas|multipaths|randnas)" in text
    search = format_schema_help(SearchConfig)
    assert "estimators.tse_e.window_fraction: float = 0.5" in search
    assert "(when names lists tse_e)" in search and "retrain.layers: int = 20" in search


def test_plugins_key_imports_modules_first_and_names_a_missing_one():
    with pytest.raises(SpeedyNASError, match="plugins: cannot import module 'no_such_module'"):
        load_config(TrainConfig, None, ["plugins=[no_such_module]"])
