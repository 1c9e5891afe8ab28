"""Data order for exact resume: what a training run sees at an iteration depends only on where it is.

The data seen at an iteration is a pure function of ``(run.seed, epoch, position)``: the sample order is
``DistributedSampler``'s permutation seeded by ``seed + epoch`` (also with one process), and every
sample's augmentation draws from a torch generator seeded by ``(seed, epoch, dataset index)``
(``SeededSamples``), whatever the worker count. A resumed run skips the samples of the iterations
already done in the current epoch (``SkipSampler``). ``engine.py`` builds its training loader from these.
"""
from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """The augmentation seed of dataset item ``index`` in ``epoch`` (well mixed by ``SeedSequence``)."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1, np.uint64)[0] >> 1)


class SeededSamples(Dataset):
    """Wrap a dataset so that item ``i`` of epoch ``e`` is transformed under torch seed
    ``sample_seed(seed, e, i)``; the caller's global RNG state is restored afterwards.

    The transforms draw from torch's global generator (``data/transforms.py``), so this makes the
    augmentation independent of the worker count and of what else consumed random numbers.
    """

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset = dataset
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        state = torch.get_rng_state()
        # the CPU generator only: torch.manual_seed would also reseed every CUDA generator
        torch.random.default_generator.manual_seed(sample_seed(self.seed, self.epoch, index))
        try:
            return self.dataset[index]
        finally:
            torch.set_rng_state(state)


class SkipSampler(Sampler[int]):
    """Yield the indices of ``sampler`` after its first ``skip`` (resume inside an epoch)."""

    def __init__(self, sampler: Sampler[int], skip: int) -> None:
        self.sampler = sampler
        self.skip = skip

    def __iter__(self) -> Iterator[int]:
        return islice(iter(self.sampler), self.skip, None)

    def __len__(self) -> int:
        return max(0, len(self.sampler) - self.skip)
