"""The typed schema of ``search.py``'s configuration."""
from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Optional

from speedynas_core.config import config_to_dict, setting
from speedynas_core.errors import SpeedyNASError, shown
from speedynas_core.optim import SGDConfig
from speedynas_core.plugins import PluginSection, options_schema
from speedynas_core.registry import Registry
from speedynas_core.runtime import RuntimeConfig
from estimators import ESTIMATORS
from estimators.combo import parse_inline
from search_spaces import SearchSpace
from supernet.registry import NETWORKS
from supernet.run_dir import SupernetWeights
from supernet.train_config import TrainConfig

from search_spaces.ground_truth import GROUND_TRUTHS, GroundTruth, create_ground_truth
from .strategies import STRATEGIES, Strategy, create_strategy

DEFAULT_ESTIMATORS = ["tse", "tse_e", "tse_ema", "tlmini", "sovl", "valacc", "valacc_inherited",
                      "params", "flops"]


@dataclass(frozen=True)
class CandidatesConfig:
    """The candidate draw: what ``sample`` ranks, and where the other strategies start."""

    num: int = setting(200, min=1, max=1_000_000,
                       help="candidates drawn uniformly (the paper: 200 NB201, 500 DARTS)")
    seed: int = setting(123, min=0, help="seed of the candidate draw")
    file: Optional[str] = setting(None, help="read candidates from this file, one arch per line")
    skip_degenerate: bool = setting(False, help="NB201: redraw cells whose output is disconnected")
    unique: Literal["none", "exact", "isomorphic"] = setting(
        "none", help="drop duplicate draws (exact text, or the NB201 isomorphism class)")


@dataclass(frozen=True)
class FinetuneConfig(SGDConfig):
    """The fine-tune of every candidate from its inherited weights."""

    lr: float = setting(0.001, gt=0, max=10, help="constant learning rate")
    budgets: list[int] = setting([100, 200, 300], min=0, max_items=64,
                                 help="B values scored; one fine-tune of max(B) steps feeds all")
    batch_size: int = setting(64, min=1)
    augment: bool = setting(True, help="augment the fixed train batches (same for every candidate)")
    val_images: int = setting(1000, min=1, help="validation images for valacc")
    seed: int = setting(0, min=0, help="seed of the fixed batch order and augmentation")


@dataclass(frozen=True)
class EstimatorsConfig:
    """Which estimators score the trajectories; each listed estimator's options are keys of its
    own sub-section (``estimators.tse_e.window_fraction``), present only when it is listed."""

    names: list[str] = setting(list(DEFAULT_ESTIMATORS),
                                help="registered estimator names, and inline combinations "
                                     "such as combo(tse+params)")

    variant_key: ClassVar[str] = "names"

    @classmethod
    def config_variant(cls, names: list[str], context: Mapping[str, Any]) -> type:
        """This section with a sub-section of options for each listed estimator that has any."""
        return _estimators_variant(cls, tuple(dict.fromkeys(base_name(n) for n in names)))

    @classmethod
    def config_variants(cls, context: Mapping[str, Any]) -> list[tuple[tuple[str, str], type]]:
        """One variant per registered estimator (for ``--list-keys``)."""
        return [(("names[]", name), _estimators_variant(cls, (name,)))
                for name in ESTIMATORS.names()]

    @classmethod
    def config_key_hint(cls, key: str) -> str | None:
        """Why an estimator's options are refused: it is not listed."""
        if key in ESTIMATORS and dataclasses.fields(options_schema(ESTIMATORS, key)):
            return f"options of {key} apply only when estimators.names lists {key}"
        return None

    def options(self, name: str) -> dict[str, Any]:
        """Options of the estimator listed as ``name`` (an inline combination: its base's)."""
        section = getattr(self, base_name(name), None)
        return config_to_dict(section) if section is not None else {}


def base_name(name: str) -> str:
    """The registered estimator behind a listed name: ``combo(tse+params)`` -> ``combo``."""
    inline = parse_inline(name)
    return name if inline is None else inline[0]


@functools.lru_cache(maxsize=None)
def _estimators_variant(base: type, names: tuple[str, ...]) -> type:
    fields = []
    for name in names:
        options = options_schema(ESTIMATORS, name)
        if dataclasses.fields(options):
            fields.append((name, options, dataclasses.field(default_factory=options)))
    if not fields:
        return base
    return dataclasses.make_dataclass(f"{base.__name__}_{'_'.join(n for n, _, _ in fields)}",
                                      fields, bases=(base,), frozen=True, kw_only=True,
                                      namespace={"variant_base": base})


#: The label source that trains each labelled arch (see :class:`LabelsConfig`).
STANDALONE = "standalone"


@dataclass(frozen=True)
class GroundTruthConfig(PluginSection):
    """Where the true accuracy of a candidate comes from: a registered source and its options."""

    registry: ClassVar[Registry] = GROUND_TRUTHS
    variant_key: ClassVar[str] = "source"

    source: Optional[str] = setting(None, help="ground-truth source (null: none), e.g. nb201 "
                                               "(the table shipped with the package) or table")

    @classmethod
    def config_variant(cls, choice: str | None, context: Mapping[str, Any]) -> type:
        """The section of source ``choice``; ``standalone`` trains, so it gives labels only."""
        if choice == STANDALONE:
            raise SpeedyNASError("standalone trains the archs it is asked about, so it is a "
                                 "source of labels only (labels.source=standalone); the ground "
                                 "truth must be known without training, e.g. nb201 or table")
        return super().config_variant(choice, context)

    def create(self, space: SearchSpace) -> GroundTruth | None:
        """The configured source for ``space`` (``None`` when no source is set)."""
        return None if self.source is None else create_ground_truth(
            self.source, space=space, **self.options())


@dataclass(frozen=True)
class LabelsConfig(GroundTruthConfig):
    """Where the labels a strategy pays for come from (``strategy.name=guided``): any
    ground-truth source, e.g. the shipped table's validation accuracy standing for a full
    training (``source: nb201, column: cifar10_valid_val``) or a user's file (``source: table,
    path: labels.csv``), or ``standalone``: each labelled arch trained stand-alone from scratch
    with the ``retrain`` section's settings (epochs, size, data) and cached in the search's
    ``retrain/`` folder, which top-k retraining shares, so no arch is trained twice; every
    label is counted and kept in ``labels.jsonl``."""

    source: Optional[str] = setting(None, help="label source (null: none; a strategy that pays "
                                               "for labels needs one), e.g. nb201, table, or "
                                               "standalone (train each labelled arch from "
                                               "scratch with the retrain.* settings)")

    @classmethod
    def config_variant(cls, choice: str | None, context: Mapping[str, Any]) -> type:
        """``standalone`` takes no options of its own (the ``retrain`` section's apply); any
        other choice is a ground-truth source with its options."""
        if choice == STANDALONE:
            return cls
        if choice is not None and choice not in cls.registry:
            raise SpeedyNASError(f"unknown label source {choice!r}; registered: "
                                 f"{', '.join(sorted([*cls.registry.names(), STANDALONE]))}")
        return super().config_variant(choice, context)

    @property
    def trains(self) -> bool:
        """Whether labels are measured by training (``source: standalone``)."""
        return self.source == STANDALONE

    def create(self, space: SearchSpace) -> GroundTruth | None:
        """The configured source for ``space``; ``standalone`` trains with a run's data and
        device, so the search builds it (:class:`speedynas_search.retrain.StandaloneLabels`)."""
        if self.trains:
            raise SpeedyNASError("labels.source=standalone trains with the searched run's data: "
                                 "build it with speedynas_search.retrain.StandaloneLabels")
        return super().create(space)


@dataclass(frozen=True)
class ZeroCostConfig(PluginSection):
    """What the zero-cost estimators measure: the inherited sub-network, or the arch's
    stand-alone network freshly initialised, whose size keys (the run's space's network
    options: NB201 ``C``, ``N``) default to the benchmark's own network (NB201: C=16, N=5),
    since proxies measured on a much smaller network are dominated by the layers every arch
    shares; they apply to ``init`` weights only."""

    registry: ClassVar[Registry] = NETWORKS  # the run's space picks the network
    variant_key: ClassVar[None] = None
    context_key: ClassVar[str] = "space"

    weights: Literal["inherited", "init"] = setting(
        "init", help="measure the inherited supernet weights (the supernet's size), or the "
                     "stand-alone network freshly initialised (as the papers define them)")
    batches: int = setting(1, min=1, help="fixed train batches (mean of the per-batch values)")
    seed: int = setting(0, min=0, help="init weights: seed of the fresh initialisation (the "
                                       "same for every candidate)")

    def __post_init__(self) -> None:
        if self.weights == "inherited" and self.variant_choice is not None:
            defaults = options_schema(self.registry, self.variant_choice)()
            changed = [f"zero_cost.{key}" for key, value in self.options().items()
                       if getattr(defaults, key) != value]
            if changed:
                raise SpeedyNASError(f"{', '.join(changed)} sets the size of the init network, "
                                     "but zero_cost.weights=inherited measures the supernet's "
                                     "sub-network; drop it or set zero_cost.weights=init")


@dataclass(frozen=True)
class RetrainConfig(SGDConfig, PluginSection):
    """Training archs from scratch as stand-alone networks: each estimator's top-k after the
    search (``enabled``), and each labelled arch of ``labels.source=standalone``; the network's
    own options (its size) are keys too, and depend on the run's search space."""

    lr: float = setting(0.1, gt=0, max=10, help="initial learning rate")
    enabled: bool = setting(False, help="retrain the union of the estimators' top-k")
    top_k: int = setting(10, min=1)
    estimators: Optional[list[str]] = setting(None, help="whose top-k (default: all enabled)")
    epochs: int = setting(200, min=1)
    batch_size: int = setting(96, min=1)
    lr_min: float = setting(0.0, min=0)
    resolution: int = setting(32, min=8, max=64)
    train_size: Optional[int] = setting(None, min=1, help="train on this many of the 50k images")
    test_size: Optional[int] = setting(None, min=1, help="test on this many test images")
    seed: int = setting(0, min=0)

    registry: ClassVar[Registry] = NETWORKS  # the run's space picks the network
    variant_key: ClassVar[None] = None
    context_key: ClassVar[str] = "space"


@dataclass(frozen=True)
class StrategyConfig(PluginSection):
    """How the evaluated archs are chosen: a registered strategy, its options, and the fitness
    it maximises."""

    registry: ClassVar[Registry] = STRATEGIES

    name: str = setting("sample", help="search strategy: sample (rank the candidate draw), "
                                       "evolution, local, halving, lce (extrapolated learning "
                                       "curves) or guided (a predictor that spends labels)")
    fitness: Optional[str] = setting(None, help="the estimator maximised (listed in "
                                                "estimators.names); null: the first listed")
    fitness_budget: Optional[int] = setting(None, min=0, help="the B its fitness is read at; "
                                                             "null: max(finetune.budgets)")

    @classmethod
    def config_key_hint(cls, key: str) -> str | None:
        """A renamed key's new name, else which other strategies take ``key``."""
        if key == "budgets":
            return "halving's fine-tune steps per rung are strategy.rung_steps"
        return super().config_key_hint(key)

    def create(self, space: SearchSpace) -> Strategy:
        """The configured strategy for ``space``."""
        return create_strategy(self.name, space, **self.options())


@dataclass(frozen=True)
class LimitConfig:
    """When the search stops (whichever limit comes first; null: no limit). Steps are fine-tune
    steps: an evaluation of s steps costs s, a zero-cost or table evaluation 0."""

    evaluations: Optional[int] = setting(None, min=1, help="stop after this many evaluations "
                                                           "(queries)")
    steps: Optional[int] = setting(None, min=0, help="stop once this many fine-tune steps are "
                                                     "spent, summed over evaluations")
    seconds: Optional[float] = setting(None, gt=0, help="stop once this many evaluation seconds "
                                                        "are spent (machine-dependent)")


@dataclass(frozen=True)
class ReportConfig:
    """What the summary measures beside each estimator's correlations."""

    resamples: int = setting(1000, min=0, max=100_000,
                             help="bootstrap resamples of each Spearman and Kendall 95 % "
                                  "interval (0: no intervals)")
    top_fraction: float = setting(0.1, gt=0, max=1,
                                  help="the top of the ranking: Kendall among, and precision "
                                       "at, this fraction of the candidates with the best truths")


def search_context(train_cfg: TrainConfig) -> dict[str, Any]:
    """What a search config's valid keys depend on: the searched run's space."""
    return {"space": train_cfg.model.space}


@dataclass(frozen=True)
class SearchConfig(RuntimeConfig):
    """Everything ``search.py`` needs; saved resolved as ``SEARCH_DIR/config.yaml``."""

    name: Optional[str] = setting(None, help="write to RUN_DIR/search/NAME instead of RUN_DIR/search")
    progress: bool = setting(True, help="show progress bars")
    supernet_epoch: Optional[int] = setting(
        None, min=1, help="search the supernet as kept after this epoch (a run trained with "
                          "log.keep_every); null: the last checkpoint")
    supernet_weights: SupernetWeights = setting(
        "trained", help="the trained weights, or their moving average (optim.ema_decay)")
    threads: Optional[int] = setting(
        None, min=1, help="torch threads per process (the numbers depend on it); null: this "
                          "process's default at the first run, recorded and kept on resume, "
                          "whatever the number of processes")
    count_flops: bool = setting(True, help="count every evaluated arch's FLOPs (about 0.2 s "
                                           "each on a CPU); false (table-mode runs): no flops "
                                           "estimator, objective or front")
    candidates: CandidatesConfig = field(default_factory=CandidatesConfig)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    limit: LimitConfig = field(default_factory=LimitConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    estimators: EstimatorsConfig = field(default_factory=EstimatorsConfig)
    zero_cost: ZeroCostConfig = field(default_factory=ZeroCostConfig)
    ground_truth: GroundTruthConfig = field(default_factory=GroundTruthConfig)
    labels: LabelsConfig = field(default_factory=LabelsConfig)
    retrain: RetrainConfig = field(default_factory=RetrainConfig)
    report: ReportConfig = field(default_factory=ReportConfig)

    @classmethod
    def config_key_hint(cls, key: str) -> str | None:
        """Where a renamed section went."""
        if key == "budget":
            return ("the search's limits are the limit section: limit.evaluations, "
                    "limit.steps, limit.seconds")
        return None

    def __post_init__(self) -> None:
        if not self.finetune.budgets:
            raise SpeedyNASError("finetune.budgets must list at least one B")
        if len(set(self.finetune.budgets)) != len(self.finetune.budgets):
            repeated = sorted({b for b in self.finetune.budgets
                               if self.finetune.budgets.count(b) > 1})
            raise SpeedyNASError(f"finetune.budgets repeats {shown(repeated)}; list each B once")
        if not self.estimators.names:
            raise SpeedyNASError("estimators.names must list at least one estimator")
        if self.name is not None and (not self.name or "/" in self.name or self.name in (".", "..")):
            raise SpeedyNASError(f"name={self.name!r} must be a plain folder name")
