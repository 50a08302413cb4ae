"""The two classic ways to tokenize several modalities (MMQ's baselines):

* modality-aligned (MA): fuse first, then quantize: :func:`fuse_modalities` standardises each modality and
  concatenates them, and one tokenizer quantizes the result;
* modality-separated (MS): quantize each modality with its own tokenizer; :class:`ModalitySeparated` puts their
  codes side by side (``L = sum of the parts' L``) and concatenates their reconstructions.
MMQ's own tokenizer (:mod:`workbench.tokenizers.mmq`) sits between the two: shared experts fuse, specific experts separate.
"""
from __future__ import annotations

import numpy as np
from sklearn.preprocessing import StandardScaler

from .base import Tokenizer


def standardize(X: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance per column (scikit-learn ``StandardScaler``), float32 ``(n, F)``. Tokenizers
    train on standardised features so that the reconstruction error is comparable across modalities."""
    return StandardScaler().fit_transform(np.asarray(X, dtype=np.float32)).astype(np.float32)


def fuse_modalities(features: dict[str, np.ndarray], names: list[str] | None = None) -> np.ndarray:
    """Standardise each named modality and concatenate them in ``names`` order -> ``(n, sum F_m)``."""
    names = list(features) if names is None else names
    if not names:
        raise ValueError("no modality to fuse: the dataset has no item features")
    missing = [n for n in names if n not in features]
    if missing:
        raise KeyError(f"unknown modality {missing}; available: {sorted(features)}")
    return np.concatenate([standardize(features[n]) for n in names], axis=1)


class ModalitySeparated(Tokenizer):
    """Modality-separated tokenizer: one fitted tokenizer per modality, codes side by side.

    ``parts`` maps modality -> ``(tokenizer, column slice of the fused input)``; every tokenizer has the same
    ``K``. ``encode(X)`` returns ``(n, sum L_m)``; ``reconstruct(X)`` the concatenated reconstructions."""

    def __init__(self, parts: dict[str, tuple[object, slice]]):
        Ks = {m: t.K for m, (t, _) in parts.items()}
        if len(set(Ks.values())) != 1:
            raise ValueError(f"all parts need the same codebook size K, got {Ks}")
        self.parts = parts
        self.K = next(iter(Ks.values()))
        self.L = sum(t.L for t, _ in parts.values())

    def encode(self, X: np.ndarray) -> np.ndarray:
        return np.concatenate([t.encode(X[:, cols]) for t, cols in self.parts.values()], axis=1)

    def reconstruct(self, X: np.ndarray) -> np.ndarray:
        return np.concatenate([t.reconstruct(X[:, cols]) for t, cols in self.parts.values()], axis=1)


def modality_slices(dims: dict[str, int]) -> dict[str, slice]:
    """Column slices of each modality in the concatenation of ``dims`` (name -> width), in order."""
    edges = np.cumsum([0, *dims.values()])
    return {m: slice(int(a), int(b)) for m, a, b in zip(dims, edges[:-1], edges[1:])}
