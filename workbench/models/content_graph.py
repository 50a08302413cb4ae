"""The item-item content graph of FREEDOM / LATTICE: per-modality kNN graphs (cached by a hash of the
features), their weighted sum, applied as a fixed sparse operator with a cheap backward."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from ..core.paths import cache_dir
from ..core.sparse import csr_tensor, spmm
from ..core.storage import cached_arrays, content_hash


class _SparseMatmul(torch.autograd.Function):
    """``S @ x`` with the backward ``S^T @ g`` by a precomputed CSR transpose (see :class:`SparseOperator`)."""

    @staticmethod
    def forward(ctx, x, S, S_t):
        ctx.save_for_backward(S_t)
        return spmm(S, x)

    @staticmethod
    def backward(ctx, g):
        (S_t,) = ctx.saved_tensors
        return spmm(S_t, g.contiguous()), None, None


class SparseOperator:
    """A fixed sparse matrix ``S`` (e.g. the item-item kNN graph) applied as ``op(x) = S @ x`` with a cheap
    backward: ``torch.sparse.mm``'s own backward transposes a CSR matrix at every call."""

    def __init__(self, matrix: sp.spmatrix, device: torch.device | str | None = None):
        matrix = sp.csr_matrix(matrix, dtype=np.float32)
        self.shape = matrix.shape
        self.S = csr_tensor(matrix, device)
        self.S_t = csr_tensor(matrix.T.tocsr(), device)

    def to(self, device: torch.device | str) -> "SparseOperator":
        self.S, self.S_t = self.S.to(device), self.S_t.to(device)
        return self

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return _SparseMatmul.apply(x.contiguous(), self.S, self.S_t)



def knn_graph(features: np.ndarray, k: int = 10, cache: bool = True, batch_size: int = 2048) -> sp.csr_matrix:
    """Item-item kNN graph of one modality, as FREEDOM and LATTICE build it: cosine similarity, keep each item's
    top-``k`` neighbours (itself excluded) as binary edges, then normalize ``D^-1/2 S D^-1/2`` with row-sum
    degrees. Returns a float32 CSR ``(n, n)``. Cached in ``data/cache/knn-<hash>.npz`` keyed by a hash of the
    features and ``k``; computed in blocks (no dense ``n x n`` matrix)."""
    X = np.asarray(features, dtype=np.float32)
    if X.ndim != 2 or not np.isfinite(X).all():
        raise ValueError(f"knn_graph needs a finite (n_items, d) matrix, got shape {X.shape}")
    n = len(X)
    if not 1 <= k < n:
        raise ValueError(f"k must be in [1, n_items - 1 = {n - 1}], got {k}")
    digest = content_hash(X, length=64)
    arrays = cached_arrays(Path(cache_dir()) / f"knn-{digest[:16]}-k{k}.npz", f"knn {digest} k={k}",
                           lambda: _knn_arrays(X, k, batch_size), lambda a: check_csr(a, n, k), use_cache=cache)
    return sp.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]), shape=(n, n))


def _knn_arrays(X: np.ndarray, k: int, batch_size: int) -> dict[str, np.ndarray]:
    """The normalized kNN graph of :func:`knn_graph` as CSR arrays."""
    n = len(X)
    Xt = torch.nn.functional.normalize(torch.from_numpy(X), dim=1)
    neighbours = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, batch_size):
        sim = Xt[start:start + batch_size] @ Xt.T
        rows = torch.arange(sim.shape[0])
        sim[rows, rows + start] = -torch.inf  # no self edge
        neighbours[start:start + batch_size] = sim.topk(k, dim=1).indices.numpy()
    S = sp.csr_matrix((np.ones(n * k, dtype=np.float32), (np.repeat(np.arange(n), k), neighbours.ravel())),
                      shape=(n, n))
    deg = np.asarray(S.sum(1)).ravel()
    inv = np.where(deg > 0, deg ** -0.5, 0.0).astype(np.float32)
    S = sp.csr_matrix(sp.diags(inv) @ S @ sp.diags(inv), dtype=np.float32)
    return {"data": S.data, "indices": S.indices, "indptr": S.indptr}


def check_csr(arrays: dict[str, np.ndarray], n: int, k: int) -> None:
    """Raise ``ValueError`` unless ``arrays`` hold a well-formed ``(n, n)`` CSR graph with ``k`` finite edges
    per row (the shape :func:`knn_graph` builds)."""
    data, indices, indptr = (arrays.get(name) for name in ("data", "indices", "indptr"))
    if data is None or indices is None or indptr is None:
        raise ValueError("expected CSR arrays data, indices and indptr")
    if indptr.shape != (n + 1,) or indptr[0] != 0 or np.any(np.diff(indptr) != k):
        raise ValueError(f"indptr does not describe {n} rows of {k} neighbours")
    if data.shape != (n * k,) or indices.shape != (n * k,) or not np.isfinite(data).all():
        raise ValueError(f"expected {n * k} finite edges, got data {data.shape}, indices {indices.shape}")
    if len(indices) and (indices.min() < 0 or indices.max() >= n):
        raise ValueError(f"a column index is outside [0, {n})")


def content_graph(features: dict[str, np.ndarray], k: int = 10, weights: dict[str, float] | None = None,
                  device: torch.device | str | None = None, cache: bool = True) -> SparseOperator:
    """Weighted sum of the per-modality kNN graphs (FREEDOM: ``w_v S_v + (1 - w_v) S_t``; equal weights unless
    ``weights`` are given, normalized to sum 1), as a :class:`SparseOperator` ``(n_items, n_items)``."""
    names = list(features)
    if weights is None:
        weights = {m: 1.0 for m in names}
    unknown = sorted(set(weights) - set(names))
    if unknown:
        raise KeyError(f"graph weights name unknown modalities {unknown}; available: {names}")
    total = sum(weights.get(m, 0.0) for m in names)
    if total <= 0:
        raise ValueError(f"modality weights must have a positive sum, got {weights}")
    S = sum(weights.get(m, 0.0) / total * knn_graph(features[m], k, cache=cache) for m in names)
    return SparseOperator(S, device)
