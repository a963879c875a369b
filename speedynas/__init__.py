"""speedynas in a notebook: load a trained run, fine-tune and score archs, rank a list.

>>> import speedynas
>>> run = speedynas.load_run("runs/quickstart", "configs/search_quickstart.yaml")
>>> record = run.evaluate("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|")
>>> record.score("tse", 100), run.truth(record.arch)

The command-line tools are ``train.py`` and ``search.py``; this package is the top floor above
:mod:`speedynas_search`, and nothing imports it.
"""
from __future__ import annotations

from .api import Run, load_run

__all__ = ["Run", "load_run"]
