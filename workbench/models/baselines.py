"""The two reference baselines: popularity and random."""
from __future__ import annotations

import torch

from ..data.dataset import TRAIN, RecDataset
from .base import Recommender, register


@register("popularity")
class PopularityRecommender(Recommender):
    """Scores every item by its number of training interactions (the same ranking for every user)."""

    def fit(self, dataset: RecDataset) -> "PopularityRecommender":
        """Count each item's training interactions."""
        self.n_items_ = dataset.n_items
        self.item_popularity_ = torch.as_tensor(dataset.item_degree(TRAIN), dtype=torch.float32)
        return self

    def score(self, user_ids: torch.Tensor) -> torch.Tensor:
        pop = self.item_popularity_.to(user_ids.device)
        return pop.expand(len(user_ids), -1)


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash (xor-shift-multiply rounds) of int64 values in ``[0, 2**32)``."""
    for _ in range(2):
        x = (((x >> 16) ^ x) * 0x45D9F3B) & 0xFFFFFFFF
    return (x >> 16) ^ x


@register("random")
class RandomRecommender(Recommender):
    """Uniformly random scores, deterministic per ``(seed, user, item)`` whatever the batching."""

    _MASK = 0xFFFFFFFF

    def __init__(self, seed: int = 0):
        self.seed = seed

    def fit(self, dataset: RecDataset) -> "RandomRecommender":
        self.n_items_ = dataset.n_items
        return self

    def score(self, user_ids: torch.Tensor) -> torch.Tensor:
        items = torch.arange(self.n_items_, device=user_ids.device, dtype=torch.int64)
        u = user_ids.to(torch.int64)[:, None]
        # a 32-bit integer hash of (seed, user), then of (that, item): every user gets an order of their own (a
        # linear congruential score gave every user one cyclic item order, only rotated); products stay in int64
        key = _mix32((u * 0x9E3779B1 + self.seed * 0x7F4A7C15) & self._MASK)
        h = _mix32((key + items * 0x85EBCA77) & self._MASK)
        return h.to(torch.float64).div_(2.0 ** 32).to(torch.float32)
