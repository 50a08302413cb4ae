"""Vectorized BPR triplet sampling."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def sample_triplets(train: sp.csr_matrix, generator: np.random.Generator, max_tries: int = 20
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One epoch of BPR triplets: every training interaction ``(u, i)`` once, shuffled, each with a negative
    ``j`` drawn uniformly among the items ``u`` has not interacted with in training (MMRec's sampler). Vectorized
    rejection sampling: collisions are redrawn together; returns int64 ``(users, positives, negatives)``."""
    train = sp.csr_matrix(train)
    n_users, n_items = train.shape
    users = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(train.indptr))
    pos = train.indices.astype(np.int64)
    order = generator.permutation(len(users))
    users, pos = users[order], pos[order]
    keys = np.sort(np.repeat(np.arange(n_users, dtype=np.int64), np.diff(train.indptr)) * n_items
                   + train.indices.astype(np.int64))
    neg = generator.integers(0, n_items, size=len(users))
    todo = np.arange(len(users))
    for attempt in range(max_tries + 1):
        query = users[todo] * n_items + neg[todo]
        at = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
        todo = todo[keys[at] == query]
        if len(todo) == 0:
            break
        if attempt == max_tries:
            full = np.flatnonzero(np.diff(train.indptr) >= n_items)
            raise ValueError(f"could not draw negatives for {len(todo)} interaction(s) in {max_tries} rounds; "
                             f"users {full[:5].tolist()} interacted with every item (a negative needs an unseen item)")
        neg[todo] = generator.integers(0, n_items, size=len(todo))
    return users, pos, neg
