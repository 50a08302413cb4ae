"""Leave-one-out next-item metrics (CEMG, TIGER, LETTER): one target per user, ranked among all items.

A model returns each user's top ``k`` items (a ranker by sorting its scores over the catalogue, a generator by
beam search). With one target per user, Recall@k (TIGER's name) and HR@k (CEMG's) are the same number: 1 when
the target is among the top ``k``; NDCG@k is ``1 / log2(rank + 2)`` with the 0-based rank of the target, 0
beyond ``k``. Metrics are means over the evaluated users; the per-user values are kept for confidence intervals
and for strata (e.g. users whose target is a cold item, CEMG Table 3).

Protocol choices, stated once: items of the user's own history are **not** masked (a generator cannot mask them
without a wider beam, and TIGER's and LETTER's evaluation code does not; a synthetic user never repeats an item
and a 5-core Amazon user rarely does, so it seldom matters); ties in a ranker's scores go to the lower item id.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch

KS = (5, 10, 20)


@dataclass
class NextItemReport:
    """``metrics``: name -> mean (``recall@k``, ``ndcg@k``); ``per_user``: name -> ``(B,)`` values; ``ranks``:
    ``(B,)`` 0-based rank of each target (``-1`` beyond the returned list); ``strata``: stratum name -> metrics
    over the users whose target is in the stratum; ``n_users`` per stratum in ``stratum_users``."""

    metrics: dict[str, float]
    per_user: dict[str, np.ndarray]
    ranks: np.ndarray
    strata: dict[str, dict[str, float]] = field(default_factory=dict)
    stratum_users: dict[str, int] = field(default_factory=dict)

    def __getitem__(self, key: str) -> float:
        return self.metrics[key]

    def to_frame(self) -> pd.DataFrame:
        """One row for all users and one per stratum, with the number of users."""
        rows = {"all": {**self.metrics, "users": len(self.ranks)}}
        rows.update({s: {**m, "users": self.stratum_users[s]} for s, m in self.strata.items()})
        return pd.DataFrame(rows).T


def target_ranks(top_items: torch.Tensor | np.ndarray, targets: torch.Tensor | np.ndarray) -> np.ndarray:
    """The 0-based position of each target in its row of ``top_items`` ``(B, k)``; ``-1`` when absent.

    >>> target_ranks(np.array([[3, 1, 2], [0, 4, 5]]), np.array([2, 9])).tolist()
    [2, -1]
    """
    top = torch.as_tensor(top_items)
    tgt = torch.as_tensor(targets, device=top.device).reshape(-1, 1)
    hit = top == tgt
    found = hit.any(1)
    return torch.where(found, hit.int().argmax(1), torch.full_like(found, -1, dtype=torch.long)).cpu().numpy()


def rank_metrics(ranks: np.ndarray, ks: Sequence[int] = KS) -> dict[str, np.ndarray]:
    """Per-user ``recall@k`` (= HR@k) and ``ndcg@k`` from 0-based ranks (``-1``: not retrieved).

    >>> m = rank_metrics(np.array([0, 1, -1]), ks=(1, 2))
    >>> m["recall@2"].tolist(), m["ndcg@2"].round(4).tolist()
    ([1.0, 1.0, 0.0], [1.0, 0.6309, 0.0])
    """
    ranks = np.asarray(ranks)
    found = ranks >= 0
    gain = np.where(found, 1.0 / np.log2(np.maximum(ranks, 0) + 2.0), 0.0)
    out = {}
    for k in ks:
        inside = found & (ranks < k)
        out[f"recall@{k}"] = inside.astype(np.float64)
        out[f"ndcg@{k}"] = np.where(inside, gain, 0.0)
    return out


def evaluate_next_item(recommend: Callable[[np.ndarray, int], torch.Tensor], histories: np.ndarray,
                       targets: np.ndarray, ks: Sequence[int] = KS, strata: dict[str, np.ndarray] | None = None,
                       batch_size: int = 1024) -> NextItemReport:
    """Metrics of ``recommend(histories_batch (b, L), k) -> (b, k)`` item ids (best first) over users with
    ``histories`` ``(B, L)`` and ``targets`` ``(B,)``; ``strata``: name -> ``(n_items,)`` bool item mask, each
    reporting the users whose target is in it."""
    ks = sorted(set(ks))
    if not ks or ks[0] < 1:
        raise ValueError(f"cut-offs must be positive integers, got {ks}")
    targets = np.asarray(targets)
    if len(histories) != len(targets) or not len(targets):
        raise ValueError(f"need one target per history row and at least one user, got {len(histories)} histories "
                         f"and {len(targets)} targets")
    ranks = np.concatenate([target_ranks(recommend(histories[s:s + batch_size], ks[-1]), targets[s:s + batch_size])
                            for s in range(0, len(targets), batch_size)])
    per_user = rank_metrics(ranks, ks)
    report = NextItemReport({k: float(v.mean()) for k, v in per_user.items()}, per_user, ranks)
    for name, mask in (strata or {}).items():
        inside = np.asarray(mask, dtype=bool)[targets]
        report.stratum_users[name] = int(inside.sum())
        report.strata[name] = {k: float(v[inside].mean()) if inside.any() else float("nan")
                               for k, v in per_user.items()}
    return report


def chance_next_item(n_items: int, ks: Sequence[int] = KS) -> dict[str, float]:
    """The expectation of each metric under a uniformly random ranking of ``n_items`` items (the target's rank
    is uniform): ``recall@k = k / n``, ``ndcg@k = mean over r < k of 1 / log2(r + 2) / n``.

    >>> chance_next_item(4, ks=(4,))["recall@4"]
    1.0
    """
    out = {}
    for k in ks:
        k_eff = min(k, n_items)
        out[f"recall@{k}"] = k_eff / n_items
        out[f"ndcg@{k}"] = float((1.0 / np.log2(np.arange(k_eff) + 2.0)).sum() / n_items)
    return out
