"""The next-item contract, shared by the sequence rankers (SASRec, GRU4Rec, the references) and the generators.

* ``fit(data: SequenceData) -> self`` trains on the training sequences (the engine, early stopping on
  validation NDCG@10); ``score(histories) -> (B, n_items)`` scores every item after each history (``(B, L)``
  item ids, left padded with ``PAD``); ``recommend(histories, k)`` returns the top ``k`` items;
  ``evaluate(data, part="test")`` gives :class:`~workbench.evaluation.next_item.NextItemReport` (leave-one-out,
  the whole catalogue, cold targets as a stratum).
* :class:`SequenceRanker` is the trainable base of the rankers: item embeddings shared between input and output
  (index 0 is the padding item), every position of a training sequence predicts the next item (or only the last,
  ``positions="last"``), with the full-softmax cross-entropy or BCE against one sampled negative per position.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...core.config import resolve_config
from ...core.runtime import seeded
from ...core.storage import content_hash
from ...data.sequences import PAD, SequenceData
from ...evaluation.next_item import KS, NextItemReport, evaluate_next_item
from ...evaluation.ranking import check_finite, top_k
from ...training.engine import Batch, StepOutput, Trainable, TrainConfig, batch_slices
from ..base import Recommendation

LOSSES = ("ce", "bce")
POSITIONS = ("all", "last")


class NextItemRecommender:
    """The next-item contract (module doc). Subclasses implement ``fit`` and ``score``."""

    n_items_: int
    eval_batch: ClassVar[int] = 1024

    def fit(self, data: SequenceData, **options) -> "NextItemRecommender":
        raise NotImplementedError

    def score(self, histories) -> torch.Tensor:
        """Scores ``(B, n_items)`` of every item after each history ``(B, L)``."""
        raise NotImplementedError

    def recommend(self, histories, k: int) -> Recommendation:
        """The top ``k`` items after each history (ties: the lower item id first)."""
        scores = self.score(histories).float()
        check_finite(scores, np.arange(len(scores)), type(self).__name__)
        top = top_k(scores, k)
        return Recommendation(top, scores.gather(1, top))

    def evaluate(self, data: SequenceData, part: str = "test", ks=KS, strata: dict | None = None) -> NextItemReport:
        """Leave-one-out metrics on ``part``; ``strata`` default to ``{"cold": data.cold_items()}``."""
        strata = {"cold": data.cold_items()} if strata is None else strata
        return evaluate_next_item(lambda h, k: self.recommend(h, k).item_ids, data.histories(part),
                                  data.targets(part), ks=ks, strata=strata, batch_size=self.eval_batch)


@dataclass
class _TrainData:
    """What a ranker's batches index: the source data, each user's last ``max_len + 1`` training items as
    embedding indices ``(U, L + 1)`` (0 = padding), and the sorted ``user * n_items + item`` keys of training
    pairs (to draw negatives outside a user's history)."""

    source: SequenceData
    sequences: torch.Tensor
    users: np.ndarray
    pair_keys: np.ndarray


def sample_negatives(users: np.ndarray, shape: tuple[int, int], n_items: int, pair_keys: np.ndarray,
                     rng: np.random.Generator, max_rounds: int = 100) -> np.ndarray:
    """Uniform items ``shape`` (one row per ``users`` entry) outside each user's training items (``pair_keys``:
    sorted ``user * n_items + item``), by vectorised rejection; SASRec's sampler."""
    neg = rng.integers(n_items, size=shape)
    for _ in range(max_rounds):
        keys = users[:, None] * n_items + neg
        pos = np.searchsorted(pair_keys, keys)
        bad = pair_keys[np.minimum(pos, len(pair_keys) - 1)] == keys
        if not bad.any():
            return neg
        neg[bad] = rng.integers(n_items, size=int(bad.sum()))
    raise ValueError("cannot draw negatives: some user has interacted with almost every item")


class SequenceRanker(nn.Module, NextItemRecommender, Trainable):
    """Trainable base of SASRec and GRU4Rec (module doc). Subclasses set ``config_class`` (with ``dim``,
    ``loss`` and ``positions`` fields) and implement ``_build`` and ``hidden_states``."""

    config_class: ClassVar[type] = object
    # SASRec's protocol with early stopping on validation NDCG@10
    train_defaults = TrainConfig(epochs=200, batch_size=256, lr=1e-3, metric="ndcg@10", patience=10)
    validation_metrics = ("recall@10", "ndcg@10", "recall@20", "ndcg@20")

    def __init__(self, config=None, **options):
        nn.Module.__init__(self)
        self.config = resolve_config(self.config_class, config, options)
        if self.config.loss not in LOSSES or self.config.positions not in POSITIONS:
            raise ValueError(f"{type(self).__name__}: loss must be one of {LOSSES} and positions one of "
                             f"{POSITIONS}, got {self.config.loss!r}, {self.config.positions!r}")
        self.n_items_: int | None = None

    # -- building and training -----------------------------------------------------------------------------
    def build(self, data: SequenceData, seed: int = 0) -> "SequenceRanker":
        """Create the parameters for ``data`` (``n_items``, ``max_len``) from ``seed``; once."""
        if self.n_items_ is not None:
            if (self.n_items_, self.max_len_) != (data.n_items, data.max_len):
                raise ValueError(f"this {type(self).__name__} was built for {self.n_items_} items and histories of "
                                 f"{self.max_len_}, not {data.n_items} and {data.max_len}")
            return self
        self.n_items_, self.max_len_ = data.n_items, data.max_len
        with seeded(seed):
            self.item_emb = nn.Embedding(data.n_items + 1, self.config.dim, padding_idx=0)
            nn.init.normal_(self.item_emb.weight, std=self.config.dim ** -0.5)
            with torch.no_grad():
                self.item_emb.weight[0].zero_()
            self._build()
        return self

    def _build(self) -> None:
        raise NotImplementedError

    def fit(self, data: SequenceData, config: TrainConfig | None = None, callback=None, **options):
        """Build (if needed) and train with the engine; ``options`` are TrainConfig fields. Keeps ``history_``,
        ``best_epoch_`` and ``valid_``; ends in eval mode with the best epoch's weights."""
        self.build(data, seed=self.train_config(config, **options).seed)
        self._run_engine(data, config, callback, options)
        return self

    def fit_data(self, data: SequenceData, device: torch.device) -> _TrainData:
        if not isinstance(data, SequenceData):
            raise TypeError(f"{type(self).__name__}.fit expects SequenceData (workbench.sequence_split), got "
                            f"{type(data).__name__}")
        self.build(data)
        seqs = data.training_sequences() + 1                               # (U, L + 1), 0 = padding
        users = np.flatnonzero((seqs[:, -2:] > 0).all(1))                  # at least one (input, target) pair
        if not len(users):
            raise ValueError(f"{data.name}: no user has two training items; nothing to learn from")
        owners = np.repeat(np.arange(data.n_users), data.train_lengths)
        keys = np.unique(owners * data.n_items + data.train_items)
        return _TrainData(data, torch.as_tensor(seqs, device=device), users, keys)

    def data_fingerprint(self, data: _TrainData) -> str:
        src = data.source
        return content_hash({"items": content_hash(src.train_items), "offsets": content_hash(src.train_offsets),
                             "valid": content_hash(src.valid_items), "n_items": src.n_items, "max_len": src.max_len})

    def epoch_batches(self, data: _TrainData, batch_size: int, rng: np.random.Generator) -> list[Batch]:
        order = rng.permutation(data.users)
        rows = {"users": torch.as_tensor(order, device=data.sequences.device)}
        if self.config.loss == "bce":
            neg = sample_negatives(order, (len(order), data.sequences.shape[1] - 1), self.n_items_, data.pair_keys, rng)
            rows["neg"] = torch.as_tensor(neg + 1, device=data.sequences.device)
        rows["seq"] = data.sequences[rows["users"]]
        return [Batch({k: v[s] for k, v in rows.items()}) for s in batch_slices(len(order), batch_size)]

    def training_step(self, batch: Batch) -> StepOutput:
        seq = batch.rows["seq"]
        inputs, targets = seq[:, :-1], seq[:, 1:]                          # (B, L) each
        mask = targets > 0
        if self.config.positions == "last":
            mask = mask & (torch.arange(mask.shape[1], device=mask.device) == mask.shape[1] - 1)
        hidden = self.hidden_states(inputs)[mask]                          # (P, d)
        pos = targets[mask]
        if self.config.loss == "ce":  # full softmax over the catalogue (padding row excluded)
            logits = hidden @ self.item_emb.weight[1:].T                   # (P, I)
            return StepOutput({"ce": F.cross_entropy(logits, pos - 1)})
        neg = batch.rows["neg"][mask]
        pos_logit = (hidden * self.item_emb(pos)).sum(-1)
        neg_logit = (hidden * self.item_emb(neg)).sum(-1)
        # SASRec: binary cross-entropy, the next item against one sampled negative per position
        return StepOutput({"bce": F.softplus(-pos_logit).mean() + F.softplus(neg_logit).mean()})

    def validate(self, data: _TrainData) -> dict[str, float]:
        return self.evaluate(data.source, "valid", ks=(10, 20), strata={}).metrics

    # -- the model -------------------------------------------------------------------------------------------
    def hidden_states(self, inputs: torch.Tensor) -> torch.Tensor:
        """``(B, L, d)`` the state at every position of ``inputs`` ``(B, L)`` (embedding indices, 0 = padding),
        each seeing only the positions up to itself."""
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        return self.item_emb.weight.device

    def _inputs(self, histories) -> torch.Tensor:
        h = torch.as_tensor(np.asarray(histories), device=self.device)
        if h.ndim != 2:
            raise ValueError(f"histories must be (B, L) item ids, got shape {tuple(h.shape)}")
        if h.numel() and (h.max() >= self.n_items_ or h.min() < PAD):
            raise ValueError(f"history item ids must be in [0, {self.n_items_}) or PAD ({PAD}), got "
                             f"{int(h.min())}..{int(h.max())}")
        h = h[:, -self.max_len_:] + 1
        if h.shape[1] < self.max_len_:
            h = F.pad(h, (self.max_len_ - h.shape[1], 0))
        return h

    @torch.no_grad()
    def score(self, histories) -> torch.Tensor:
        if self.n_items_ is None:
            raise RuntimeError(f"this {type(self).__name__} has not been fitted; call fit(data) first")
        was = self.training
        self.eval()
        last = self.hidden_states(self._inputs(histories))[:, -1]          # (B, d)
        self.train(was)
        return last @ self.item_emb.weight[1:].T

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
