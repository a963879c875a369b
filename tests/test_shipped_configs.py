"""Every config shipped in configs/ loads against its schema and builds what it names."""
from __future__ import annotations

import pytest

from speedynas_core.config import load_config
from speedynas_search.search_config import SearchConfig
from speedynas_search.scorer import build_estimators
from supernet import create_supernet
from supernet.measure import count_parameters
from supernet.train_config import TrainConfig

from .conftest import REPO

CONFIGS = sorted((REPO / "configs").glob("*.yaml"))
SEARCH = [p for p in CONFIGS if p.name.startswith("search")]
TRAIN = [p for p in CONFIGS if not p.name.startswith("search")]


def test_both_kinds_are_shipped():
    assert len(SEARCH) >= 3 and len(TRAIN) >= 8


@pytest.mark.parametrize("path", SEARCH, ids=lambda p: p.name)
def test_search_config_loads_and_builds_its_estimators(path):
    space = "darts" if "darts" in path.name else "nb201"
    cfg = load_config(SearchConfig, path, context={"space": space})
    names = [e.name for e in build_estimators(cfg)]
    assert names == [n.replace(" ", "").replace(",", "+") for n in cfg.estimators.names]


@pytest.mark.parametrize("path", TRAIN, ids=lambda p: p.name)
def test_train_config_loads_and_builds_its_supernet(path):
    cfg = load_config(TrainConfig, path)
    net = create_supernet(cfg.model.space, **cfg.model.options())
    assert count_parameters(net) > 0
