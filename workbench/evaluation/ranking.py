"""Full-ranking top-K evaluation (Recall, NDCG, Precision, HR, MAP @K, overall and per item stratum).

Full-ranking protocol (MMRec, as MoToRec uses it): every item is ranked for every user who has at least one
ground-truth item; the user's *training* positives are masked out (score -inf). Validation positives are
**not** masked at test time by default (MMRec's choice: they stay in the ranking and count as misses);
pass ``exclude=train + valid`` to mask them as RecBole does. Recall divides hits by the user's number of
ground-truth items (MMRec), NDCG uses binary gains with the ideal DCG of ``min(n_pos, K)`` hits, MAP@K divides
by ``min(n_pos, K)``. With one ground-truth item per user (leave-one-out) Recall@K equals HR@K.

Ties: items with equal scores are ranked by item id, the lower id first, on every device (``torch.topk`` alone
breaks ties in an order that differs between CPU and GPU); this decides which of several equally scored items
fill the last places of a top-K list (a popularity ranking has many). Scores must be finite: a NaN or an
infinity from the model is an error naming it (a NaN would otherwise rank first).

Stratum metrics (cold-start analysis) keep the full ranking over all items but restrict the ground truth to the
stratum's items; users without a ground-truth item in the stratum are not evaluated for it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from ..core import distributed as dist
from ..data.dataset import TRAIN, VALID, RecDataset, split_code


ScoreFn = Callable[[torch.Tensor], torch.Tensor]
METRICS = ("recall", "ndcg", "precision", "hr", "map")


@dataclass
class RankingReport:
    """Result of a full-ranking evaluation.

    Attributes:
        metrics: ``"recall@20" -> mean`` over evaluated users.
        per_user: ``"recall@20" -> (n_users_evaluated,)`` values, aligned with ``users``.
        users: ids of the evaluated users ``(n_users_evaluated,)``.
        strata: stratum name -> report restricted to that stratum's ground-truth items.
    """

    metrics: dict[str, float]
    per_user: dict[str, np.ndarray]
    users: np.ndarray
    strata: dict[str, "RankingReport"] = field(default_factory=dict)

    def __getitem__(self, key: str) -> float:
        return self.metrics[key]

    def to_frame(self) -> pd.DataFrame:
        """Rows: ``overall`` and each stratum; columns: metrics plus ``users`` evaluated."""
        rows = {"overall": {**self.metrics, "users": len(self.users)}}
        for name, rep in self.strata.items():
            rows[name] = {**rep.metrics, "users": len(rep.users)}
        return pd.DataFrame.from_dict(rows, orient="index")


class DotScorer:
    """Score function ``u -> user_emb[u] @ item_emb.T`` for ``(n_users, D)`` and ``(n_items, D)`` tensors.

    Besides being callable it offers ``score_into(users, out)``, which writes into a reused buffer: on a CPU,
    allocating a fresh ``(B, n_items)`` tensor per batch costs as much as the product itself.
    """

    def __init__(self, user_emb: torch.Tensor, item_emb: torch.Tensor):
        if user_emb.shape[1] != item_emb.shape[1]:
            raise ValueError(f"embedding sizes differ: users {tuple(user_emb.shape)}, items {tuple(item_emb.shape)}")
        self.user_emb = user_emb
        self.item_emb_t = item_emb.T.contiguous()  # (D, n_items)
        self.dtype = torch.promote_types(user_emb.dtype, item_emb.dtype)
        self.device = user_emb.device  # where evaluate_ranking scores by default

    def __call__(self, users: torch.Tensor) -> torch.Tensor:
        return self.user_emb[users] @ self.item_emb_t

    def score_into(self, users: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        return torch.mm(self.user_emb[users], self.item_emb_t, out=out)


def _rows_to_index(mat: sp.csr_matrix, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row-in-batch, column) int64 pairs of the nonzeros of ``mat[users]``."""
    sub = mat[users]
    rows = np.repeat(np.arange(len(users), dtype=np.int64), np.diff(sub.indptr))
    return rows, sub.indices.astype(np.int64)


def mask_seen(scores: torch.Tensor, exclude: sp.csr_matrix, users: np.ndarray) -> torch.Tensor:
    """Set ``scores[b, i] = -inf`` in place wherever ``exclude[users[b], i]`` is nonzero; returns ``scores``
    ``(B, n_items)``."""
    r, c = _rows_to_index(exclude, users)
    scores[torch.as_tensor(r, device=scores.device), torch.as_tensor(c, device=scores.device)] = -torch.inf
    return scores


def check_finite(scores: torch.Tensor, users, name: str) -> None:
    """Raise ``ValueError`` naming the model ``name`` and the first users (``users[b]`` for row ``b``) if a score
    is NaN or infinite: a NaN would otherwise rank first."""
    finite = torch.isfinite(scores.sum(1))  # a NaN or inf makes its row's sum non-finite (one cheap pass)
    if not bool(finite.all()):
        finite = torch.isfinite(scores).all(1)  # the exact test, on the rare suspect batch (a sum can overflow)
    if not bool(finite.all()):
        bad = np.asarray(users)[~finite.cpu().numpy()]
        raise ValueError(f"{name}: non-finite scores (NaN or inf) for {len(bad)} user(s), e.g. user ids "
                         f"{bad[:5].tolist()}; a model must score every item with a finite number (has training "
                         "diverged?)")


def top_k(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices ``(B, k)`` of each row's ``k`` highest scores, best first, ties broken by the lower index (the
    same on every device). Scores must not be NaN (:func:`check_finite`); ``-inf`` marks removed items."""
    n = scores.shape[1]
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, n_items = {n}], got {k}")
    vals, idx = scores.topk(min(k + 1, n), dim=1)  # one more: a tie across the cut shows as an equal (k+1)-th
    crowded = torch.nonzero(vals[:, k] == vals[:, k - 1]).flatten() if n > k else vals.new_zeros(0, dtype=torch.long)
    vals, idx = vals[:, :k], idx[:, :k]
    kth = vals[:, -1:]
    if len(crowded):
        s, t = scores[crowded], kth[crowded]
        above, tied = s > t, s == t
        room = k - above.sum(1, keepdim=True)
        chosen = above | (tied & (tied.cumsum(1) <= room))  # the lowest-id tied items fill the free places
        idx[crowded] = torch.nonzero(chosen)[:, 1].view(len(crowded), k)
        vals[crowded] = s.gather(1, idx[crowded])
    order = idx.argsort(dim=1)  # by id, then stably by score: equal scores keep id order
    vals, idx = vals.gather(1, order), idx.gather(1, order)
    return idx.gather(1, vals.argsort(dim=1, descending=True, stable=True))


def _membership(top: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, n_items: int) -> torch.Tensor:
    """``hits[b, j]`` = whether ``top[b, j]`` is among the pairs ``(rows, cols)``; no dense (B, n_items) matrix."""
    keys = torch.sort(rows * n_items + cols).values
    query = torch.arange(len(top), device=top.device)[:, None] * n_items + top
    pos = torch.searchsorted(keys, query).clamp(max=max(len(keys) - 1, 0))
    return keys[pos] == query if len(keys) else torch.zeros_like(top, dtype=torch.bool)


def _ideal_dcg(max_k: int, device: torch.device) -> torch.Tensor:
    """``idcg[n] = sum_{i<n} 1/log2(i+2)`` for ``n = 0..max_k``."""
    disc = 1.0 / torch.log2(torch.arange(2, max_k + 2, device=device, dtype=torch.float64))
    return torch.cat([torch.zeros(1, device=device, dtype=torch.float64), disc.cumsum(0)])


def _batch_metrics(hits: torch.Tensor, n_pos: torch.Tensor, ks: Sequence[int], names: Sequence[str]) -> dict[str, torch.Tensor]:
    """Per-user metrics from ``hits`` ``(B, maxK)`` (1 where the ranked item is relevant) and ``n_pos`` ``(B,)``."""
    hits = hits.double()
    n_pos = n_pos.double()
    max_k = hits.shape[1]
    ranks = torch.arange(1, max_k + 1, device=hits.device, dtype=torch.float64)
    disc = 1.0 / torch.log2(ranks + 1)
    idcg = _ideal_dcg(max_k, hits.device)
    cum_hits = hits.cumsum(1)
    out = {}
    for k in ks:
        h = cum_hits[:, k - 1]
        denom_k = torch.clamp(n_pos, max=k)
        if "recall" in names:
            out[f"recall@{k}"] = h / n_pos
        if "precision" in names:
            out[f"precision@{k}"] = h / k
        if "hr" in names:
            out[f"hr@{k}"] = (h > 0).double()
        if "ndcg" in names:
            dcg = (hits[:, :k] * disc[:k]).sum(1)
            out[f"ndcg@{k}"] = dcg / idcg[denom_k.long()]
        if "map" in names:
            prec_at_i = cum_hits[:, :k] / ranks[:k]
            out[f"map@{k}"] = (prec_at_i * hits[:, :k]).sum(1) / denom_k
    return out


def evaluate_ranking(
    score_fn: ScoreFn,
    ground_truth: sp.csr_matrix,
    exclude: sp.csr_matrix | None = None,
    ks: Sequence[int] = (10, 20),
    metrics: Sequence[str] = METRICS,
    strata: dict[str, np.ndarray] | None = None,
    batch_size: int = 2048,
    device: torch.device | str | None = None,
    name: str | None = None,
    candidates: np.ndarray | None = None,
) -> RankingReport:
    """Full-ranking top-K evaluation, batched over users, vectorized on CPU or GPU.

    Args:
        score_fn: ``user_ids (B,) long tensor on device -> scores (B, n_items)``.
        ground_truth: ``(n_users, n_items)`` CSR of relevant items (e.g. the test split).
        exclude: ``(n_users, n_items)`` CSR of items to mask (e.g. training positives), or ``None``.
        ks: cut-offs; metrics: subset of ``recall, ndcg, precision, hr, map``.
        strata: name -> boolean item mask ``(n_items,)``; adds one restricted report per stratum.
        batch_size: users per batch; device: where scoring and ranking run (default: the score function's
            ``device`` attribute if it has one, as :class:`DotScorer` does, else the CPU).
        name: the model's name in error messages (default: the score function's class or function name).
        candidates: boolean item mask ``(n_items,)``: only these items are ranked (the others are removed, as
            seen items are), e.g. to rank cold items among themselves; ``None``: every item.

    Under torch.distributed each process ranks a contiguous share of the users and every process receives the
    whole report (the same numbers as one process: each user's metrics depend on that user's scores only).
    """
    ks, gt, exclude, users, dev = _check_inputs(score_fn, ground_truth, exclude, ks, metrics, device)
    model_name = name or getattr(score_fn, "__qualname__", None) or type(score_fn).__name__
    n_items = gt.shape[1]
    outside = _outside(candidates, n_items, dev)
    masks = {name: torch.as_tensor(np.array(m, dtype=bool), device=dev) for name, m in (strata or {}).items()}
    for name, m in masks.items():
        if m.shape != (n_items,):
            raise ValueError(f"stratum {name!r} mask has shape {tuple(m.shape)}, expected ({n_items},)")
    mine = users[dist.share(len(users))]
    parts: dict[str | None, list[tuple[dict[str, np.ndarray], np.ndarray]]] = {None: [], **{s: [] for s in masks}}
    buffer = None
    if hasattr(score_fn, "score_into") and len(mine):
        buffer = torch.empty(min(batch_size, len(mine)), n_items, device=dev, dtype=score_fn.dtype)
    with torch.no_grad():
        for start in range(0, len(mine), batch_size):
            batch = mine[start:start + batch_size]
            scores = _batch_scores(score_fn, batch, buffer, n_items, (exclude, outside), dev, model_name)
            top = top_k(scores, ks[-1])  # (B, maxK), best first
            r, c = (torch.as_tensor(a, device=dev) for a in _rows_to_index(gt, batch))
            hits = _membership(top, r, c, n_items)  # (B, maxK) bool
            for name, (h, n_pos, keep) in _by_stratum(hits, top, r, c, len(batch), masks).items():
                if len(n_pos):
                    vals = _batch_metrics(h, n_pos, ks, metrics)
                    parts[name].append(({k: v.cpu().numpy() for k, v in vals.items()},
                                        batch if keep is None else batch[keep.cpu().numpy()]))
    reports = {name: _assemble(p) for name, p in _gather_parts(parts).items()}
    overall = reports.pop(None)
    overall.strata = {name: rep for name, rep in reports.items() if rep is not None}
    return overall


def _check_inputs(score_fn, ground_truth, exclude, ks, metrics, device):
    """Checked cut-offs (sorted), the ground truth and exclusions as CSR without stored zeros, the users to rank
    and the device."""
    unknown = sorted(set(metrics) - set(METRICS))
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; expected a subset of {METRICS}")
    ks = sorted(set(int(k) for k in ks))
    n_items = ground_truth.shape[1]
    if not ks or ks[0] < 1 or ks[-1] > n_items:
        raise ValueError(f"cut-offs must be in [1, n_items={n_items}], got {ks}")
    if exclude is not None and exclude.shape != ground_truth.shape:
        raise ValueError(f"exclude has shape {exclude.shape}, ground_truth {ground_truth.shape}")
    gt = sp.csr_matrix(ground_truth, copy=True)
    gt.eliminate_zeros()  # a stored zero (e.g. left by .multiply(mask)) is not a relevant item, nor a seen one
    if exclude is not None:
        exclude = sp.csr_matrix(exclude, copy=True)
        exclude.eliminate_zeros()
    users = np.flatnonzero(np.diff(gt.indptr) > 0)
    if len(users) == 0:
        raise ValueError("ground truth is empty: no user has a relevant item to evaluate")
    dev = torch.device(device) if device is not None else getattr(score_fn, "device", torch.device("cpu"))
    return ks, gt, exclude, users, dev


def _outside(candidates: np.ndarray | None, n_items: int, dev) -> torch.Tensor | None:
    """The items outside ``candidates`` as a boolean tensor (``None`` when every item is a candidate)."""
    if candidates is None:
        return None
    candidates = np.asarray(candidates, dtype=bool)
    if candidates.shape != (n_items,) or not candidates.any():
        raise ValueError(f"candidates must be a non-empty boolean item mask of shape ({n_items},)")
    return torch.as_tensor(~candidates, device=dev)


def _batch_scores(score_fn, batch: np.ndarray, buffer, n_items: int, masks: tuple, dev, name: str) -> torch.Tensor:
    """Scores ``(B, n_items)`` of one batch of users with the seen items (``exclude``) and those outside the
    candidates (``outside``), ``masks = (exclude, outside)``, at ``-inf``; an error naming the model if it
    returned a non-finite score."""
    exclude, outside = masks
    batch_t = torch.as_tensor(batch, device=dev)
    if buffer is not None:
        scores = score_fn.score_into(batch_t, buffer[:len(batch)])
    else:
        scores = score_fn(batch_t)
        if scores.shape != (len(batch), n_items):
            raise ValueError(f"score_fn returned shape {tuple(scores.shape)}, expected ({len(batch)}, {n_items})")
        masked = exclude is not None or outside is not None
        scores = scores.float().clone() if masked else scores.float()  # never write into the model's tensors
    check_finite(scores, batch, name)
    if exclude is not None:
        mask_seen(scores, exclude, batch)
    if outside is not None:
        scores[:, outside] = -torch.inf
    return scores


def _by_stratum(hits, top, r, c, n_batch: int, masks) -> dict:
    """Per report (``None`` = overall, then each stratum): the hits, the users' ground-truth counts and which
    users of the batch it keeps (``None``: all)."""
    out = {None: (hits, torch.bincount(r, minlength=n_batch), None)}
    for name, m in masks.items():
        n_pos = torch.bincount(r[m[c]], minlength=n_batch)
        keep = n_pos > 0
        out[name] = ((hits & m[top])[keep], n_pos[keep], keep)
    return out


def _gather_parts(parts: dict) -> dict:
    """Every process's per-user parts, in rank order (its own alone in a single process)."""
    if not dist.is_distributed():
        return parts
    gathered = dist.all_gather_objects(parts)
    return {name: [p for rank_parts in gathered for p in rank_parts[name]] for name in parts}


def _assemble(parts: list[tuple[dict[str, np.ndarray], np.ndarray]]) -> RankingReport | None:
    if not parts:
        return None
    per_user = {k: np.concatenate([p[k] for p, _ in parts]) for k in parts[0][0]}
    return RankingReport(
        metrics={k: float(v.mean()) for k, v in per_user.items()},
        per_user=per_user,
        users=np.concatenate([u for _, u in parts]),
    )


def evaluate_split(
    dataset: RecDataset,
    score_fn: ScoreFn,
    split: int | str = "test",
    mask_valid: bool = False,
    **kwargs,
) -> RankingReport:
    """:func:`evaluate_ranking` on one split of ``dataset``: training positives masked (and validation
    positives too when ``mask_valid`` and ``split`` is test). ``kwargs`` go to :func:`evaluate_ranking`."""
    code = split_code(split)
    exclude = dataset.matrix(TRAIN)
    if mask_valid and code != VALID:
        exclude = exclude + dataset.matrix(VALID)
        exclude.data[:] = 1.0
    return evaluate_ranking(score_fn, dataset.matrix(code), exclude=exclude, **kwargs)
