"""The recommender contract, and the registry that finds a model class by name.

One fitting style for every model, from the baselines to MoToRec (scikit-learn's): the constructor stores the
configuration only; ``fit(dataset) -> self`` learns from the dataset's training split (what it learns ends in
``_``: ``history_``, ``best_epoch_``, ``n_items_``...); ``score(user_ids) -> (B, n_items)`` scores items;
``recommend`` returns a named result; ``evaluate(dataset, part="test")`` ranks all items for every user of one
split, once, after training (training never looks at the test split).

Models join the registry with ``@register("name")`` where they are defined; this module imports none of them.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import numpy as np
import torch

from ..data.dataset import RecDataset
from ..evaluation.ranking import METRICS, RankingReport, check_finite, evaluate_split, mask_seen, top_k

_REGISTRY: dict[str, type] = {}


def register(name: str) -> Callable[[type], type]:
    """Class decorator: make the model available as ``make_model(name)``."""
    def add(cls: type) -> type:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"model name {name!r} is already taken by {_REGISTRY[name].__qualname__}")
        _REGISTRY[name] = cls
        return cls
    return add


def model_classes() -> dict[str, type]:
    """Every registered model: name -> class."""
    return dict(_REGISTRY)


def make_model(name: str, config=None, **options) -> "Recommender":
    """A new, unfitted model by registry name (``"lightgcn"``, ``"motorec"``, ``"popularity"``...); ``config``
    or ``options`` set its configuration. Unknown names and options are errors that list the valid ones."""
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; expected one of {sorted(_REGISTRY)}")
    cls = _REGISTRY[name]
    return cls(**options) if config is None else cls(config, **options)


class Recommendation(NamedTuple):
    """Top-K items per user: ``item_ids`` and ``scores``, both ``(B, K)``, best first."""

    item_ids: torch.Tensor
    scores: torch.Tensor


class Recommender:
    """Base class: subclasses implement ``fit`` and ``score`` (see the module docstring)."""

    n_items_: int

    def fit(self, dataset: RecDataset, **options) -> "Recommender":
        raise NotImplementedError

    def score(self, user_ids: torch.Tensor) -> torch.Tensor:
        """Scores ``(B, n_items)`` for ``user_ids`` ``(B,)``."""
        raise NotImplementedError

    def scorer(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """The score function the evaluator calls (``score`` unless a model has a faster one)."""
        return self.score

    def recommend(self, user_ids: torch.Tensor, k: int, exclude=None) -> Recommendation:
        """Top-``k`` items for ``user_ids``; ``exclude`` is a ``(n_users, n_items)`` CSR of items to skip
        (e.g. ``dataset.matrix('train')``)."""
        user_ids = torch.as_tensor(user_ids)
        scores = self.score(user_ids).float().clone()
        check_finite(scores, user_ids.cpu().numpy(), type(self).__name__)
        if exclude is not None:
            mask_seen(scores, exclude, user_ids.cpu().numpy())
        top = top_k(scores, k)  # ties: the lower item id first, as the evaluator ranks
        return Recommendation(top, scores.gather(1, top))

    def evaluate(self, dataset: RecDataset, part: str = "test", strata: dict[str, np.ndarray] | None = None,
                 ks: Sequence[int] = (10, 20), metrics: Sequence[str] = METRICS, mask_valid: bool = False,
                 batch_size: int = 4096) -> RankingReport:
        """Full-ranking metrics on one split (``part``: ``"test"`` or ``"valid"``) with training positives
        masked (validation ones too with ``mask_valid``); ``strata`` (name -> item mask) add restricted reports."""
        return evaluate_split(dataset, self.scorer(), part, mask_valid=mask_valid, ks=ks, metrics=metrics,
                              strata=strata, batch_size=batch_size, name=type(self).__name__)
