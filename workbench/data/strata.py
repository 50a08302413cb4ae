"""Item strata by training degree: the cold-start groups of the three papers.

* :func:`degree_strata`: 0 (zero-shot), 1-4, 5-9, >=10 training interactions (edges configurable).
* :func:`cold_mask`: MoToRec's cold items have fewer than ``tau = 10`` training interactions
  (``inclusive=False``); CEMG's have at most 5 (``tau=5, inclusive=True``).
* :func:`popularity_quartiles`: MMQ's popular (top 25%) and long-tail (bottom 25%) items by training degree.
* :func:`gini` and :func:`cold_start_profile`: how long-tailed a split is (to compare a catalogue with real data).

Each returns boolean item masks keyed by a readable name, ready for the evaluator's ``strata`` argument.
"""
from __future__ import annotations

import numpy as np

DEFAULT_EDGES = (1, 5, 10)


def degree_strata(degree: np.ndarray, edges: tuple[int, ...] = DEFAULT_EDGES) -> dict[str, np.ndarray]:
    """Masks ``(n_items,)`` for ``degree == 0`` and the half-open ranges between ``edges``.

    >>> {k: v.tolist() for k, v in degree_strata(np.array([0, 3, 7, 12])).items()}
    {'0': [True, False, False, False], '1-4': [False, True, False, False], '5-9': [False, False, True, False], '>=10': [False, False, False, True]}
    """
    degree = np.asarray(degree)
    if list(edges) != sorted(set(edges)) or edges[0] < 1:
        raise ValueError(f"edges must be strictly increasing integers >= 1, got {edges}")
    strata = {"0": degree == 0}
    bounds = list(edges)
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        strata[f"{lo}-{hi - 1}"] = (degree >= lo) & (degree < hi)
    strata[f">={bounds[-1]}"] = degree >= bounds[-1]
    return strata


def cold_mask(degree: np.ndarray, tau: int = 10, inclusive: bool = False) -> np.ndarray:
    """Cold items: ``degree < tau`` (MoToRec, tau=10) or ``degree <= tau`` (CEMG, tau=5, inclusive)."""
    degree = np.asarray(degree)
    return degree <= tau if inclusive else degree < tau


def popularity_quartiles(degree: np.ndarray, fraction: float = 0.25, seed: int = 0) -> dict[str, np.ndarray]:
    """Masks for the top and bottom ``fraction`` of items by degree (ties broken at random by ``seed``)."""
    degree = np.asarray(degree)
    n = len(degree)
    k = int(round(fraction * n))
    tiebreak = np.random.default_rng(seed).random(n)
    order = np.lexsort((tiebreak, degree))  # ascending degree
    popular = np.zeros(n, dtype=bool)
    tail = np.zeros(n, dtype=bool)
    popular[order[n - k:]] = True
    tail[order[:k]] = True
    return {"popular": popular, "long_tail": tail}


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative ``values`` (e.g. item degrees): 0 when all are equal, towards 1 when
    one item takes everything.

    >>> gini(np.array([1, 1, 1, 1])), gini(np.array([0, 0, 0, 4]))
    (0.0, 0.75)
    """
    x = np.sort(np.asarray(values, dtype=np.float64))
    if x.ndim != 1 or not len(x) or x.min() < 0 or x.sum() == 0:
        raise ValueError("gini needs a non-empty 1-D array of non-negative values with a positive sum")
    n = len(x)
    return float((2 * np.arange(1, n + 1) - n - 1).dot(x) / (n * x.sum()))


def cold_start_profile(train_degree: np.ndarray, test_items: np.ndarray, tau: int = 10) -> dict[str, float]:
    """How long-tailed a split is, in the numbers that decide a cold-start study: the Gini of the items'
    training degrees, the share of items with fewer than ``tau`` training interactions (cold), the share of
    test interactions that go to them, and the share of zero-shot items. ``train_degree`` ``(n_items,)``;
    ``test_items`` the item id of every test interaction."""
    cold = cold_mask(train_degree, tau)
    test_items = np.asarray(test_items)
    return {"item-degree Gini": gini(train_degree), f"items with < {tau} train interactions": float(cold.mean()),
            "their share of test interactions": float(cold[test_items].mean()) if len(test_items) else np.nan,
            "zero-shot items": float((np.asarray(train_degree) == 0).mean())}
