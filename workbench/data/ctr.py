"""Click-through data for the ranking models (MMQ section 4.1.1): ratings above a threshold are clicks, the rest
non-clicks; a global chronological split (:func:`~.splits.temporal_split`: the last 10% of rows are the test
window, validation is the end of the training window); user and item vocabularies fitted on the training rows
only, index 0 the out-of-vocabulary bucket, so that a user or item first seen after the training window is
looked up as "unknown", never as an id the model learned.

Strata for MMQ Fig. 3 come from training impressions: ``head`` and ``tail`` are the top and bottom 25% of the
items seen in training, ``cold`` the items never seen in training.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .dataset import TEST, TRAIN, VALID, DataError, RecDataset
from .splits import temporal_split

PARTS = {"train": TRAIN, "valid": VALID, "test": TEST}


@dataclass(frozen=True)
class CTRData:
    """Rows of each part as arrays: ``users``/``items`` raw dataset ids, ``user_index``/``item_index`` the
    vocabulary indices (0: out of vocabulary), ``labels`` 0/1, ``timestamps``."""
    name: str
    n_users: int
    n_items: int
    parts: dict[str, dict[str, np.ndarray]]
    user_vocab: np.ndarray   # (n_users,) raw user id -> index, 0 when absent from training
    item_vocab: np.ndarray   # (n_items,) raw item id -> index, 0 when absent from training
    threshold: float

    @property
    def user_vocab_size(self) -> int:
        """Indices in use, the out-of-vocabulary bucket included."""
        return int(self.user_vocab.max()) + 1

    @property
    def item_vocab_size(self) -> int:
        return int(self.item_vocab.max()) + 1

    def part(self, name: str) -> dict[str, np.ndarray]:
        if name not in self.parts:
            raise KeyError(f"unknown part {name!r}; expected one of {list(self.parts)}")
        return self.parts[name]

    def item_impressions(self) -> np.ndarray:
        """Training rows per item ``(n_items,)``."""
        return np.bincount(self.parts["train"]["items"], minlength=self.n_items)

    def item_strata(self, share: float = 0.25) -> dict[str, np.ndarray]:
        """Boolean masks over item ids: ``head`` / ``tail`` (top / bottom ``share`` of the items seen in
        training, by training impressions; ties at the cut go in), ``cold`` (no training impression)."""
        if not 0 < share <= 0.5:
            raise ValueError(f"share must be in (0, 0.5], got {share}")
        counts = self.item_impressions()
        seen = counts > 0
        hi, lo = np.quantile(counts[seen], [1 - share, share])
        return {"head": seen & (counts >= hi), "tail": seen & (counts <= lo), "cold": ~seen}

    def report(self) -> pd.DataFrame:
        """Rows, positive rate, and the shares of rows whose user or item is out of vocabulary, per part."""
        rows = {}
        for name, p in self.parts.items():
            n = len(p["labels"])
            rows[name] = {"rows": n, "positive rate": p["labels"].mean() if n else np.nan,
                          "cold-user rows": (p["user_index"] == 0).mean() if n else np.nan,
                          "cold-item rows": (p["item_index"] == 0).mean() if n else np.nan,
                          "users": len(np.unique(p["users"])), "items": len(np.unique(p["items"]))}
        return pd.DataFrame(rows).T


def _vocabulary(ids: np.ndarray, size: int) -> np.ndarray:
    vocab = np.zeros(size, dtype=np.int64)
    seen = np.unique(ids)
    vocab[seen] = np.arange(1, len(seen) + 1)
    return vocab


def ctr_data(dataset: RecDataset, test: float = 0.1, valid: float = 0.1, threshold: float = 3.0) -> CTRData:
    """:class:`CTRData` of ``dataset`` (module doc). ``dataset`` needs ``rating`` and ``timestamp`` columns; its own
    split, if any, is replaced by the chronological one."""
    inter = dataset.interactions
    missing = [c for c in ("rating", "timestamp") if c not in inter.columns]
    if missing:
        raise DataError(f"{dataset.name}: CTR data needs the column(s) {missing}; expected explicit ratings (a click "
                        f"is rating > {threshold}) and timestamps (the split is chronological)")
    if getattr(dataset, "time_unit", "seconds") == "position":
        raise DataError(f"{dataset.name}: its timestamps are positions within each user's sequence, so a global "
                        "chronological split is impossible")
    labels = temporal_split(inter, test=test, valid=valid)
    users, items = inter["user_id"].to_numpy(np.int64), inter["item_id"].to_numpy(np.int64)
    clicks = (inter["rating"].to_numpy() > threshold).astype(np.int64)
    times = inter["timestamp"].to_numpy()
    train = labels == TRAIN
    if not clicks[train].any() or clicks[train].all():
        raise DataError(f"{dataset.name}: the training window has only one class at rating > {threshold}")
    user_vocab, item_vocab = _vocabulary(users[train], dataset.n_users), _vocabulary(items[train], dataset.n_items)
    parts = {}
    for name, code in PARTS.items():
        rows = np.flatnonzero(labels == code)
        rows = rows[np.argsort(times[rows], kind="stable")]
        parts[name] = {"users": users[rows], "items": items[rows], "user_index": user_vocab[users[rows]],
                       "item_index": item_vocab[items[rows]], "labels": clicks[rows], "timestamps": times[rows]}
    return CTRData(dataset.name, dataset.n_users, dataset.n_items, parts, user_vocab, item_vocab, threshold)
