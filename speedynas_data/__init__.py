"""Image data: datasets (CIFAR-10/100, image folders) as uint8 tensors, train/validation splits,
seeded batch orders and batched augmentation.

>>> from speedynas_data import DataConfig, load_run_data
"""
from __future__ import annotations

from .data_config import DataConfig
from .run_data import RunData, load_run_data

__all__ = ["DataConfig", "RunData", "load_run_data"]
