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


@register("random")
class RandomRecommender(Recommender):
    """Uniformly random scores, deterministic per ``(seed, user, item)`` whatever the batching."""

    _PRIME = 2_147_483_647  # 2**31 - 1

    def __init__(self, seed: int = 0):
        self.seed = seed

    def fit(self, dataset: RecDataset) -> "RandomRecommender":
        self.n_items_ = dataset.n_items
        return self

    def score(self, user_ids: torch.Tensor) -> torch.Tensor:
        items = torch.arange(self.n_items_, device=user_ids.device, dtype=torch.int64)
        u = user_ids.to(torch.int64)[:, None]
        # multiplicative hash modulo a Mersenne prime; the 31-bit factors keep products inside int64
        h = (u * 1_103_515_245 + items * 12_345 + self.seed * 2_654_435_761) % self._PRIME
        h = (h * 48_271) % self._PRIME
        return h.to(torch.float32) / self._PRIME
