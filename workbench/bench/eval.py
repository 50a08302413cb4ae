"""``python -m workbench.bench eval``: one full-ranking evaluation of Baby's shape."""
from __future__ import annotations

import platform
import time

import numpy as np
import scipy.sparse as sp
import torch

from ..core.runtime import get_device, runtime_facts
from ..evaluation.ranking import DotScorer, evaluate_ranking


def _random_interactions(n_users: int, n_items: int, n: int, rng: np.random.Generator) -> sp.csr_matrix:
    flat = np.unique(rng.integers(0, n_users * n_items, size=n))
    mat = sp.csr_matrix((np.ones(len(flat), np.float32), (flat // n_items, flat % n_items)), shape=(n_users, n_items))
    return mat


def bench_eval(n_users: int = 19445, n_items: int = 7050, dim: int = 64, n_train: int = 120_000,
               n_test: int = 20_559, repeats: int = 3, device: str | None = None, seed: int = 0) -> dict:
    """Time :func:`evaluate_ranking` on random embeddings; returns a JSON-ready dict (best of ``repeats``).
    ``bound_seconds`` is the same-run physical reference: the dense scoring products of the same shape and their
    top-k alone (:func:`dense_bound`), timed in turn with the evaluation; ``eval_over_bound`` relates the two."""
    rng = np.random.default_rng(seed)
    dev = get_device(device)
    train = _random_interactions(n_users, n_items, n_train, rng)
    # every user gets one test item (so all 19,445 users are ranked), the rest at random, as in Baby's split
    one_each = sp.csr_matrix((np.ones(n_users, np.float32), (np.arange(n_users), rng.integers(0, n_items, n_users))),
                             shape=(n_users, n_items))
    test = one_each + _random_interactions(n_users, n_items, n_test - n_users, rng)
    test.data[:] = 1.0
    test = test - test.multiply(train)  # test positives never repeat a training positive
    test.eliminate_zeros()
    gen = torch.Generator().manual_seed(seed)
    user_emb = torch.randn(n_users, dim, generator=gen).to(dev)
    item_emb = torch.randn(n_items, dim, generator=gen).to(dev)
    score = DotScorer(user_emb, item_emb)
    times, bounds = [], []
    for _ in range(repeats + 1):  # first run warms up allocators and kernels
        bounds.append(dense_bound(user_emb, item_emb, k=20))
        if dev.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        report = evaluate_ranking(score, test, exclude=train, ks=(10, 20), metrics=("recall", "ndcg"), device=dev)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return {
        "benchmark": "eval", "seconds": min(times[1:]), "seconds_all": times[1:],
        "bound_seconds": min(bounds[1:]), "eval_over_bound": min(times[1:]) / min(bounds[1:]),
        "users": n_users, "items": n_items, "dim": dim, "masked_train_positives": int(train.nnz),
        "test_positives": int(test.nnz), "evaluated_users": int(len(report.users)),
        "recall@20": report["recall@20"], **runtime_facts(dev), "machine": platform.machine(),
        "python": platform.python_version(),
    }


def dense_bound(user_emb: torch.Tensor, item_emb: torch.Tensor, k: int, batch_size: int = 2048) -> float:
    """Seconds of every user's dense scores (one ``(B, n_items)`` product per batch of users, into a reused
    buffer) and their top-``k``: the arithmetic no full-ranking evaluation can skip."""
    item_t = item_emb.T.contiguous()
    buffer = torch.empty(min(batch_size, len(user_emb)), item_emb.shape[0], device=user_emb.device)
    if user_emb.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for s in range(0, len(user_emb), batch_size):
        scores = torch.mm(user_emb[s:s + batch_size], item_t, out=buffer[:len(user_emb[s:s + batch_size])])
        scores.topk(k, dim=1)
    if user_emb.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start
