"""Next-item data for the sequential and generative recommenders (CEMG section 4.1, TIGER, LETTER).

:func:`sequence_split` turns any :class:`~workbench.data.dataset.RecDataset` with timestamps (the synthetic
catalogue, a sequence file such as ``Beauty.txt``, a ``.inter`` file) into a :class:`SequenceData`:

* **Order.** Each user's interactions are sorted by timestamp; interactions with the same timestamp keep the
  order of their rows in the interaction table (the file's order). This is the one tie rule of the project
  (:func:`workbench.data.splits.leave_one_out` uses it too). :func:`tie_report` says how often it decides
  anything: ties within a user, and users whose validation and test items share a timestamp or a day (a public
  analysis of Amazon Beauty finds about 43% of users with both on the same day, which makes the order of the
  two, and so the sequential metrics, partly arbitrary). A sequence file carries positions, not times
  (``time_unit="position"``): there the ties cannot be checked, and the report says so.
* **Leave-one-out.** The last item is the test target, the second to last the validation target, the rest the
  training sequence; a user with fewer than 3 interactions keeps them all for training and is not evaluated.
* **Histories** are the last ``max_len`` items before the target (20 by default, as TIGER and LETTER), left
  padded with :data:`PAD` (``-1``). The validation history is the training sequence; the test history is the
  training sequence plus the validation item (the model never sees a user's test target as an input).
* **Training examples** (:meth:`SequenceData.examples`): every prefix of every training sequence predicts its
  next item (``"prefix"``, TIGER's and LETTER's sliding windows), or only the last one (``"last"``).
* **Cold targets**: items with at most ``cold_max`` (5) training interactions (CEMG Table 3).

Everything is vectorised: no Python loop over users or interactions.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .dataset import TEST, TRAIN, VALID, RecDataset
from .splits import _columns

PAD = -1                        # the padding item of histories
_DAY = 86400
PARTS = ("valid", "test")


@dataclass(frozen=True)
class SequenceData:
    """Leave-one-out next-item data (module doc). ``U`` users, ``I`` items.

    Attributes:
        name: the source dataset's name.
        n_items: item id range.
        train_items: ``(N,)`` every user's training items in time order, user after user.
        train_offsets: ``(U + 1,)`` user ``u``'s training items are ``train_items[offsets[u]:offsets[u + 1]]``.
        valid_items, test_items: ``(U,)`` each user's validation and test target (``PAD`` for a user with fewer
            than 3 interactions, who is not evaluated).
        max_len: the history length (items).
        cold_max: an item with at most this many training interactions is a cold target.
        ties: :func:`tie_report` of the source.
    """

    name: str
    n_items: int
    train_items: np.ndarray
    train_offsets: np.ndarray
    valid_items: np.ndarray
    test_items: np.ndarray
    max_len: int = 20
    cold_max: int = 5
    ties: dict | None = None

    @property
    def n_users(self) -> int:
        return len(self.train_offsets) - 1

    @property
    def train_lengths(self) -> np.ndarray:
        return np.diff(self.train_offsets)

    def item_degree(self) -> np.ndarray:
        """Training interactions per item ``(I,)``."""
        return np.bincount(self.train_items, minlength=self.n_items)

    def cold_items(self) -> np.ndarray:
        """``(I,)`` bool: items with at most ``cold_max`` training interactions."""
        return self.item_degree() <= self.cold_max

    def users(self, part: str) -> np.ndarray:
        """The users evaluated on ``part`` (``"valid"`` or ``"test"``): those with a target."""
        return np.flatnonzero(self.targets(part, all_users=True) != PAD)

    def targets(self, part: str, all_users: bool = False) -> np.ndarray:
        """The ``part`` target of each evaluated user ``(B,)`` (of every user with ``all_users``)."""
        if part not in PARTS:
            raise ValueError(f"part must be one of {PARTS}, got {part!r}")
        t = self.valid_items if part == "valid" else self.test_items
        return t if all_users else t[t != PAD]

    def histories(self, part: str, max_len: int | None = None) -> np.ndarray:
        """The history of each evaluated user before its ``part`` target: ``(B, max_len)`` int64, left padded
        with ``PAD``, most recent item last. Rows follow :meth:`users`."""
        users = self.users(part)
        items, offsets = self.train_items, self.train_offsets
        L = max_len or self.max_len
        if part == "test":  # the training sequence, then the validation item
            items, offsets = _append(items, offsets, self.valid_items)
        return _last_windows(items, offsets[users], offsets[users + 1], L)

    def examples(self, mode: str = "prefix", max_len: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Training examples ``(histories (N, L), targets (N,), user_ids (N,))``: every prefix of length >= 1 of
        every training sequence followed by its next item (``mode="prefix"``), or each user's last training item
        after the ones before it (``"last"``). Users with a single training item give none."""
        if mode not in ("prefix", "last"):
            raise ValueError(f"mode must be 'prefix' or 'last', got {mode!r}")
        L = max_len or self.max_len
        starts, ends = self.train_offsets[:-1], self.train_offsets[1:]
        if mode == "prefix":
            lengths = np.maximum(ends - starts - 1, 0)
            users = np.repeat(np.arange(self.n_users), lengths)
            # target positions: every training position but each user's first
            first = np.repeat(starts + 1, lengths)
            target_pos = first + np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        else:
            users = np.flatnonzero(ends - starts >= 2)
            target_pos = ends[users] - 1
        hist = _last_windows(self.train_items, self.train_offsets[users], target_pos, L)
        return hist, self.train_items[target_pos], users

    def training_sequences(self, max_len: int | None = None) -> np.ndarray:
        """Each user's last ``max_len + 1`` training items ``(U, max_len + 1)``, left padded: the input
        ``[:, :-1]`` and the shifted targets ``[:, 1:]`` of SASRec-style training (every position predicts the
        next item)."""
        L = (max_len or self.max_len) + 1
        return _last_windows(self.train_items, self.train_offsets[:-1], self.train_offsets[1:], L)

    def as_dataset(self) -> RecDataset:
        """The same split as a :class:`RecDataset` for the graph models (CEMG's LightGCN): training items
        ``TRAIN``, validation targets ``VALID``, test targets ``TEST``; timestamps are positions."""
        owners = np.repeat(np.arange(self.n_users), self.train_lengths)
        pos = np.arange(len(owners)) - np.repeat(self.train_offsets[:-1], self.train_lengths)
        users = self.users("test")
        frame = pd.DataFrame({
            "user_id": np.r_[owners, users, users], "item_id": np.r_[self.train_items, self.valid_items[users],
                                                                     self.test_items[users]],
            "rating": 1.0, "timestamp": np.r_[pos, self.train_lengths[users], self.train_lengths[users] + 1]})
        labels = np.r_[np.full(len(owners), TRAIN), np.full(len(users), VALID), np.full(len(users), TEST)]
        ds = RecDataset(self.name, frame, self.n_users, self.n_items, time_unit="position")
        return ds.with_split(labels)

    def summary(self) -> dict[str, float]:
        """Users, items, mean training length, evaluated users, cold test targets and the tie report."""
        test = self.targets("test")
        cold = self.cold_items()
        return {"users": self.n_users, "items": self.n_items, "train_interactions": len(self.train_items),
                "mean_train_length": float(self.train_lengths.mean()), "evaluated_users": len(test),
                "cold_items": int(cold.sum()), "cold_test_targets": float(cold[test].mean()) if len(test) else 0.0,
                **(self.ties or {})}


def _append(items: np.ndarray, offsets: np.ndarray, extra: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Append ``extra[u]`` (skipping ``PAD``) after each user's items: the new ``(items, offsets)``."""
    has = (extra != PAD).astype(np.int64)
    lengths = np.diff(offsets) + has
    new_offsets = np.r_[0, np.cumsum(lengths)]
    out = np.empty(new_offsets[-1], dtype=np.int64)
    old_pos = np.arange(len(items)) + np.repeat(new_offsets[:-1] - offsets[:-1], np.diff(offsets))
    out[old_pos] = items
    users = np.flatnonzero(has)
    out[new_offsets[users + 1] - 1] = extra[users]
    return out, new_offsets


def _last_windows(items: np.ndarray, starts: np.ndarray, ends: np.ndarray, L: int) -> np.ndarray:
    """Rows ``items[max(start, end - L):end]``, left padded with ``PAD`` to ``(B, L)``."""
    idx = ends[:, None] - L + np.arange(L)[None, :]                        # (B, L)
    valid = idx >= starts[:, None]
    return np.where(valid, items[np.clip(idx, 0, max(len(items) - 1, 0))] if len(items) else PAD, PAD)


def ordered_interactions(dataset: RecDataset) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Users, items and timestamps sorted by user, then timestamp, then row (the tie rule); and the row order."""
    users, items, times = _columns(dataset.interactions, ("user_id", "item_id", "timestamp"), "sequence_split")
    order = np.lexsort((np.arange(len(users)), times, users))
    return users[order], items[order], times[order], order


def tie_report(dataset: RecDataset) -> dict:
    """How much the tie rule decides (module doc): ``tied_rows`` (share of interactions sharing their user's
    timestamp with another), ``valid_test_same_time`` and ``valid_test_same_day`` (share of evaluated users whose
    last two interactions share a timestamp / a calendar day, UTC). With ``time_unit="position"`` the times are
    positions and these cannot be checked: the values are NaN and ``checkable`` is False."""
    users, _, times, _ = ordered_interactions(dataset)
    if dataset.time_unit == "position":
        nan = float("nan")
        return {"checkable": False, "tied_rows": nan, "valid_test_same_time": nan, "valid_test_same_day": nan}
    same_prev = (users[1:] == users[:-1]) & (times[1:] == times[:-1])
    tied = np.zeros(len(users), dtype=bool)
    tied[1:] |= same_prev
    tied[:-1] |= same_prev
    ends = np.r_[np.flatnonzero(np.diff(users)) + 1, len(users)]
    starts = np.r_[0, ends[:-1]]
    evaluated = ends - starts >= 3
    last, before = times[ends[evaluated] - 1], times[ends[evaluated] - 2]
    n = max(int(evaluated.sum()), 1)
    same_day = (last // _DAY == before // _DAY) if dataset.time_unit == "seconds" else np.zeros(0)
    return {"checkable": True, "tied_rows": float(tied.mean()),
            "valid_test_same_time": float((last == before).sum() / n),
            "valid_test_same_day": float(same_day.sum() / n)}


def sequence_split(dataset: RecDataset, max_len: int = 20, cold_max: int = 5) -> SequenceData:
    """Leave-one-out next-item data from ``dataset``'s interactions (module doc; any split labels it carries are
    ignored: the split is the time order). A :class:`RecDataset` holds each ``(user, item)`` pair once, so a
    user's target never reappears in its own inputs."""
    if max_len < 1 or cold_max < 0:
        raise ValueError(f"need max_len >= 1 and cold_max >= 0, got {max_len}, {cold_max}")
    users, items, _, _ = ordered_interactions(dataset)
    lengths = np.bincount(users, minlength=dataset.n_users)
    ends = np.cumsum(lengths)
    evaluated = lengths >= 3
    valid = np.full(dataset.n_users, PAD, dtype=np.int64)
    test = np.full(dataset.n_users, PAD, dtype=np.int64)
    test[evaluated] = items[ends[evaluated] - 1]
    valid[evaluated] = items[ends[evaluated] - 2]
    held = np.zeros(len(items), dtype=bool)
    held[ends[evaluated] - 1] = held[ends[evaluated] - 2] = True
    train_lengths = lengths - 2 * evaluated
    return SequenceData(name=dataset.name, n_items=dataset.n_items, train_items=items[~held].astype(np.int64),
                        train_offsets=np.r_[0, np.cumsum(train_lengths)].astype(np.int64), valid_items=valid,
                        test_items=test, max_len=max_len, cold_max=cold_max, ties=tie_report(dataset))


def sequence_table(data: SequenceData) -> pd.DataFrame:
    """:meth:`SequenceData.summary` as a one-column table (for notebooks)."""
    return pd.Series(data.summary(), name=data.name).to_frame()
