"""The layout of a training run directory and the rules for starting or resuming one.

``RUN_DIR/.speedynas-run`` (the marker of a run dir, see :func:`speedynas_core.locks.claim_directory`),
``config.yaml`` (resolved config), ``split.json`` (data split), ``checkpoints/last.pt``
(+ ``epoch_N.pt``), ``history.json`` (per-epoch figures), ``tb/`` (TensorBoard).
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import torch

from speedynas_core.atomic_io import load_checkpoint
from speedynas_core.config import (
    ConfigFile,
    ConfigSource,
    config_diff,
    load_config,
    read_config_file,
    save_config,
)
from speedynas_core.errors import SpeedyNASError
from speedynas_core.locks import claim_directory

from .base import Supernet
from .methods import METHODS
from .registry import SUPERNETS
from .train_config import TrainConfig

CHECKPOINT_FORMAT = 1


def config_path(run_dir: Path) -> Path:
    """Where the resolved config of a run lives."""
    return run_dir / "config.yaml"


def last_checkpoint(run_dir: Path) -> Path:
    """The checkpoint a resumed run continues from."""
    return run_dir / "checkpoints" / "last.pt"


def saved_config(run_dir: Path) -> ConfigFile:
    """The saved config of the run in ``run_dir``, read once. A run trained when the
    gradient-based methods were samplers saved ``sampler: {name: darts_tse, ...}``: that section
    is read as ``method:``, as it is spelt now (the same run; its file is left as it is)."""
    source = read_config_file(config_path(run_dir))
    data = source.data
    sampler = data.get("sampler") if isinstance(data, Mapping) else None
    name = sampler.get("name") if isinstance(sampler, Mapping) else None
    if not isinstance(name, str) or name not in METHODS or "method" in data:
        return source
    moved = {key: value for key, value in data.items() if key != "sampler"}
    return ConfigFile(source.path, {**moved, "method": data["sampler"]})


def checkpoint_meta(net: Supernet) -> dict[str, Any]:
    """What a checkpoint must agree with to be loaded into ``net``."""
    return {"format": CHECKPOINT_FORMAT, "space": net.space.name, "size": net.size()}


def _legacy_run(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a run made before run dirs were marked (a config and a
    checkpoint)."""
    return config_path(run_dir).exists() and last_checkpoint(run_dir).exists()


def claim_run_dir(run_dir: Path) -> None:
    """Make ``run_dir`` (created if needed) a marked run dir; a directory that is neither new,
    empty nor a run's (a user's own folder) is refused, naming it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    claim_directory(run_dir, "train", _legacy_run, "choose a new or empty --run-dir")


def resolve_train_config(run_dir: Path, config_file: ConfigSource, overrides: Sequence[str],
                         resume: bool, write: bool = True) -> TrainConfig:
    """The config of a new run (saved) or of the run being resumed (checked against overrides).

    The run dir is claimed first (:func:`claim_run_dir`; a run made before run dirs were marked
    gets its marker). A run dir whose config was saved but that holds no checkpoint yet (its
    first attempt was refused, say for an empty data folder) starts again with the new config.

    ``write=False`` (torchrun ranks other than 0) only reads and validates. The saved config's
    plugins are imported only where the command names them (or they are imported already)."""
    saved = config_path(run_dir)
    if not resume and not write:
        return load_config(TrainConfig, config_file, overrides)
    if not resume:
        claim_run_dir(run_dir)
        if last_checkpoint(run_dir).exists():
            raise SpeedyNASError(f"{run_dir} already holds a run ({last_checkpoint(run_dir)}); "
                                 "pass --resume to continue it, or choose another --run-dir")
        cfg = load_config(TrainConfig, config_file, overrides)
        save_config(cfg, saved)
        return cfg
    if not saved.exists():
        raise SpeedyNASError(f"cannot resume: {run_dir} holds no run ({saved} is missing)")
    if write:
        claim_run_dir(run_dir)
    kept = saved_config(run_dir)
    cfg = load_config(TrainConfig, kept, trust_plugins=False)
    if config_file is not None or overrides:
        wanted = load_config(TrainConfig, config_file or kept, overrides,
                             trust_plugins=config_file is not None)
        changed = config_diff(cfg, wanted)
        if changed:
            raise SpeedyNASError(f"{run_dir} holds a run with a different config "
                                 f"(differs in: {', '.join(changed)}); resume without changes "
                                 "or start a new --run-dir")
    return cfg


def load_run_config(run_dir: Path) -> TrainConfig:
    """The saved config of the training run in ``run_dir`` (its plugins are not imported: the
    command must name them, see :func:`speedynas_core.config.load_config`)."""
    if not config_path(run_dir).exists():
        raise SpeedyNASError(f"{run_dir} is not a training run dir ({config_path(run_dir)} is "
                             "missing); train a supernet there first with train.py")
    return load_config(TrainConfig, saved_config(run_dir), trust_plugins=False)


#: Which weights of a checkpoint a search loads: the trained ones or their moving average.
SupernetWeights = Literal["trained", "ema"]


def epoch_checkpoint(run_dir: Path, epoch: int) -> Path:
    """The checkpoint kept after ``epoch`` (``log.keep_every``)."""
    return run_dir / "checkpoints" / f"epoch_{epoch}.pt"


def kept_epochs(run_dir: Path) -> list[int]:
    """The epochs whose checkpoints a run kept, in order."""
    found = (p.stem.removeprefix("epoch_") for p in (run_dir / "checkpoints").glob("epoch_*.pt"))
    return sorted(int(e) for e in found if e.isdigit())


def load_supernet(run_dir: Path, device: torch.device | str = "cpu",
                  require_finished: bool = True, epoch: int | None = None,
                  weights: SupernetWeights = "trained",
                  ) -> tuple[Supernet, TrainConfig, dict[str, Any]]:
    """The trained supernet of a run (or, given ``epoch``, as kept after that epoch), its
    config and its checkpoint; ``weights="ema"``: with the weight average of
    ``optim.ema_decay`` instead of the trained weights."""
    cfg = load_run_config(run_dir)
    path = last_checkpoint(run_dir) if epoch is None else epoch_checkpoint(run_dir, epoch)
    if epoch is not None and not path.exists():
        kept = ", ".join(map(str, kept_epochs(run_dir))) or "none (train with log.keep_every)"
        raise SpeedyNASError(f"{run_dir} kept no checkpoint after epoch {epoch}; kept epochs: "
                             f"{kept}")
    if not path.exists():
        raise SpeedyNASError(f"{run_dir} has no supernet checkpoint ({path}); train it first")
    expected = {"format": CHECKPOINT_FORMAT, "space": cfg.model.space, "size": cfg.model.options()}
    state = load_checkpoint(path, expected=expected)  # refuses another space or size
    net = SUPERNETS.create(cfg.model.space, num_classes=state["meta"]["size"]["num_classes"],
                           **cfg.model.options())
    if require_finished and epoch is None and not state.get("finished", False):
        raise SpeedyNASError(f"the supernet in {run_dir} has not finished training (step "
                             f"{state.get('step')}); resume it with "
                             f"python train.py --run-dir {run_dir} --resume")
    if weights == "ema" and "model_ema" not in state:
        raise SpeedyNASError(f"{path} holds no weight average: train with optim.ema_decay to "
                             "search supernet_weights=ema")
    restore(path, lambda: net.load_state_dict(state["model_ema" if weights == "ema" else
                                                    "model"]))
    return net.to(device), cfg, state


def restore(path: Path, load: Callable[[], Any]) -> None:
    """Run ``load`` (``load_state_dict`` calls with ``path``'s contents); a checkpoint whose
    tensors have other keys or shapes than this run's is refused naming the file."""
    try:
        load()
    except (RuntimeError, KeyError, ValueError, TypeError) as err:
        detail = " ".join(str(err).split())
        raise SpeedyNASError(f"checkpoint {path} does not fit this run's networks (other keys "
                             f"or shapes: {detail[:300]})") from None
