"""The oracle: ranks items by the synthetic generator's own choice propensities, the ceiling of every
comparison on generated data (:mod:`workbench.data.choices` says exactly what it knows and what it leaves out)."""
from __future__ import annotations

import torch

from ..data.dataset import RecDataset
from .base import Recommender, register


@register("oracle")
class OracleRecommender(Recommender):
    """Scores ``(B, n_items)`` = the generator's static choice logit of each user for each item plus the log
    share of the user's steps at which the item was released (``dataset.choice_model.scores``). It reads the
    generator's parameters, never the sampled choices, so it is not fitted on anything: ``fit`` only takes
    the choice model. Seen items are masked by the evaluator as for any model."""

    def fit(self, dataset: RecDataset) -> "OracleRecommender":
        """Take ``dataset.choice_model``; real data has none (nobody knows its users' true propensities)."""
        if dataset.choice_model is None:
            raise ValueError(f"{dataset.name}: no choice model, so no oracle: only generated data "
                             "(workbench.load_synthetic, make_catalogue) knows its users' true choice propensities")
        self.choice_model_ = dataset.choice_model
        self.n_items_ = dataset.n_items
        return self

    def score(self, user_ids: torch.Tensor) -> torch.Tensor:
        scores = self.choice_model_.scores(user_ids.cpu().numpy())
        return torch.from_numpy(scores).to(user_ids.device)
