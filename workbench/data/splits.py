"""Train/valid/test splits. Each function returns an ``x_label`` array (0/1/2), one entry per interaction row,
to pass to :meth:`RecDataset.with_split`. All are vectorized and deterministic under a seed.

Rules (stated here once, used by every notebook):

* :func:`random_split` (MMRec style, MoToRec's 8:1:1): each user's interactions are shuffled with the seed;
  a user with ``n`` interactions gets ``n_test = round(test * n)`` and ``n_valid = round(valid * n)`` held-out
  rows, each at least 1 when ``n >= 3``, and always keeps at least one training row; users with fewer than 3
  interactions are all train. Optionally ``holdout_items`` (an item-cold-start protocol, as in CLCRec/ALDI):
  every interaction with those items goes to valid or test (half each, at random) before the per-user rule
  splits the rest, so they are zero-shot items; a user left with no training row keeps those rows in train.
* :func:`leave_one_out` (CEMG, TIGER, LETTER): by timestamp (ties by row order), the last interaction is test,
  the second-last valid, the rest train; users with fewer than 3 interactions are all train.
* :func:`temporal_split` (MMQ's CTR protocol): all interactions sorted by timestamp (ties by row order); the
  last ``test`` fraction is test; the last ``valid`` fraction of what remains is validation (for model
  selection, which the paper leaves unstated), the rest train.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .dataset import TEST, TRAIN, VALID, DataError


def _columns(interactions: pd.DataFrame, names: tuple[str, ...], split: str) -> list[np.ndarray]:
    """The named columns as arrays; a clear error for a table that is empty or lacks one."""
    if not isinstance(interactions, pd.DataFrame):
        raise TypeError(f"{split} expects an interaction table (pandas DataFrame), got {type(interactions).__name__}")
    missing = [c for c in names if c not in interactions.columns]
    if missing:
        raise DataError(f"{split}: the interaction table lacks column(s) {missing}; found {list(interactions.columns)}")
    if interactions.empty:
        raise DataError(f"{split}: the interaction table is empty; nothing to split")
    return [interactions[c].to_numpy() for c in names]


def _rank_within_user(users: np.ndarray, order_key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position of each row inside its user's group when sorted by ``order_key``; and the group sizes."""
    order = np.lexsort((np.arange(len(users)), order_key, users))
    sorted_users = users[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_users)) + 1]
    sizes = np.diff(np.r_[starts, len(users)])
    pos_sorted = np.arange(len(users)) - np.repeat(starts, sizes)
    pos = np.empty(len(users), dtype=np.int64)
    pos[order] = pos_sorted
    size = np.empty(len(users), dtype=np.int64)
    size[order] = np.repeat(sizes, sizes)
    return pos, size


def random_split(interactions: pd.DataFrame, valid: float = 0.1, test: float = 0.1, seed: int = 0,
                 holdout_items: np.ndarray | None = None) -> np.ndarray:
    """Per-user random split (see module doc). ``holdout_items``: boolean item mask or item ids whose
    interactions are all held out (zero-shot items). Returns ``x_label`` ``(n_interactions,)``."""
    if not (0 <= valid < 1 and 0 <= test < 1 and valid + test < 1):
        raise ValueError(f"valid and test must be fractions with valid + test < 1, got {valid}, {test}")
    users, item_ids = _columns(interactions, ("user_id", "item_id"), "random_split")
    rng = np.random.default_rng(seed)
    key = rng.random(len(users))
    held = np.zeros(len(users), dtype=bool)
    if holdout_items is not None:
        held = _item_membership(item_ids, holdout_items)
    labels = np.full(len(users), TRAIN, dtype=np.int64)
    labels[~held] = _per_user_labels(users[~held], key[~held], valid, test)
    labels[held] = np.where(rng.random(int(held.sum())) < 0.5, VALID, TEST)
    orphan = held & (np.bincount(users[labels == TRAIN], minlength=users.max() + 1)[users] == 0)
    labels[orphan] = TRAIN
    return labels


def _item_membership(item_ids: np.ndarray, items: np.ndarray) -> np.ndarray:
    items = np.asarray(items)
    if items.dtype == bool:
        if item_ids.max(initial=-1) >= len(items):
            raise ValueError(f"holdout mask has {len(items)} entries but item ids reach {item_ids.max()}")
        return items[item_ids]
    return np.isin(item_ids, items)


def _per_user_labels(users: np.ndarray, key: np.ndarray, valid: float, test: float) -> np.ndarray:
    pos, size = _rank_within_user(users, key)
    eligible = size >= 3
    n_test = np.where(eligible, np.maximum(np.rint(test * size), 1 if test > 0 else 0), 0)
    n_valid = np.where(eligible, np.maximum(np.rint(valid * size), 1 if valid > 0 else 0), 0)
    # keep at least one training row
    over = np.maximum(n_test + n_valid - (size - 1), 0)
    n_valid = n_valid - np.minimum(over, n_valid)
    labels = np.full(len(users), TRAIN, dtype=np.int64)
    labels[pos < n_test] = TEST
    labels[(pos >= n_test) & (pos < n_test + n_valid)] = VALID
    return labels


def leave_one_out(interactions: pd.DataFrame) -> np.ndarray:
    """Chronological leave-one-out per user (see module doc). Returns ``x_label``."""
    users, timestamps = _columns(interactions, ("user_id", "timestamp"), "leave_one_out")
    pos, size = _rank_within_user(users, timestamps)
    labels = np.full(len(users), TRAIN, dtype=np.int64)
    eligible = size >= 3
    labels[eligible & (pos == size - 1)] = TEST
    labels[eligible & (pos == size - 2)] = VALID
    return labels


def temporal_split(interactions: pd.DataFrame, test: float = 0.1, valid: float = 0.1) -> np.ndarray:
    """Global chronological split (MMQ: first 90% train, last 10% test). Returns ``x_label``.

    ``valid`` is the fraction of the *non-test* part, taken from its end, used for model selection.
    """
    if not (0 < test < 1 and 0 <= valid < 1):
        raise ValueError(f"test must be in (0, 1) and valid in [0, 1), got {test}, {valid}")
    (timestamps,) = _columns(interactions, ("timestamp",), "temporal_split")
    n = len(timestamps)
    order = np.lexsort((np.arange(n), timestamps))
    n_test = int(round(test * n))
    n_valid = int(round(valid * (n - n_test)))
    labels_sorted = np.full(n, TRAIN, dtype=np.int64)
    labels_sorted[n - n_test:] = TEST
    labels_sorted[n - n_test - n_valid:n - n_test] = VALID
    labels = np.empty(n, dtype=np.int64)
    labels[order] = labels_sorted
    return labels
