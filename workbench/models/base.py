"""The recommender contract.

Every model, from these baselines to MoToRec, follows one contract: ``fit(dataset) -> self`` learns from the
training split only; ``score(user_ids) -> (B, n_items)`` float tensor; ``recommend`` returns a named result.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from ..data.dataset import RecDataset
from ..evaluation.ranking import mask_seen


class Recommendation(NamedTuple):
    """Top-K items per user: ``item_ids`` and ``scores``, both ``(B, K)``, best first."""

    item_ids: torch.Tensor
    scores: torch.Tensor


class Recommender:
    """Base class: subclasses implement ``fit`` and ``score``."""

    n_items_: int

    def fit(self, dataset: RecDataset) -> "Recommender":
        raise NotImplementedError

    def score(self, user_ids: torch.Tensor) -> torch.Tensor:
        """Scores ``(B, n_items)`` for ``user_ids`` ``(B,)``."""
        raise NotImplementedError

    def recommend(self, user_ids: torch.Tensor, k: int, exclude=None) -> Recommendation:
        """Top-``k`` items for ``user_ids``; ``exclude`` is a ``(n_users, n_items)`` CSR of items to skip
        (e.g. ``dataset.matrix('train')``)."""
        user_ids = torch.as_tensor(user_ids)
        scores = self.score(user_ids).float().clone()
        if exclude is not None:
            mask_seen(scores, exclude, user_ids.cpu().numpy())
        top = scores.topk(k, dim=1)
        return Recommendation(top.indices, top.values)
