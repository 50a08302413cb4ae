"""Semantic ids: item -> code tuple, collision handling and an exact inverse map.

Two ways to make ids unique, each with a before/after report (:func:`collision_report`):

* :func:`add_dedup_level` (TIGER): append one level numbering the items that share a tuple (0, 1, 2, ...).
* :func:`reassign_last_level` (LETTER): keep the tuple prefix and move colliding items to other codes of the
  last level by balanced matching: a Sinkhorn transport plan between items and codes (every code gets an equal
  share) scores each move, and the Hungarian algorithm assigns the movers of each prefix group to free codes.

:class:`SemanticIds` holds the final tuples and maps them back to items exactly.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from .health import collision_rate, unique_fraction

LEVEL_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def collision_report(codes: np.ndarray) -> dict[str, float]:
    """Collision rate, unique-id fraction and the largest number of items sharing one tuple."""
    _, counts = np.unique(np.asarray(codes), axis=0, return_counts=True)
    return {"collision_rate": collision_rate(codes), "unique_fraction": unique_fraction(codes),
            "max_items_per_id": int(counts.max())}


def add_dedup_level(codes: np.ndarray) -> np.ndarray:
    """TIGER: ``(n, L)`` -> ``(n, L + 1)``; the new level numbers items sharing a tuple in item order."""
    codes = np.asarray(codes)
    frame = pd.DataFrame(codes)
    extra = frame.groupby(list(frame.columns), sort=False).cumcount().to_numpy()
    return np.concatenate([codes, extra[:, None]], axis=1)


def sinkhorn(cost: np.ndarray, epsilon: float = 0.3, max_iters: int = 2000, tol: float = 1e-9) -> np.ndarray:
    """Entropic optimal transport plan ``(n, K)`` between ``n`` items (mass 1/n each) and ``K`` codes (mass 1/K
    each) for ``cost`` ``(n, K)`` (``epsilon`` relative to the cost's spread); log-domain Sinkhorn iterations
    until the item marginals are within ``tol``."""
    cost = np.asarray(cost, dtype=np.float64)
    n, K = cost.shape
    log_k = -(cost - cost.min()) / (epsilon * max(cost.std(), 1e-12))
    log_a, log_b = np.full(n, -np.log(n)), np.full(K, -np.log(K))
    f, g = np.zeros(n), np.zeros(K)
    for _ in range(max_iters):
        f = log_a - _logsumexp(log_k + g[None, :], axis=1)
        g = log_b - _logsumexp(log_k + f[:, None], axis=0)
        rows = np.exp(f + _logsumexp(log_k + g[None, :], axis=1))  # item marginals after the column update
        if np.abs(rows - 1 / n).max() < tol:
            break
    return np.exp(log_k + f[:, None] + g[None, :])


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    m = x.max(axis=axis, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))).squeeze(axis)


def reassign_last_level(codes: np.ndarray, last_level_cost: np.ndarray, epsilon: float = 0.3) -> np.ndarray:
    """LETTER-style collision removal on the last level.

    Args:
        codes: ``(n, L)`` tuples.
        last_level_cost: ``(n, K)`` cost of giving each item each last-level code (e.g. the squared distance of
            its last residual to each code).
    Returns ``(n, L)`` tuples, unique whenever no prefix group holds more than ``K`` items; items that did not
    collide keep their codes, and in each collided tuple the item with the lowest cost stays.
    """
    codes = np.asarray(codes).copy()
    cost = np.asarray(last_level_cost, dtype=np.float64)
    n, K = cost.shape
    if len(codes) != n:
        raise ValueError(f"last_level_cost has {n} rows for {len(codes)} items")
    plan_cost = -np.log(sinkhorn(cost, epsilon) + 1e-300)  # balanced preference of items for codes
    frame = pd.DataFrame(codes)
    tuple_id = frame.groupby(list(frame.columns), sort=False).ngroup().to_numpy()
    prefix_id = np.zeros(n, dtype=np.int64)
    if codes.shape[1] > 1:
        prefix_id = frame.groupby(list(frame.columns[:-1]), sort=False).ngroup().to_numpy()
    own = cost[np.arange(n), codes[:, -1]]
    order = np.lexsort((own, tuple_id))  # within each tuple, the cheapest item first
    first = np.zeros(n, dtype=bool)
    first[order[np.r_[True, tuple_id[order][1:] != tuple_id[order][:-1]]]] = True
    movers = ~first
    for group in np.unique(prefix_id[movers]):  # a loop over collided prefix groups, not over items
        members = np.flatnonzero(prefix_id == group)
        move = members[movers[members]]
        free = np.setdiff1d(np.arange(K), codes[members[~movers[members]], -1])
        if len(move) > len(free):
            raise ValueError(f"{len(move) + K - len(free)} items share the prefix {codes[move[0], :-1].tolist()} but "
                             f"the last level has only K={K} codes; add a level with add_dedup_level instead")
        rows, cols = linear_sum_assignment(plan_cost[np.ix_(move, free)])
        codes[move[rows], -1] = free[cols]
    return codes


class SemanticIds:
    """Item -> code tuple ``(n_items, L)`` with an exact inverse (tuple -> item) by binary search on packed keys.

    >>> ids = SemanticIds(np.array([[1, 2], [0, 3]]))
    >>> ids.lookup(np.array([[0, 3], [1, 1]])).tolist()
    [1, -1]
    >>> ids.token_string(0)
    '<a_1><b_2>'
    """

    def __init__(self, codes: np.ndarray):
        codes = np.asarray(codes, dtype=np.int64)
        if codes.ndim != 2 or len(codes) == 0 or codes.min() < 0:
            raise ValueError(f"codes must be a non-empty (n_items, L) array of non-negative ints, got {codes.shape}")
        if collision_rate(codes) > 0:
            raise ValueError("codes collide (some items share a tuple); resolve them with add_dedup_level or "
                             "reassign_last_level first")
        self.codes_ = codes
        self.radix_ = codes.max(0) + 1
        if np.sum(np.log2(self.radix_.astype(float))) >= 62:
            raise ValueError("code tuples too long to pack into 64-bit keys")
        keys = self._pack(codes)
        self._order = np.argsort(keys)
        self._sorted_keys = keys[self._order]

    def _pack(self, codes: np.ndarray) -> np.ndarray:
        codes = np.asarray(codes, dtype=np.int64)
        key = np.zeros(len(codes), dtype=np.int64)
        for level, radix in enumerate(self.radix_):
            key = key * radix + np.minimum(codes[:, level], radix - 1)
        return key

    def lookup(self, codes: np.ndarray) -> np.ndarray:
        """Item ids ``(m,)`` of code tuples ``(m, L)``; ``-1`` where no item has that tuple."""
        codes = np.atleast_2d(np.asarray(codes, dtype=np.int64))
        if codes.shape[1] != self.codes_.shape[1]:
            raise ValueError(f"expected tuples of length {self.codes_.shape[1]}, got {codes.shape[1]}")
        valid = ((codes >= 0) & (codes < self.radix_[None, :])).all(1)
        keys = self._pack(np.where(valid[:, None], codes, 0))
        pos = np.clip(np.searchsorted(self._sorted_keys, keys), 0, len(self._sorted_keys) - 1)
        found = valid & (self._sorted_keys[pos] == keys)
        return np.where(found, self._order[pos], -1)

    def token_string(self, item: int) -> str:
        """The item's id as tokens, one letter per level: ``<a_12><b_3>...`` (as in CEMG and LETTER)."""
        return "".join(f"<{LEVEL_LETTERS[l]}_{c}>" for l, c in enumerate(self.codes_[item]))
