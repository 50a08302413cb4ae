"""CTR metrics: AUC, log loss, group AUC (GAUC) under an explicit weighting, AUC per item stratum, and a paired bootstrap
over users for AUC differences.

* **AUC** is the Mann-Whitney statistic: the share of (positive, negative) pairs the scores order correctly, a
  tied pair counting one half. :func:`weighted_auc` computes it for many weightings of the same rows at once
  (one sort, per-tie-group sums, cumulative sums), which is what a bootstrap over users needs.
* **GAUC** averages per-user AUCs over the users that have both classes; ``weighting`` says how:
  ``"impressions"`` (each user's number of rows: DIN and MMQ), ``"uniform"`` (every user alike) or
  ``"positives"`` (each user's number of positives). Users with one class are skipped and counted
  (:func:`gauc_report`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

GAUC_WEIGHTINGS = ("impressions", "uniform", "positives")


def weighted_auc(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray | float:
    """AUC with row weights (ties count one half). ``weights``: ``None`` (all 1), ``(n,)`` or ``(R, n)`` for R
    weightings at once (returns ``(R,)``). A pair's weight is the product of its two rows' weights."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    if labels.shape != scores.shape or labels.ndim != 1:
        raise ValueError(f"labels and scores must be (n,) arrays of one length, got {labels.shape} and {scores.shape}")
    single = weights is None or np.ndim(weights) == 1
    w = np.ones((1, len(scores))) if weights is None else np.atleast_2d(np.asarray(weights, dtype=np.float64))
    if w.shape[1] != len(scores):
        raise ValueError(f"weights have {w.shape[1]} columns for {len(scores)} rows")
    order = np.argsort(scores, kind="stable")
    sorted_scores, y, w = scores[order], labels[order], w[:, order]
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])   # tie groups
    pos = np.add.reduceat(w * y, starts, axis=1)
    neg = np.add.reduceat(w * ~y, starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg                                              # negatives scored lower
    total_pos, total_neg = pos.sum(1), neg.sum(1)
    if (total_pos <= 0).any() or (total_neg <= 0).any():
        raise ValueError(f"AUC needs both classes; got {int(labels.sum())} positives and "
                         f"{int((~labels).sum())} negatives (or a weighting that removes one class)")
    out = (pos * (below + 0.5 * neg)).sum(1) / (total_pos * total_neg)
    return float(out[0]) if single else out


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties count one half). ``labels``: 0/1 ``(n,)``."""
    return weighted_auc(labels, scores)


def log_loss(labels: np.ndarray, probabilities: np.ndarray, eps: float = 1e-7) -> float:
    """Mean binary cross-entropy of click probabilities (clipped to ``[eps, 1 - eps]``)."""
    y = np.asarray(labels, dtype=np.float64)
    p = np.clip(np.asarray(probabilities, dtype=np.float64), eps, 1 - eps)
    if y.shape != p.shape or y.ndim != 1 or not len(y):
        raise ValueError(f"labels and probabilities must be non-empty (n,) arrays of one length, got {y.shape} "
                         f"and {p.shape}")
    return float(-(y * np.log(p) + (1 - y) * np.log1p(-p)).mean())


def _per_user(users, labels, scores) -> pd.DataFrame:
    df = pd.DataFrame({"u": np.asarray(users), "y": np.asarray(labels).astype(bool),
                       "s": np.asarray(scores, dtype=np.float64)})
    df["r"] = df.groupby("u")["s"].rank(method="average")       # ranks within each user, ties averaged
    df["r_pos"] = np.where(df["y"], df["r"], 0.0)
    g = df.groupby("u").agg(n=("y", "size"), n1=("y", "sum"), r1=("r_pos", "sum"))
    g["n0"] = g["n"] - g["n1"]
    g["auc"] = (g["r1"] - g["n1"] * (g["n1"] + 1) / 2) / (g["n1"] * g["n0"]).where((g["n1"] > 0) & (g["n0"] > 0))
    return g


def gauc_report(users, labels, scores, weighting: str = "impressions") -> dict:
    """GAUC (module doc) with the users it scored and skipped: ``{"gauc", "weighting", "users_scored",
    "users_skipped", "rows_skipped"}``."""
    if weighting not in GAUC_WEIGHTINGS:
        raise ValueError(f"weighting must be one of {GAUC_WEIGHTINGS}, got {weighting!r}")
    g = _per_user(users, labels, scores)
    scored = g[g["auc"].notna()]
    if scored.empty:
        raise ValueError("GAUC needs at least one user with both positive and negative samples")
    w = {"impressions": scored["n"], "uniform": pd.Series(1.0, index=scored.index),
         "positives": scored["n1"]}[weighting].astype(float)
    return {"gauc": float((scored["auc"] * w).sum() / w.sum()), "weighting": weighting,
            "users_scored": int(len(scored)), "users_skipped": int(len(g) - len(scored)),
            "rows_skipped": int(g.loc[g["auc"].isna(), "n"].sum())}


def gauc(users, labels, scores, weighting: str = "impressions") -> float:
    """Group AUC over the users with both classes, weighted by ``weighting`` (module doc; default: each user's
    number of rows, the convention of DIN and of MMQ's CTR evaluation)."""
    return gauc_report(users, labels, scores, weighting)["gauc"]


def auc_by_stratum(labels, scores, items, strata: dict[str, np.ndarray]) -> dict[str, float]:
    """AUC of the rows whose item is in each stratum; ``strata``: name -> boolean mask over item ids (e.g. the top
    and bottom 25% of items by training impressions, cold items). A stratum with one class gives NaN."""
    labels, scores, items = np.asarray(labels).astype(bool), np.asarray(scores), np.asarray(items)
    out = {}
    for name, mask in strata.items():
        rows = np.asarray(mask, dtype=bool)[items]
        y = labels[rows]
        out[name] = weighted_auc(y, scores[rows]) if 0 < y.sum() < len(y) else float("nan")
    return out


def paired_bootstrap_auc(users, labels, scores_a, scores_b, n_boot: int = 1000, seed: int = 0,
                         level: float = 0.95, chunk: int = 100) -> dict:
    """AUC(a) - AUC(b) on the same rows, with a percentile interval from resampling users with replacement (each
    draw weights every row by how often its user was drawn; both models see the same draws). ``chunk`` draws are
    scored at once (fewer on large row counts)."""
    _, user_index = np.unique(np.asarray(users), return_inverse=True)
    n_users = int(user_index.max()) + 1
    rng = np.random.default_rng(seed)
    chunk = max(1, min(chunk, 20_000_000 // max(len(user_index), 1)))   # (chunk, n) weights stay near 160 MB
    diffs = []
    for start in range(0, n_boot, chunk):
        counts = rng.multinomial(n_users, np.full(n_users, 1.0 / n_users), size=min(chunk, n_boot - start))
        w = counts[:, user_index].astype(np.float64)                                  # (R, n) row weights
        diffs.append(weighted_auc(labels, scores_a, w) - weighted_auc(labels, scores_b, w))
    diffs = np.concatenate(diffs)
    diff = weighted_auc(labels, scores_a) - weighted_auc(labels, scores_b)
    lo, hi = np.quantile(diffs, [(1 - level) / 2, (1 + level) / 2])
    return {"diff": float(diff), "ci_low": float(lo), "ci_high": float(hi),
            "share_above_zero": float((diffs > 0).mean()), "n_boot": int(n_boot), "users": n_users}
