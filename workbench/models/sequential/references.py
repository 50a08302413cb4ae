"""References for next-item results: training popularity, and the synthetic catalogue's next-item oracle."""
from __future__ import annotations

import torch

from ...data.sequences import SequenceData
from ..base import register
from .base import NextItemRecommender


@register("sequence-popularity")
class SequencePopularity(NextItemRecommender):
    """Every history gets the training popularity of each item (ties: the lower id first)."""

    def fit(self, data: SequenceData, **options) -> "SequencePopularity":
        self.n_items_ = data.n_items
        self.popularity_ = torch.as_tensor(data.item_degree(), dtype=torch.float32)
        return self

    def score(self, histories) -> torch.Tensor:
        return self.popularity_.expand(len(histories), -1).clone()
