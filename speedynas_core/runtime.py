"""Runtime state: the device, numeric precision, seeds, deterministic kernels and every
generator's state."""
from __future__ import annotations

import contextlib
import os
import random
import re
from dataclasses import dataclass
from typing import Any, Literal

import torch

from .config import setting
from .errors import SpeedyNASError

__all__ = ["Precision", "RuntimeConfig", "capture_rng_state", "mixed_precision",
           "resolve_device", "restore_rng_state", "seed_everything", "set_deterministic"]

Precision = Literal["fp32", "bf16"]


@dataclass(frozen=True)
class RuntimeConfig:
    """The keys every program's config starts with: plugins to import, device, determinism."""

    plugins: list[str] = setting([], help="modules imported first (they register plugins)")
    device: str = setting("auto", help="auto, cpu, cuda or cuda:N")
    deterministic: bool = setting(True, help="deterministic kernels where torch has them (on "
                                             "CUDA also no cuDNN autotuning); false may be faster")
    precision: Precision = setting("fp32", help="fp32, or bf16: forward passes under bfloat16 "
                                                "autocast (weights, gradients and optimizer "
                                                "state stay fp32)")


def mixed_precision(device: torch.device,
                    precision: Precision) -> contextlib.AbstractContextManager:
    """The autocast context of ``precision`` on ``device`` (fp32: no autocast). Wrap forward
    passes and losses in it, not backward passes."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()

# --------------------------------------------------------------------------- devices

_CUDA_N = re.compile(r"^cuda:(\d+)$")


def _available() -> list[str]:
    names = ["cpu"]
    if torch.cuda.is_available():
        names += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return names


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA if available, else CPU), ``cpu``, ``cuda`` or ``cuda:N`` as a device."""
    if not isinstance(name, str):
        raise SpeedyNASError(f"device must be a string, got {name!r}")
    key = name.strip().lower()
    if key == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if key == "cpu":
        return torch.device("cpu")
    available = ", ".join(_available())
    match = _CUDA_N.match(key)
    if key == "cuda" or match:
        if not torch.cuda.is_available():
            raise SpeedyNASError(f"device {name!r}: CUDA is not available here; "
                                 f"available: {available} (or 'auto')")
        index = int(match.group(1)) if match else 0
        if index >= torch.cuda.device_count():
            raise SpeedyNASError(f"device {name!r}: no such CUDA device; available: {available}")
        return torch.device("cuda", index)
    raise SpeedyNASError(f"unknown device {name!r}; valid: auto, cpu, cuda, cuda:N "
                         f"(available here: {available})")


# --------------------------------------------------------------------------- randomness

def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy (if installed) and torch (CPU and every CUDA device)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise SpeedyNASError(f"seed must be an integer in [0, 2**32 - 1], got {seed!r}")
    random.seed(seed)
    try:
        import numpy as np
    except ImportError:  # numpy is optional here
        pass
    else:
        np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def set_deterministic(enabled: bool = True) -> None:
    """Ask torch for deterministic kernels (warn-only where none exists) and fixed cuDNN algos.

    ``False`` lifts the requirement again and leaves ``cudnn.benchmark`` as it is.
    """
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(enabled, warn_only=True)
    torch.backends.cudnn.deterministic = enabled


def capture_rng_state() -> dict[str, Any]:
    """Every generator's state in types that ``torch.load(weights_only=True)`` accepts."""
    state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    try:
        import numpy as np
    except ImportError:
        pass
    else:
        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        state["numpy"] = {"kind": str(kind), "keys": torch.from_numpy(keys.astype(np.int64)),
                          "pos": int(pos), "has_gauss": int(has_gauss), "gauss": float(gauss)}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Undo :func:`capture_rng_state` (as saved in, and loaded from, a checkpoint)."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    torch.set_rng_state(state["torch"])
    if "numpy" in state:
        import numpy as np

        numpy_state = state["numpy"]
        np.random.set_state((numpy_state["kind"],
                             numpy_state["keys"].numpy().astype(np.uint32),
                             numpy_state["pos"], numpy_state["has_gauss"],
                             numpy_state["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
