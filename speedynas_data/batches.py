"""Minibatches from in-memory uint8 tensors: seeded order, device transfer, exact resume.

``BatchIterator`` replaces a torch ``DataLoader`` in the hot path. Each epoch visits the chosen
samples once in one of three orders:

* ``"shuffle"``: a new permutation every epoch, drawn from a seeded ``torch.Generator``;
* ``"fixed"``: one seeded permutation reused for every epoch, so every iterator built with the
  same arguments yields the same batches (fine-tuning: every candidate sees the same data);
* ``"sequential"``: the given index order.

Each batch is gathered on the images' device, moved to ``device`` and passed through
``transform(images_uint8, generator)`` (e.g. ``BatchAugment.train``) with a second seeded
generator on ``device``. ``state_dict()`` records the epoch, the position within it and both
generator states; after ``load_state_dict()`` the iterator yields exactly the batches an
uninterrupted run would have yielded next.

Gathering and augmenting a batch runs with one intra-op thread by default (``threads=1``): these
are ~200k-element memory-bound ops that gain little from a second thread, and on a 2-core machine
where another process keeps one core busy, OpenMP's spin-waiting made them ~100x slower
(1k instead of 250k images/s, measured).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import numpy as np
import torch

from speedynas_core.errors import SpeedyNASError

Order = Literal["shuffle", "fixed", "sequential"]
Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
ORDERS = ("shuffle", "fixed", "sequential")

# Independent streams derived from one user seed.
_SHUFFLE, _FIXED, _AUGMENT = 0, 1, 2


@contextmanager
def intra_op_threads(count: int | None) -> Iterator[None]:
    """Run the block with ``count`` torch intra-op threads (None: unchanged), then restore."""
    old = torch.get_num_threads()
    if count is None or count == old:
        yield
        return
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def derive_seed(seed: int, stream: int) -> int:
    """A 63-bit seed for ``stream`` that is statistically independent of other streams."""
    state = np.random.SeedSequence([seed & (2**64 - 1), stream]).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


class BatchIterator:
    """Yields ``(images, labels)`` batches of ``batch_size`` from ``images[indices]``.

    ``for x, y in it`` runs the rest of the current epoch; :meth:`take` runs across epochs.
    Only one iteration may be in progress at a time.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, *,
                 indices: torch.Tensor | Sequence[int] | None = None, order: Order = "shuffle",
                 drop_last: bool = False, seed: int = 0, device: torch.device | str = "cpu",
                 transform: Transform | None = None, threads: int | None = 1) -> None:
        if images.dim() < 1 or labels.dim() != 1 or images.shape[0] != labels.shape[0]:
            raise SpeedyNASError(f"images {tuple(images.shape)} and labels "
                                 f"{tuple(labels.shape)} need the same first dimension")
        if order not in ORDERS:
            raise SpeedyNASError(f"unknown batch order {order!r}; valid orders: "
                                 f"{', '.join(ORDERS)}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise SpeedyNASError(f"batch_size must be a positive integer, got {batch_size!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise SpeedyNASError(f"seed must be an integer, got {seed!r}")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                    or threads < 1):
            raise SpeedyNASError(f"threads must be a positive integer or None, got {threads!r}")
        if indices is None:
            indices = torch.arange(images.shape[0])
        indices = torch.as_tensor(indices, dtype=torch.int64).flatten()
        if len(indices) == 0:
            raise SpeedyNASError("indices are empty; a batch iterator needs at least one sample")
        if indices.min() < 0 or indices.max() >= images.shape[0]:
            raise SpeedyNASError(f"indices must lie in 0..{images.shape[0] - 1}, got "
                                 f"{int(indices.min())}..{int(indices.max())}")
        if drop_last and len(indices) < batch_size:
            raise SpeedyNASError(f"batch_size {batch_size} exceeds the {len(indices)} samples; "
                                 "with drop_last no batch would be left")
        self.images, self.labels = images, labels
        self.indices = indices
        self.batch_size = batch_size
        self.order: Order = order
        self.drop_last = drop_last
        self.seed = seed
        self.device = torch.device(device)
        self.transform = transform
        self.threads = threads
        self._shuffle_rng = torch.Generator().manual_seed(derive_seed(seed, _SHUFFLE))
        self._augment_rng = torch.Generator(device=self.device).manual_seed(
            derive_seed(seed, _AUGMENT))
        self._fixed: torch.Tensor | None = None
        if order == "fixed":
            g = torch.Generator().manual_seed(derive_seed(seed, _FIXED))
            self._fixed = indices[torch.randperm(len(indices), generator=g)]
        self._epoch = 0
        self._position = 0
        self._epoch_order: torch.Tensor | None = None  # this epoch's sample order, once drawn
        self._epoch_rng_state = self._shuffle_rng.get_state()

    # ------------------------------------------------------------------ sizes and position

    def __len__(self) -> int:
        """Batches per epoch."""
        n = len(self.indices)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    @property
    def num_samples(self) -> int:
        """Samples per epoch before ``drop_last``."""
        return len(self.indices)

    @property
    def epoch(self) -> int:
        """Index of the epoch the next batch belongs to."""
        return self._epoch + (self._position >= len(self))

    @property
    def position(self) -> int:
        """Index of the next batch within its epoch."""
        return 0 if self._position >= len(self) else self._position

    # ------------------------------------------------------------------ iteration

    def _order(self) -> torch.Tensor:
        """This epoch's sample order (drawn on first use, so resume can redraw it)."""
        if self._epoch_order is None:
            if self.order == "shuffle":
                self._epoch_rng_state = self._shuffle_rng.get_state()
                perm = torch.randperm(len(self.indices), generator=self._shuffle_rng)
                self._epoch_order = self.indices[perm]
            elif self.order == "fixed":
                self._epoch_order = self._fixed
            else:
                self._epoch_order = self.indices
        return self._epoch_order

    def _roll_over(self) -> None:
        if self._position >= len(self):
            self._epoch += 1
            self._position = 0
            self._epoch_order = None

    def _batch(self, order: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = order[k * self.batch_size:(k + 1) * self.batch_size]
        with intra_op_threads(self.threads):
            if idx.device != self.images.device:
                idx = idx.to(self.images.device)
            x = self.images.index_select(0, idx).to(self.device, non_blocking=True)
            y = self.labels.index_select(0, idx).to(self.device, non_blocking=True)
            if self.transform is not None:
                x = self.transform(x, self._augment_rng)
        return x, y

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The remaining batches of the current epoch."""
        self._roll_over()
        order = self._order()
        while self._position < len(self):
            batch = self._batch(order, self._position)
            self._position += 1
            yield batch
        self._roll_over()

    def take(self, num_batches: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Exactly ``num_batches`` batches, continuing into new epochs as needed."""
        if isinstance(num_batches, bool) or not isinstance(num_batches, int) or num_batches < 0:
            raise SpeedyNASError(f"num_batches must be a non-negative integer, got "
                                 f"{num_batches!r}")
        left = num_batches
        while left > 0:
            self._roll_over()
            order = self._order()
            while left > 0 and self._position < len(self):
                batch = self._batch(order, self._position)
                self._position += 1
                left -= 1
                yield batch

    # ------------------------------------------------------------------ resume

    def state_dict(self) -> dict[str, Any]:
        """Epoch, position and generator states; plain ints, strings and uint8 tensors."""
        finished = self._position >= len(self)
        if finished or self._epoch_order is None:
            shuffle_state = self._shuffle_rng.get_state()  # the next epoch's draw starts here
        else:
            shuffle_state = self._epoch_rng_state
        return {
            "epoch": self.epoch, "position": self.position,
            "shuffle_rng": shuffle_state.clone(), "augment_rng": self._augment_rng.get_state(),
            "seed": self.seed, "order": self.order, "batch_size": self.batch_size,
            "drop_last": self.drop_last, "num_samples": self.num_samples,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state``, which must come from an iterator built the same way."""
        expected = {"seed": self.seed, "order": self.order, "batch_size": self.batch_size,
                    "drop_last": self.drop_last, "num_samples": self.num_samples}
        missing = [k for k in ("epoch", "position", "shuffle_rng", "augment_rng", *expected)
                   if k not in state]
        if missing:
            raise SpeedyNASError(f"batch iterator state lacks {', '.join(missing)}")
        diff = [f"{k}={state[k]!r} (this iterator: {v!r})" for k, v in expected.items()
                if state[k] != v]
        if diff:
            raise SpeedyNASError(f"batch iterator state does not match: {'; '.join(diff)}")
        epoch, position = int(state["epoch"]), int(state["position"])
        if epoch < 0 or not 0 <= position < len(self):
            raise SpeedyNASError(f"batch iterator state has epoch {epoch}, position {position}; "
                                 f"valid positions are 0..{len(self) - 1}")
        self._shuffle_rng.set_state(state["shuffle_rng"].cpu())
        self._augment_rng.set_state(state["augment_rng"].cpu())
        self._epoch, self._position = epoch, position
        self._epoch_order = None
        self._epoch_rng_state = self._shuffle_rng.get_state()
