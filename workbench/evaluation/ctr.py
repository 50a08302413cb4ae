"""CTR metrics: AUC and group AUC (GAUC)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.stats


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties count one half). ``labels``: 0/1 ``(n,)``."""
    labels = np.asarray(labels).astype(bool)
    n1 = labels.sum()
    n0 = len(labels) - n1
    if n1 == 0 or n0 == 0:
        raise ValueError(f"AUC needs both classes; got {n1} positives and {n0} negatives")
    ranks = scipy.stats.rankdata(scores)
    return float((ranks[labels].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def gauc(users: np.ndarray, labels: np.ndarray, scores: np.ndarray) -> float:
    """Group AUC: per-user AUC weighted by the user's number of samples, over users with both classes
    (the convention of DIN and of MMQ's CTR evaluation)."""
    df = pd.DataFrame({"u": np.asarray(users), "y": np.asarray(labels).astype(bool), "s": np.asarray(scores)})
    df["r"] = df.groupby("u")["s"].rank(method="average")  # ranks within each user, ties averaged
    df["r_pos"] = np.where(df["y"], df["r"], 0.0)
    g = df.groupby("u").agg(n=("y", "size"), n1=("y", "sum"), r1=("r_pos", "sum"))
    g["n0"] = g["n"] - g["n1"]
    g = g[(g["n1"] > 0) & (g["n0"] > 0)]
    if g.empty:
        raise ValueError("GAUC needs at least one user with both positive and negative samples")
    per_user = (g["r1"] - g["n1"] * (g["n1"] + 1) / 2) / (g["n1"] * g["n0"])
    return float((per_user * g["n"]).sum() / g["n"].sum())
