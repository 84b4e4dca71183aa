"""A batch sampler whose order is a pure function of (seed, epoch), so training resumes exactly."""

from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import Sampler


class ResumableBatchSampler(Sampler[list[int]]):
    """Per-epoch random permutation of ``range(n)`` from ``(seed, epoch)``, cut into global batches
    of ``batch_size * num_replicas``; replica ``rank`` takes its ``batch_size`` slice of each.

    ``set_position(epoch, batch)`` makes the next iteration start at that batch of that epoch (a
    resume); later iterations start at batch 0. Incomplete last batches are dropped, so every
    replica sees the same number of equally sized batches.
    """

    def __init__(self, n: int, batch_size: int, *, seed: int = 0, shuffle: bool = True,
                 num_replicas: int = 1, rank: int = 0) -> None:
        if n < batch_size * num_replicas:
            raise ValueError(f"data set of {n} items is smaller than one global batch "
                             f"({batch_size} x {num_replicas} processes); lower --batch-size")
        self.n, self.batch_size, self.seed, self.shuffle = n, batch_size, seed, shuffle
        self.num_replicas, self.rank = num_replicas, rank
        self.epoch, self.start_batch = 0, 0

    @property
    def batches_per_epoch(self) -> int:
        return self.n // (self.batch_size * self.num_replicas)

    def set_position(self, epoch: int, batch: int = 0) -> None:
        self.epoch, self.start_batch = int(epoch), int(batch)

    def order(self, epoch: int) -> list[int]:
        if not self.shuffle:
            return list(range(self.n))
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.n, generator=g).tolist()

    def __iter__(self) -> Iterator[list[int]]:
        order = self.order(self.epoch)
        glob = self.batch_size * self.num_replicas
        start, self.start_batch = self.start_batch, 0
        for b in range(start, self.batches_per_epoch):
            chunk = order[b * glob:(b + 1) * glob]
            yield chunk[self.rank * self.batch_size:(self.rank + 1) * self.batch_size]

    def __len__(self) -> int:
        return self.batches_per_epoch
