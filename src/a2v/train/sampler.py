"""Batch order as a pure function of (seed, epoch): the same on every rank, after a resume, on 1 or N GPUs.

Hand-written (one small class) instead of accelerate's sampler wrapping so that the
data position of a checkpoint is just ``(epoch, batch_in_epoch)`` and the global batch
does not depend on the number of processes.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from a2v.errors import ConfigError, InputError


class EpochBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Yields this rank's share of each global batch of dataset indices, for one epoch.

    Global batch ``b`` of epoch ``e`` is ``perm(seed, e)[b * B:(b + 1) * B]`` with
    ``B = batch_size``; rank ``r`` of ``W`` takes items ``[r * B / W, (r + 1) * B / W)``
    of it. The last ``n_items % B`` items of each epoch's order are not used (a
    different set each epoch when shuffling; :attr:`dropped_per_epoch` counts them).
    ``overfit_batches = N > 0`` repeats the first N batches of epoch 0 in every epoch.
    """

    def __init__(self, n_items: int, batch_size: int, seed: int = 0, shuffle: bool = True,
                 rank: int = 0, world_size: int = 1, overfit_batches: int = 0) -> None:
        if batch_size % world_size:
            raise ConfigError(f"train.batch_size={batch_size} must be divisible by the {world_size} processes")
        if n_items < batch_size:
            raise InputError(f"the training set has {n_items} items, fewer than one batch "
                             f"(train.batch_size={batch_size}): add data or lower the batch size")
        self.n_items, self.batch_size, self.seed, self.shuffle = n_items, batch_size, seed, shuffle
        self.rank, self.world_size = rank, world_size
        n_full = n_items // batch_size
        self.batches_per_epoch = min(n_full, overfit_batches) if overfit_batches > 0 else n_full
        self.overfit = overfit_batches > 0
        self.dropped_per_epoch = 0 if self.overfit else n_items - n_full * batch_size
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """Select the epoch and how many of its batches were already consumed (for resume)."""
        self.epoch, self.skip = epoch, skip

    def order(self, epoch: int) -> list[int]:
        """Dataset indices of ``epoch`` in visiting order (length n_items)."""
        e = 0 if self.overfit else epoch
        if not self.shuffle:
            return list(range(self.n_items))
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + e)
        return torch.randperm(self.n_items, generator=g).tolist()

    def global_batches(self, epoch: int) -> list[list[int]]:
        order = self.order(epoch)
        B = self.batch_size
        return [order[b * B:(b + 1) * B] for b in range(self.batches_per_epoch)]

    def __iter__(self) -> Iterator[list[int]]:
        per = self.batch_size // self.world_size
        for batch in self.global_batches(self.epoch)[self.skip:]:
            yield batch[self.rank * per:(self.rank + 1) * per]

    def __len__(self) -> int:
        return self.batches_per_epoch - self.skip
