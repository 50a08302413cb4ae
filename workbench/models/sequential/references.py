"""References for next-item results: training popularity, and the synthetic catalogue's next-item oracle."""
from __future__ import annotations

import numpy as np
import torch

from ...data.dataset import RecDataset
from ...data.sequences import SequenceData, ordered_interactions
from ...evaluation.next_item import KS, NextItemReport, evaluate_next_item
from ...evaluation.ranking import top_k
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


@register("next-item-oracle")
class NextItemOracle(NextItemRecommender):
    """The synthetic catalogue's next-item ceiling: each user's held-out choice scored by the exact logits the
    generator drew it from (:meth:`~workbench.data.choices.ChoiceModel.next_item_scores`: tastes, exposure, the
    sequence bonus after the previous item, what was released by then, nothing chosen twice). It needs to know
    the user and the step, which a history alone does not tell, so it answers :meth:`evaluate` (and
    :meth:`scores_for`) rather than :meth:`score`."""

    def fit(self, data: SequenceData, dataset: RecDataset) -> "NextItemOracle":
        model = dataset.choice_model
        if model is None or model.sequence_bonus is None:
            raise ValueError(f"{dataset.name} has no choice model with a sequence bonus: the next-item oracle "
                             "exists for the synthetic catalogue only")
        if (dataset.n_users, dataset.n_items) != (data.n_users, data.n_items):
            raise ValueError("the sequence data was not split from this dataset")
        self.model_, self.n_items_ = model, data.n_items
        users, _, times, _ = ordered_interactions(dataset)
        ends = np.cumsum(np.bincount(users, minlength=dataset.n_users))
        self.times_ = {"test": times[np.maximum(ends - 1, 0)], "valid": times[np.maximum(ends - 2, 0)]}
        return self

    def scores_for(self, data: SequenceData, part: str, users: np.ndarray, seen: np.ndarray | None = None
                   ) -> torch.Tensor:
        """Exact logits ``(B, n_items)`` of ``users``' ``part`` choice; ``seen``: their whole histories (the rows
        of :meth:`full_histories` for these users), computed here when not given."""
        if seen is None:
            seen = self.full_histories(data, part)[np.searchsorted(data.users(part), users)]
        return torch.as_tensor(self.model_.next_item_scores(users, seen[:, -1], self.times_[part][users], seen))

    @staticmethod
    def full_histories(data: SequenceData, part: str) -> np.ndarray:
        """Every evaluated user's whole history before its ``part`` target (not capped), left padded."""
        return data.histories(part, max_len=int(data.train_lengths.max()) + 1)

    def score(self, histories) -> torch.Tensor:
        raise TypeError("NextItemOracle scores users, not histories: use evaluate(data, part) or scores_for")

    def evaluate(self, data: SequenceData, part: str = "test", ks=KS, strata: dict | None = None) -> NextItemReport:
        strata = {"cold": data.cold_items()} if strata is None else strata
        # the evaluator passes each batch's rows to `recommend`: here the rows are (user id, row) pairs
        users = data.users(part)
        seen = self.full_histories(data, part)
        rows = np.stack([users, np.arange(len(users))], 1)
        return evaluate_next_item(lambda r, k: top_k(self.scores_for(data, part, r[:, 0], seen[r[:, 1]]), k), rows,
                                  data.targets(part), ks=ks, strata=strata, batch_size=512)
