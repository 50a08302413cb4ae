"""Codebook health: how well a tokenizer uses its codes and what the codes capture.

Per level: utilization (share of the ``K`` codes used), token entropy (bits) and perplexity ``2^H`` (``K`` for
uniform usage), dead codes. Overall: collision rate (share of items whose full code tuple is shared with
another item), unique-id fraction (distinct tuples / items), reconstruction error. Against known attributes
(planted ones, or any item metadata): purity (share of items whose code's majority value matches theirs) and
normalized mutual information.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def _check_codes(codes: np.ndarray, K: int) -> np.ndarray:
    codes = np.asarray(codes)
    if codes.ndim != 2:
        raise ValueError(f"codes must be (n_items, L), got shape {codes.shape}")
    if codes.size and (codes.min() < 0 or codes.max() >= K):
        raise ValueError(f"codes must lie in [0, {K}), found [{codes.min()}, {codes.max()}]")
    return codes


def code_usage(codes: np.ndarray, K: int) -> np.ndarray:
    """Counts ``(L, K)``: how many items use each code at each level."""
    codes = _check_codes(codes, K)
    L = codes.shape[1]
    flat = codes + K * np.arange(L)[None, :]
    return np.bincount(flat.ravel(), minlength=L * K).reshape(L, K)


def level_entropy(codes: np.ndarray, K: int) -> np.ndarray:
    """Token entropy in bits per level ``(L,)``; ``log2(K)`` for uniform usage, 0 for a single code."""
    counts = code_usage(codes, K).astype(float)
    p = counts / counts.sum(1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log2(p), 0.0)
    return terms.sum(1)


def collision_rate(codes: np.ndarray) -> float:
    """Share of items whose full code tuple is also the tuple of another item."""
    _, inverse, counts = np.unique(np.asarray(codes), axis=0, return_inverse=True, return_counts=True)
    return float((counts[inverse.ravel()] > 1).mean())


def unique_fraction(codes: np.ndarray) -> float:
    """Distinct code tuples divided by the number of items (1 = every item has its own id)."""
    return len(np.unique(np.asarray(codes), axis=0)) / len(codes)


def level_health(codes: np.ndarray, K: int) -> pd.DataFrame:
    """One row per level: utilization, entropy (bits), perplexity, dead codes."""
    counts = code_usage(codes, K)
    entropy = level_entropy(codes, K)
    return pd.DataFrame({
        "utilization": (counts > 0).mean(1),
        "entropy_bits": entropy,
        "perplexity": 2.0 ** entropy,
        "dead_codes": (counts == 0).sum(1),
    }, index=pd.Index(np.arange(1, counts.shape[0] + 1), name="level"))


def health_summary(codes: np.ndarray, K: int, X: np.ndarray | None = None, X_hat: np.ndarray | None = None) -> dict:
    """Overall health: mean utilization and entropy over levels, collision rate, unique-id fraction and
    (when ``X`` and its reconstruction are given) the mean squared reconstruction error."""
    levels = level_health(codes, K)
    out = {
        "utilization": float(levels["utilization"].mean()),
        "entropy_bits": float(levels["entropy_bits"].mean()),
        "collision_rate": collision_rate(codes),
        "unique_fraction": unique_fraction(codes),
    }
    if X is not None and X_hat is not None:
        out["recon_mse"] = float(((np.asarray(X) - np.asarray(X_hat)) ** 2).mean())
    return out


def attribute_purity(codes: np.ndarray, labels) -> float:
    """Purity of one level's codes ``(n,)`` against categorical ``labels`` ``(n,)``: the share of items
    whose label is the majority label of their code."""
    table = pd.crosstab(np.asarray(codes).ravel(), np.asarray(labels))
    return float(table.max(axis=1).sum() / table.values.sum())


def attribute_scores(codes: np.ndarray, attributes: pd.DataFrame) -> pd.DataFrame:
    """Purity and NMI of every level's codes against every attribute column: a frame indexed by
    ``(level, attribute)``. NMI uses scikit-learn's arithmetic normalisation."""
    from sklearn.metrics import normalized_mutual_info_score

    codes = np.asarray(codes)
    rows = []
    for level in range(codes.shape[1]):
        for attr in attributes.columns:
            labels = attributes[attr].to_numpy()
            rows.append({"level": level + 1, "attribute": attr,
                         "purity": attribute_purity(codes[:, level], labels),
                         "nmi": normalized_mutual_info_score(labels, codes[:, level])})
    return pd.DataFrame(rows).set_index(["level", "attribute"])


def compare_tokenizers(tokenizers: dict[str, object], inputs: dict[str, np.ndarray] | np.ndarray) -> pd.DataFrame:
    """MMQ-Table-1 style comparison: one row per fitted tokenizer with reconstruction error, mean entropy,
    mean utilization, collision rate and unique-id fraction. ``inputs`` is one feature matrix for all, or a
    mapping name -> the matrix that tokenizer takes."""
    rows = {}
    for name, tok in tokenizers.items():
        X = inputs[name] if isinstance(inputs, dict) else inputs
        codes = tok.encode(X)
        rows[name] = {**health_summary(codes, tok.K, X, tok.reconstruct(X)), "L": codes.shape[1], "K": tok.K}
    cols = ["recon_mse", "entropy_bits", "utilization", "collision_rate", "unique_fraction", "L", "K"]
    return pd.DataFrame.from_dict(rows, orient="index")[cols]


def code_case_study(codes: np.ndarray, attributes: pd.DataFrame, level: int = 1, top: int = 5,
                    min_items: int = 5) -> pd.DataFrame:
    """For the ``top`` codes of one level (1-based) with at least ``min_items`` items, the attribute value that
    best explains each code and its purity (share of the code's items that have it), most specific first."""
    codes = np.asarray(codes)[:, level - 1]
    rows = []
    for code in np.unique(codes):
        members = attributes[codes == code]
        if len(members) < min_items:
            continue
        shares = {a: members[a].value_counts(normalize=True) for a in attributes.columns}
        attr = max(shares, key=lambda a: shares[a].iloc[0] - attributes[a].value_counts(normalize=True)
                   .get(shares[a].index[0], 0.0))  # the value most over-represented relative to its base rate
        rows.append({"code": int(code), "items": len(members), "attribute": attr,
                     "value": shares[attr].index[0], "purity": float(shares[attr].iloc[0])})
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    return table.sort_values(["purity", "items"], ascending=False).head(top).reset_index(drop=True)
