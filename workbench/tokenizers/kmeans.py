"""Quantizers fitted by k-means, without gradients: MMQ's baselines.

* :class:`RQKMeans`: residual k-means, ``L`` levels of ``K`` centres, each level clustering the residuals of
  the previous ones (scikit-learn ``KMeans``).
* :class:`ProductQuantizer`: split the ``F`` dimensions into ``L`` blocks and k-means each block (PQ).
* :class:`OPQ`: optimized product quantization (Ge et al. 2013, non-parametric): alternately fit PQ on the
  rotated data ``X R`` and update the rotation by orthogonal Procrustes, ``R = U V^T`` from the SVD of
  ``X^T Y`` where ``Y`` is the PQ reconstruction. VQ-Rec uses OPQ; its codes are unordered.

All follow the tokenizer contract (:class:`~workbench.tokenizers.base.Tokenizer`): ``fit(X) -> self``,
``encode(X) -> (n, L)`` codes, ``reconstruct(X)`` in the input space, ``evaluate(X)``, attributes ``K`` and ``L``.
"""
from __future__ import annotations

import warnings

import numpy as np
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning

from .base import Tokenizer


def _fit_kmeans(X: np.ndarray, K: int, seed: int, init=None, max_iter: int = 100) -> KMeans:
    if len(X) < K:
        raise ValueError(f"k-means needs at least K={K} items, got {len(X)}")
    with warnings.catch_warnings():  # fewer distinct points than K: said once per fit by _warn_unused
        warnings.simplefilter("ignore", ConvergenceWarning)
        if init is None:
            return KMeans(K, n_init=1, random_state=seed, max_iter=max_iter).fit(X)
        return KMeans(K, init=init, n_init=1, random_state=seed, max_iter=max_iter).fit(X)


def _warn_unused(tokenizer: str, K: int, used: dict[str, int]) -> None:
    """One warning for the levels or blocks whose points had fewer distinct values than ``K`` (duplicate items,
    e.g. identical genre vectors, or residuals that earlier levels made equal), so that some of their codes are
    never assigned."""
    short = {where: n for where, n in used.items() if n < K}
    if short:
        warnings.warn(f"{tokenizer}: fewer distinct points than K={K} codes in "
                      + ", ".join(f"{where} ({n} codes used)" for where, n in short.items())
                      + "; the other codes stay unused (identical points: items with the same features, or residuals "
                      "that earlier levels already reduced to the same value)", stacklevel=3)


class RQKMeans(Tokenizer):
    """Residual k-means with ``L`` levels of ``K`` centres."""

    def __init__(self, K: int = 256, L: int = 3, seed: int = 0):
        self.K, self.L, self.seed = K, L, seed

    def fit(self, X: np.ndarray) -> "RQKMeans":
        residual = np.asarray(X, dtype=np.float32)
        self.centres_, used = [], {}
        for level in range(self.L):
            km = _fit_kmeans(residual, self.K, self.seed + level)
            centres = km.cluster_centers_.astype(np.float32)
            self.centres_.append(centres)
            used[f"level {level + 1}"] = len(np.unique(km.labels_))
            residual = residual - centres[km.labels_]
        _warn_unused("RQKMeans", self.K, used)
        return self

    def encode(self, X: np.ndarray) -> np.ndarray:
        residual = np.asarray(X, dtype=np.float32)
        codes = np.empty((len(residual), self.L), dtype=np.int64)
        for level, centres in enumerate(self.centres_):
            d2 = (centres**2).sum(1)[None, :] - 2 * residual @ centres.T
            codes[:, level] = d2.argmin(1)
            residual = residual - centres[codes[:, level]]
        return codes

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return sum(self.centres_[level][codes[:, level]] for level in range(codes.shape[1]))

    def reconstruct(self, X: np.ndarray) -> np.ndarray:
        return self.decode(self.encode(X))


class ProductQuantizer(Tokenizer):
    """``L`` sub-quantizers of ``K`` centres over ``L`` contiguous blocks of the feature dimensions."""

    def __init__(self, K: int = 256, L: int = 4, seed: int = 0, max_iter: int = 100):
        self.K, self.L, self.seed, self.max_iter = K, L, seed, max_iter

    def _blocks(self, dim: int) -> list[slice]:
        if dim < self.L:
            raise ValueError(f"cannot split {dim} dimensions into L={self.L} blocks")
        edges = np.linspace(0, dim, self.L + 1).round().astype(int)
        return [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]

    def fit(self, X: np.ndarray, init: list[np.ndarray] | None = None, warn: bool = True) -> "ProductQuantizer":
        """``warn``: one warning when a block's points have fewer distinct values than ``K`` (OPQ's inner fits
        pass False and say it once, for the last fit)."""
        X = np.asarray(X, dtype=np.float32)
        self.blocks_ = self._blocks(X.shape[1])
        fits = [_fit_kmeans(X[:, b], self.K, self.seed + i, None if init is None else init[i], self.max_iter)
                for i, b in enumerate(self.blocks_)]
        self.centres_ = [km.cluster_centers_.astype(np.float32) for km in fits]
        if warn:
            _warn_unused(type(self).__name__, self.K,
                         {f"block {i + 1}": len(np.unique(km.labels_)) for i, km in enumerate(fits)})
        return self

    def encode(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        codes = np.empty((len(X), self.L), dtype=np.int64)
        for i, (b, centres) in enumerate(zip(self.blocks_, self.centres_)):
            codes[:, i] = ((centres**2).sum(1)[None, :] - 2 * X[:, b] @ centres.T).argmin(1)
        return codes

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return np.concatenate([c[codes[:, i]] for i, c in enumerate(self.centres_)], axis=1)

    def reconstruct(self, X: np.ndarray) -> np.ndarray:
        return self.decode(self.encode(X))


class OPQ(Tokenizer):
    """Optimized product quantization: a learned rotation ``R`` ``(F, F)`` followed by PQ on ``X R``."""

    def __init__(self, K: int = 256, L: int = 4, n_iter: int = 10, seed: int = 0):
        self.K, self.L, self.n_iter, self.seed = K, L, n_iter, seed

    def fit(self, X: np.ndarray) -> "OPQ":
        X = np.asarray(X, dtype=np.float32)
        self.rotation_ = np.eye(X.shape[1], dtype=np.float32)
        pq = ProductQuantizer(self.K, self.L, self.seed, max_iter=10).fit(X, warn=False)
        self.distortion_ = []
        for _ in range(self.n_iter):
            Y = pq.reconstruct(X @ self.rotation_)
            self.distortion_.append(float(((X @ self.rotation_ - Y) ** 2).sum(1).mean()))
            U, _, Vt = np.linalg.svd(X.T @ Y)  # orthogonal Procrustes: argmin_R ||X R - Y||, R orthogonal
            self.rotation_ = (U @ Vt).astype(np.float32)
            pq = ProductQuantizer(self.K, self.L, self.seed, max_iter=10).fit(X @ self.rotation_, init=pq.centres_,
                                                                              warn=False)
        self.pq_ = ProductQuantizer(self.K, self.L, self.seed).fit(X @ self.rotation_, init=pq.centres_)
        return self

    def encode(self, X: np.ndarray) -> np.ndarray:
        return self.pq_.encode(np.asarray(X, dtype=np.float32) @ self.rotation_)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return self.pq_.decode(codes) @ self.rotation_.T

    def reconstruct(self, X: np.ndarray) -> np.ndarray:
        return self.decode(self.encode(X))
