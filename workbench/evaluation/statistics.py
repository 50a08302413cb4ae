"""Significance and confidence: t-intervals over seeds, bootstrap CIs over users, paired tests of two reports."""
from __future__ import annotations

import numpy as np
import scipy.stats

from .ranking import RankingReport


def t_halfwidth(values: np.ndarray, confidence: float = 0.95) -> float:
    """Half-width of the Student-t interval of the mean of ``values`` ``(n,)`` (NaNs ignored; e.g. one value per
    seed): ``t_{n-1} * sd / sqrt(n)``; NaN with fewer than two values."""
    import scipy.stats

    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    if len(values) < 2:
        return float("nan")
    return float(scipy.stats.t.ppf(0.5 + confidence / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values)))


def bootstrap_ci(values: np.ndarray, n_boot: int = 2000, alpha: float = 0.05, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI ``(lo, hi)`` of the mean of ``values`` ``(n,)`` (resampling users)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        raise ValueError("bootstrap_ci needs at least one value")
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    chunk = max(1, 2_000_000 // len(values))
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        idx = rng.integers(0, len(values), size=(stop - start, len(values)))
        means[start:stop] = values[idx].mean(1)
    return float(np.quantile(means, alpha / 2)), float(np.quantile(means, 1 - alpha / 2))


def paired_test(a: RankingReport, b: RankingReport, metric: str, n_boot: int = 2000, seed: int = 0) -> dict[str, float]:
    """Compare two models on the same users: mean difference ``a - b`` of ``metric``, paired t-test and
    Wilcoxon signed-rank p-values, and a bootstrap 95% CI of the mean difference (:func:`paired_values`)."""
    if not np.array_equal(a.users, b.users):
        common, ia, ib = np.intersect1d(a.users, b.users, return_indices=True)
        if len(common) == 0:
            raise ValueError("the two reports share no evaluated user")
        x, y = a.per_user[metric][ia], b.per_user[metric][ib]
    else:
        x, y = a.per_user[metric], b.per_user[metric]
    return paired_values(x, y, n_boot, seed)


def paired_values(x: np.ndarray, y: np.ndarray, n_boot: int = 2000, seed: int = 0) -> dict[str, float]:
    """Two models' values on the same users ``(n,)`` each: means, the mean difference ``x - y`` with a bootstrap
    95% CI, paired t-test and Wilcoxon signed-rank p-values (1.0 when every difference is 0)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or not len(x):
        raise ValueError(f"paired values need two non-empty arrays of one shape, got {x.shape} and {y.shape}")
    diff = x - y
    nonzero = np.any(diff != 0)
    lo, hi = bootstrap_ci(diff, n_boot=n_boot, seed=seed)
    return {
        "mean_a": float(x.mean()),
        "mean_b": float(y.mean()),
        "diff": float(diff.mean()),
        "ci_low": lo,
        "ci_high": hi,
        "t_pvalue": float(scipy.stats.ttest_rel(x, y).pvalue) if nonzero else 1.0,
        "wilcoxon_pvalue": float(scipy.stats.wilcoxon(x, y).pvalue) if nonzero else 1.0,
        "users": int(len(diff)),
    }
