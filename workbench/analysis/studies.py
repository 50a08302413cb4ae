"""Multi-seed model comparisons for the notebooks (MoToRec's Table 2, Table 3, Fig. 3, 4 and 7): train several
graph models over seeds with one protocol, collect overall / cold / per-stratum test metrics, timings, and
compare two models' cold-start metric with confidence intervals.

Budgets per profile live in :data:`STUDY_PRESETS` (``smoke`` for CI, ``default`` for the committed notebooks,
``paper`` for longer runs)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..core.config import preset
from ..data.dataset import TRAIN, RecDataset
from ..data.strata import cold_mask, degree_strata
from ..evaluation.ranking import RankingReport, evaluate_ranking
from ..evaluation.statistics import paired_test, t_halfwidth
from ..models.base import make_model


@dataclass(frozen=True)
class StudyConfig:
    """One protocol for every model of a study: Adam at ``lr``, at most ``epochs`` epochs, early stopping on
    validation Recall@20 with ``patience``; ``seeds`` for the main comparison; shorter budgets for the ablation
    and sensitivity grids; ``motorec``: MoToRec options for this profile."""

    seeds: tuple[int, ...] = (0, 1, 2)
    epochs: int = 40
    lr: float = 5e-3
    patience: int = 20
    ablation_epochs: int = 30
    grid_epochs: int = 20
    gamma_grid: tuple[float, ...] = (0.0, 0.05, 0.2)   # sparsity weights of the sensitivity grid (Fig. 4)
    K_grid: tuple[int, ...] = (64, 256)                 # codebook sizes of the sensitivity grid
    motorec: dict = field(default_factory=dict)


STUDY_PRESETS = {
    "smoke": StudyConfig(seeds=(0,), epochs=40, patience=20, ablation_epochs=15, grid_epochs=8,
                         gamma_grid=(0.0, 0.2), K_grid=(16, 32),
                         motorec={"K": 32, "L": 3, "hidden": (64,), "tokenizer_warmup": 2}),
    "default": StudyConfig(epochs=30, ablation_epochs=20, grid_epochs=12,
                           motorec={"K": 256, "tokenizer_warmup": 5}),
    "paper": StudyConfig(seeds=(0, 1, 2, 3, 4), epochs=300, ablation_epochs=300, grid_epochs=100,
                         gamma_grid=(0.0, 0.01, 0.05, 0.1, 0.2), K_grid=(256, 512, 1024),
                         motorec={"K": 512}),
}


def study_config(profile: str | None = None, **changes) -> StudyConfig:
    """The study budget of ``profile`` (default: the active one), with ``changes`` applied."""
    return preset(STUDY_PRESETS, profile, **changes)


def evaluation_strata(dataset: RecDataset, tau: int = 10) -> dict[str, np.ndarray]:
    """``cold`` (< ``tau`` training interactions, MoToRec's cold-start group) plus the degree strata."""
    degree = dataset.item_degree(TRAIN)
    return {"cold": cold_mask(degree, tau), **degree_strata(degree)}


@dataclass
class Run:
    """One trained model: its name, seed, the fitted model (``model.history_``, ``model.best_epoch_``), its test
    report (with strata) and the seconds that test evaluation took."""

    name: str
    seed: int
    model: object
    report: RankingReport
    eval_seconds: float

    @property
    def best_epoch(self) -> int:
        return self.model.best_epoch_

    @property
    def seconds_per_epoch(self) -> float:
        """Median training seconds per epoch (validation excluded)."""
        return float(self.model.history_["seconds"].median())


def train_model(name: str, dataset: RecDataset, seed: int, study: StudyConfig, epochs: int | None = None,
                label: str | None = None, callback=None, progress: bool = False, **options) -> Run:
    """Make ``name`` (``options`` go to its config; MoToRec also gets ``study.motorec``), fit it with the study
    protocol (``seed`` drives initialisation, sampling and every other draw), then evaluate the test split once,
    timed, with the :func:`evaluation_strata`."""
    if name == "motorec":
        options = {**study.motorec, **options}
    model = make_model(name, **options).fit(dataset, epochs=epochs or study.epochs, lr=study.lr,
                                            patience=study.patience, seed=seed, callback=callback, progress=progress)
    t0 = time.perf_counter()
    report = model.evaluate(dataset, "test", strata=evaluation_strata(dataset), ks=(10, 20))
    return Run(label or name, seed, model, report, time.perf_counter() - t0)


def run_table(runs: list[Run], metrics=("recall@10", "recall@20", "ndcg@10", "ndcg@20"),
              strata=("cold",)) -> pd.DataFrame:
    """One row per run: overall metrics, ``<stratum> <metric>`` for ``strata``, best epoch and timings."""
    rows = []
    for r in runs:
        row = {"model": r.name, "seed": r.seed, **{m: r.report[m] for m in metrics}}
        for s in strata:
            rep = r.report.strata.get(s)
            for m in ("recall@20", "ndcg@20"):
                row[f"{s} {m}"] = rep[m] if rep is not None else np.nan
        row.update({"best_epoch": r.best_epoch, "sec/epoch": r.seconds_per_epoch,
                    "eval sec": r.eval_seconds, "parameters": r.model.parameter_count()})
        rows.append(row)
    return pd.DataFrame(rows)


def summarize(table: pd.DataFrame, columns: list[str] | None = None, confidence: float = 0.95) -> pd.DataFrame:
    """Mean and a t-interval half-width over seeds per model: ``"0.1234 ± 0.0056"`` strings (``n`` = seeds;
    one seed gives the value alone)."""
    columns = columns or [c for c in table.columns if c not in ("model", "seed")]
    out = {}
    for model, group in table.groupby("model", sort=False):
        cells = {}
        for c in columns:
            values = group[c].to_numpy(dtype=float)
            mean = np.nanmean(values)
            if len(values) > 1:
                cells[c] = f"{mean:.4f} ± {t_halfwidth(values, confidence):.4f}"
            else:
                cells[c] = f"{mean:.4f}"
        out[model] = {"seeds": len(group), **cells}
    return pd.DataFrame.from_dict(out, orient="index")


def compare_runs(runs: list[Run], a: str, b: str, stratum: str | None = "cold", metric: str = "recall@20",
                 report_of: Callable[[Run], RankingReport] | None = None) -> dict:
    """Model ``a`` against ``b`` on ``metric`` (in ``stratum``, or overall if ``None``): per seed the paired
    difference over users with a bootstrap 95% CI and paired-test p-values; across seeds the mean difference
    with a t-interval. ``report_of(run)`` picks another report than the run's test report (e.g. a
    :func:`restricted_report`)."""
    by_seed = {}
    for r in runs:
        by_seed.setdefault(r.seed, {})[r.name] = r
    per_seed = []
    for seed, pair in sorted(by_seed.items()):
        if a not in pair or b not in pair:
            continue
        ra, rb = (pair[a].report, pair[b].report) if report_of is None else (report_of(pair[a]), report_of(pair[b]))
        if stratum is not None:
            ra, rb = ra.strata[stratum], rb.strata[stratum]
        per_seed.append({"seed": seed, **paired_test(ra, rb, metric)})
    if not per_seed:
        raise ValueError(f"no seed has runs of both {a!r} and {b!r}")
    frame = pd.DataFrame(per_seed).set_index("seed")
    diffs = frame["diff"].to_numpy()
    summary = {"a": a, "b": b, "stratum": stratum or "overall", "metric": metric, "seeds": len(diffs),
               "mean_a": float(frame["mean_a"].mean()), "mean_b": float(frame["mean_b"].mean()),
               "mean_diff": float(diffs.mean()), "relative": float(diffs.mean() / frame["mean_b"].mean())
               if frame["mean_b"].mean() else np.nan}
    if len(diffs) > 1:
        half = t_halfwidth(diffs)
        summary.update(ci_low=float(diffs.mean() - half), ci_high=float(diffs.mean() + half))
    else:
        summary.update(ci_low=float(frame["ci_low"].iloc[0]), ci_high=float(frame["ci_high"].iloc[0]))
    return {"summary": summary, "per_seed": frame}


def restricted_report(dataset: RecDataset, model, items: np.ndarray, split: str = "test",
                      ks=(10, 20)) -> RankingReport:
    """Ranking among ``items`` only (boolean mask ``(n_items,)``): every other item is removed from the
    candidates and the ground truth is restricted to ``items``. Separates "does the model order the cold items
    sensibly?" from "can a cold item beat the popular ones in a full ranking?"."""
    items = np.asarray(items, dtype=bool)
    if items.shape != (dataset.n_items,) or not items.any():
        raise ValueError(f"items must be a non-empty boolean mask of shape ({dataset.n_items},)")
    scorer = model.scorer()
    full = sp.csr_matrix(dataset.matrix(split).multiply(items[None, :].astype(np.float32)))
    full.eliminate_zeros()
    k_max = int(min(max(ks), items.sum()))
    return evaluate_ranking(scorer, full, exclude=dataset.matrix(TRAIN), ks=[k for k in ks if k <= k_max] or [k_max],
                            metrics=("recall", "ndcg"), device=scorer.device, candidates=items,
                            name=type(model).__name__)
