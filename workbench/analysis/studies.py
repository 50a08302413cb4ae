"""Multi-seed model comparisons for the notebooks (MoToRec's Table 2, Table 3, Fig. 3, 4 and 7): train several
graph models over seeds with one protocol, collect overall / cold / per-stratum test metrics, timings, and
compare two models' cold-start metric with confidence intervals.

Every cold-start number comes with its references (:func:`cold_start_metrics`, :func:`reference_runs`,
:func:`chance_metrics`, :func:`cold_start_summary`): a random ranking (chance), popularity, and on generated data
the oracle (the generator's own choice propensities, the ceiling); each stratum is scored both in the full
ranking and with its items ranked among themselves. Learning rate and L2 weight are chosen per model on
validation (:func:`tune_model`; the chosen values live in :data:`TUNED`).

Budgets per profile live in :data:`STUDY_PRESETS` (``smoke`` for CI, ``default`` for the committed notebooks,
``paper`` for longer runs)."""
from __future__ import annotations

import time
import itertools
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..core.config import preset
from ..data.dataset import TEST, TRAIN, RecDataset
from ..data.strata import cold_mask, degree_strata
from ..evaluation.ranking import RankingReport, evaluate_ranking
from ..evaluation.statistics import paired_test, t_halfwidth
from ..models.base import make_model


@dataclass(frozen=True)
class StudyConfig:
    """One protocol for every model of a study: Adam, at most ``epochs`` epochs, early stopping on validation
    Recall@20 with ``patience`` (short enough to stop within the budget); ``seeds`` for the main comparison;
    shorter budgets for the ablation and sensitivity grids; ``motorec``: MoToRec options for this profile;
    ``tuned``: per model, the learning rate and options chosen on validation (``lr`` for a model not listed)."""

    seeds: tuple[int, ...] = (0, 1, 2)
    epochs: int = 40
    lr: float = 5e-3
    patience: int = 20
    tuned: dict = field(default_factory=dict)
    ablation_epochs: int = 30
    grid_epochs: int = 20
    gamma_grid: tuple[float, ...] = (0.0, 0.05, 0.2)   # sparsity weights of the sensitivity grid (Fig. 4)
    K_grid: tuple[int, ...] = (64, 256)                 # codebook sizes of the sensitivity grid
    motorec: dict = field(default_factory=dict)


# Learning rate and L2 weight per model, chosen on validation by `python -m workbench.bench tune` on the default
# catalogue (figures/benchmarks/bench-tune.json, rendered in BENCHMARKS.md)
TUNED = {"mf-bpr": {"lr": 1e-3, "reg_weight": 1e-4}, "lightgcn": {"lr": 5e-3, "reg_weight": 1e-4},
         "vbpr": {"lr": 1e-3, "reg_weight": 1e-3}, "freedom": {"lr": 5e-3, "reg_weight": 1e-3},
         "motorec": {"lr": 5e-3, "reg_weight": 1e-3}}

STUDY_PRESETS = {
    "smoke": StudyConfig(seeds=(0,), epochs=40, patience=20, ablation_epochs=15, grid_epochs=8,
                         gamma_grid=(0.0, 0.2), K_grid=(16, 32),
                         motorec={"K": 32, "L": 3, "hidden": (64,), "tokenizer_warmup": 2}),
    "default": StudyConfig(seeds=(0, 1, 2, 3, 4), epochs=60, patience=10, ablation_epochs=40, grid_epochs=30,
                           motorec={"K": 256, "tokenizer_warmup": 5}, tuned=TUNED),
    "paper": StudyConfig(seeds=(0, 1, 2, 3, 4), epochs=300, ablation_epochs=300, grid_epochs=100,
                         gamma_grid=(0.0, 0.01, 0.05, 0.1, 0.2), K_grid=(256, 512, 1024),
                         motorec={"K": 512}, tuned=TUNED),
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
    """Make ``name`` (``options`` go to its config, ``lr`` to the optimizer; MoToRec also gets
    ``study.motorec``, every model its ``study.tuned`` entry, which ``options`` override), fit it with the study
    protocol (``seed`` drives initialisation, sampling and every other draw), then evaluate the test split once,
    timed, with the :func:`evaluation_strata`."""
    tuned = dict(study.tuned.get(name, {}))
    lr = options.pop("lr", tuned.pop("lr", study.lr))
    options = {**(study.motorec if name == "motorec" else {}), **tuned, **options}
    model = make_model(name, **options).fit(dataset, epochs=epochs or study.epochs, lr=lr,
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
    k_max = int(min(max(ks), items.sum()))
    return evaluate_ranking(scorer, _stratum_matrix(dataset, items, split), exclude=dataset.matrix(TRAIN),
                            ks=[k for k in ks if k <= k_max] or [k_max], metrics=("recall", "ndcg"),
                            device=getattr(scorer, "device", None), candidates=items, name=type(model).__name__)


# ------------------------------------------------------------------------------------ hyper-parameter choice
DEFAULT_GRID = {"lr": (1e-3, 5e-3, 1e-2), "reg_weight": (1e-4, 1e-3)}
TIE_TOLERANCE = 0.01  # validation R@20 within 1% of the best counts as a tie (seed noise is larger, see notebook 02)


def tune_model(name: str, dataset: RecDataset, seed: int, study: StudyConfig, grid: dict | None = None,
               epochs: int | None = None, tolerance: float | None = None, **options) -> tuple[dict, pd.DataFrame]:
    """Train ``name`` once per combination of ``grid`` (option -> values; ``lr`` is the optimizer's, the rest
    config options; default :data:`DEFAULT_GRID`, the paper's learning-rate grid is {1e-3, 5e-4, 1e-4}) and
    keep the combination with the best **validation** Recall@20 (the test split is never read; near-ties go to
    the cheaper run, :func:`choose_combination`). Returns ``(chosen options, one row per combination with its
    validation R@20, best epoch and epochs run)``."""
    grid = grid or DEFAULT_GRID
    tolerance = TIE_TOLERANCE if tolerance is None else tolerance
    names = list(grid)
    rows = []
    for values in itertools.product(*(grid[n] for n in names)):
        combo = dict(zip(names, values))
        lr = combo.get("lr", study.lr)
        config = {**(study.motorec if name == "motorec" else {}), **options,
                  **{k: v for k, v in combo.items() if k != "lr"}}
        model = make_model(name, **config).fit(dataset, epochs=epochs or study.epochs, lr=lr,
                                               patience=study.patience, seed=seed, progress=False)
        rows.append({**combo, "valid recall@20": model.valid_["recall@20"], "best_epoch": model.best_epoch_,
                     "epochs_run": len(model.history_)})
    table = pd.DataFrame(rows)
    return choose_combination(table, names, tolerance), table


def choose_combination(table: pd.DataFrame, names: list[str], tolerance: float = TIE_TOLERANCE) -> dict:
    """The row of ``table`` (one per combination, with ``valid recall@20`` and ``epochs_run``) to keep: the best
    validation Recall@20, except that among the combinations within ``tolerance`` (relative) of the best, the one
    that ran the fewest epochs wins (ties within seed noise go to the cheaper run; then the table's order).
    Returns its ``names`` columns as a dict."""
    valid = table["valid recall@20"].to_numpy(dtype=float)
    close = table[valid >= (1 - tolerance) * valid.max()]
    best = close.loc[close["epochs_run"].idxmin(), names].to_dict()
    return {k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in best.items()}


# ------------------------------------------------------------------------------------- cold-start references
def _stratum_matrix(dataset: RecDataset, items: np.ndarray, split=TEST) -> sp.csr_matrix:
    """The ``split``'s interactions with ``items`` (boolean mask) only."""
    full = sp.csr_matrix(dataset.matrix(split).multiply(np.asarray(items, dtype=np.float32)[None, :]))
    full.eliminate_zeros()
    return full


def cold_start_metrics(dataset: RecDataset, model, strata: dict[str, np.ndarray], k: int = 20,
                       split=TEST) -> dict[str, float]:
    """One model's Recall@k on ``split``: ``"overall"``, and per stratum ``"<s> full"`` (the stratum's test items
    in the ranking of every item) and ``"<s> among"`` (the stratum's items ranked among themselves, every other
    item removed, :func:`restricted_report`). ``model`` is any fitted recommender (``scorer()``). A stratum of at
    most ``k`` items gets ``NaN`` for ``"<s> among"``: every ranking of it puts all its items in the top ``k``, so
    the number would be 1.0 for any model and say nothing."""
    scorer = model.scorer()
    device = getattr(scorer, "device", None)
    train = dataset.matrix(TRAIN)
    report = evaluate_ranking(scorer, dataset.matrix(split), exclude=train, ks=(k,), metrics=("recall",),
                              strata=strata, device=device, name=type(model).__name__)
    out = {"overall": report[f"recall@{k}"]}
    for s, items in strata.items():
        items = np.asarray(items, dtype=bool)
        gt = _stratum_matrix(dataset, items, split)
        if s not in report.strata or gt.nnz == 0:
            out[f"{s} full"] = out[f"{s} among"] = np.nan
            continue
        out[f"{s} full"] = report.strata[s][f"recall@{k}"]
        if items.sum() <= k:  # trivial: the whole stratum fits in the top k
            out[f"{s} among"] = np.nan
            continue
        among = evaluate_ranking(scorer, gt, exclude=train, ks=(k,), metrics=("recall",),
                                 candidates=items, device=device, name=type(model).__name__)
        out[f"{s} among"] = next(iter(among.metrics.values()))
    return out


def chance_metrics(dataset: RecDataset, strata: dict[str, np.ndarray], k: int = 20, split=TEST) -> dict[str, float]:
    """The expected :func:`cold_start_metrics` of a uniformly random ranking, computed exactly: a user's
    relevant item lands in the top ``k`` of ``n`` unseen candidates with probability ``min(1, k / n)``, so the
    user's expected recall is that number; averaged over the users evaluated (``"<s> among"`` is ``NaN`` for a
    stratum of at most ``k`` items, as in :func:`cold_start_metrics`)."""
    train = dataset.matrix(TRAIN)

    def expected(gt: sp.csr_matrix, candidates: np.ndarray | None) -> float:
        users = np.flatnonzero(np.diff(gt.indptr) > 0)
        seen = train[users]
        if candidates is None:
            n = dataset.n_items - np.diff(seen.indptr)
        else:
            n = candidates.sum() - np.asarray(seen[:, candidates].sum(1)).ravel()
        return float(np.mean(np.minimum(1.0, k / np.maximum(n, 1)))) if len(users) else np.nan

    out = {"overall": expected(dataset.matrix(split), None)}
    for s, items in strata.items():
        items = np.asarray(items, dtype=bool)
        gt = _stratum_matrix(dataset, items, split)
        out[f"{s} full"] = expected(gt, None)
        out[f"{s} among"] = expected(gt, items) if items.sum() > k else np.nan
    return out


def reference_runs(dataset: RecDataset, strata: dict[str, np.ndarray], seeds=(0,), k: int = 20,
                   split=TEST) -> pd.DataFrame:
    """:func:`cold_start_metrics` rows (``model``, ``seed``, metrics) of the references: ``random`` (one row per
    seed), ``popularity``, and ``oracle`` when the dataset has a choice model (generated data)."""
    rows = []
    for name, model_seeds in (("random", seeds), ("popularity", seeds[:1]), ("oracle", seeds[:1])):
        if name == "oracle" and dataset.choice_model is None:
            continue
        for seed in model_seeds:
            model = make_model(name, **({"seed": seed} if name == "random" else {})).fit(dataset)
            rows.append({"model": name, "seed": seed, **cold_start_metrics(dataset, model, strata, k, split)})
    return pd.DataFrame(rows)


def cold_start_summary(rows: pd.DataFrame, chance: dict[str, float], confidence: float = 0.95) -> pd.DataFrame:
    """Per model (rows of :func:`cold_start_metrics` with ``model`` and ``seed`` columns) and metric: the mean
    over seeds, the t-interval half-width, the lift over chance (mean / chance) and, when an ``oracle`` row is
    present, the share of the oracle (mean / oracle's mean). Long format: one row per (model, metric), with a
    ``chance`` model row first."""
    metrics = [c for c in rows.columns if c not in ("model", "seed")]
    means = rows.groupby("model", sort=False)[metrics].mean()
    oracle = means.loc["oracle"] if "oracle" in means.index else None
    out = [{"model": "chance", "metric": m, "seeds": 0, "mean": chance[m], "halfwidth": 0.0, "lift": 1.0,
            "oracle share": chance[m] / oracle[m] if oracle is not None and oracle[m] else np.nan}
           for m in metrics]
    for model, group in rows.groupby("model", sort=False):
        for m in metrics:
            values = group[m].to_numpy(dtype=float)
            mean = float(np.nanmean(values)) if np.isfinite(values).any() else np.nan
            out.append({"model": model, "metric": m, "seeds": len(values), "mean": mean,
                        "halfwidth": float(t_halfwidth(values, confidence)) if len(values) > 1 else 0.0,
                        "lift": mean / chance[m] if chance.get(m) else np.nan,
                        "oracle share": mean / oracle[m] if oracle is not None and oracle[m] else np.nan})
    return pd.DataFrame(out)


def calibration_row(dataset: RecDataset, study: StudyConfig, seed: int = 0, tau: int = 10) -> dict[str, float]:
    """The numbers a synthetic catalogue is calibrated on, for one split ``dataset``: the
    :func:`~workbench.data.strata.cold_start_profile` (item-degree Gini, share of cold items, their share of test
    interactions, zero-shot share), popularity's and LightGCN's test Recall@20 (LightGCN trained with the
    ``study`` protocol and ``seed``) and their ratio."""
    from ..data.strata import cold_start_profile

    row = cold_start_profile(dataset.item_degree(TRAIN), dataset.part(TEST)["item_id"].to_numpy(), tau)
    pop = make_model("popularity").fit(dataset).evaluate(dataset, "test", ks=(20,), metrics=("recall",))
    lightgcn = train_model("lightgcn", dataset, seed, study).report
    row.update({"popularity R@20": pop["recall@20"], "LightGCN R@20": lightgcn["recall@20"],
                "popularity / LightGCN": pop["recall@20"] / lightgcn["recall@20"]})
    return row


# ------------------------------------------------------------------------------------------------ grids
def grid_runs(dataset: RecDataset, study: StudyConfig, variants: dict[str, tuple[str, dict]], seeds=None,
              strata: dict[str, np.ndarray] | None = None, epochs: int | None = None, progress=None) -> pd.DataFrame:
    """Train every variant (label -> ``(model name, options)``) with every seed (default ``study.seeds``) by
    :func:`train_model`, and score each with :func:`cold_start_metrics` on ``strata`` (default: MoToRec's cold
    items and the zero-shot items). One row per run: ``variant``, ``seed``, the metrics, ``best_epoch``,
    ``sec/epoch``. ``progress(label, seed)`` is called before each run (e.g. a progress bar's update)."""
    if strata is None:
        all_strata = evaluation_strata(dataset)
        strata = {"cold": all_strata["cold"], "0": all_strata["0"]}
    rows = []
    for label, (name, options) in variants.items():
        for seed in (seeds if seeds is not None else study.seeds):
            if progress is not None:
                progress(label, seed)
            run = train_model(name, dataset, seed, study, epochs=epochs, **options)
            rows.append({"variant": label, "seed": seed, **cold_start_metrics(dataset, run.model, strata),
                         "best_epoch": run.best_epoch, "sec/epoch": run.seconds_per_epoch})
    return pd.DataFrame(rows)


def ablation_variants() -> dict[str, tuple[str, dict]]:
    """MoToRec's Table-3 variants, plus the two readings this implementation offers beside the paper's:
    ``rarity="amplify"`` (eq. 2 as the text describes it) and ``tokenizer_items="chunk"``."""
    from ..models.motorec import ABLATIONS

    variants = {label: ("motorec", dict(switches)) for label, switches in ABLATIONS.items()}
    variants["rarity: amplify"] = ("motorec", {"rarity": "amplify"})
    variants["tokenizer on a chunk"] = ("motorec", {"tokenizer_items": "chunk"})
    return variants


def sensitivity_variants(study: StudyConfig) -> dict[str, tuple[str, dict]]:
    """MoToRec over ``study.K_grid`` x ``study.gamma_grid`` (Fig. 4), labelled ``"K=256 gamma=0.05"``."""
    return {f"K={K} gamma={g:g}": ("motorec", {"K": K, "gamma": g}) for K in study.K_grid for g in study.gamma_grid}


def paired_gain(rows: pd.DataFrame, metric: str, baseline: str, by: str = "variant",
                confidence: float = 0.95) -> pd.DataFrame:
    """Per ``by`` group other than ``baseline``: the mean over seeds of ``metric`` minus the baseline's on the same
    seed (and the same value of every other key column), with a t-interval; ``rows`` as :func:`grid_runs` gives
    them (extra key columns, e.g. ``strength``, are kept apart)."""
    keys = [c for c in rows.columns if c in ("strength",)]
    base = rows[rows[by] == baseline].set_index(keys + ["seed"])[metric]
    out = []
    for group, g in rows[rows[by] != baseline].groupby(keys + [by], sort=False):
        g = g.set_index(keys + ["seed"])[metric]
        diff = (g - base.reindex(g.index)).to_numpy(dtype=float)
        half = float(t_halfwidth(diff, confidence)) if len(diff) > 1 else np.nan
        label = dict(zip(keys + [by], group if isinstance(group, tuple) else (group,)))
        out.append({**label, "gain": float(diff.mean()), "low": float(diff.mean() - half),
                    "high": float(diff.mean() + half), "seeds": len(diff)})
    return pd.DataFrame(out)


def popularity_study(strengths, study: StudyConfig, seeds=None, models=("lightgcn", "vbpr", "freedom", "motorec"),
                     profile: str | None = None, split_seed: int = 0, progress=None) -> pd.DataFrame:
    """The catalogue of ``profile`` regenerated at each popularity strength (``popularity_weight``; items,
    features and tastes unchanged), split as in notebook 02 (random 8:1:1 with ``split_seed``, new arrivals held
    out), and every model of ``models`` trained with every seed: :func:`grid_runs` rows with a ``strength``
    column, for :func:`paired_gain` against LightGCN."""
    from ..data.splits import random_split
    from ..data.synthetic import catalogue_config, load_synthetic

    frames = []
    for strength in strengths:
        ds = load_synthetic(config=catalogue_config(profile, popularity_weight=strength))
        split = ds.with_split(random_split(ds.interactions, seed=split_seed,
                                           holdout_items=ds.items["new_arrival"].to_numpy()))
        rows = grid_runs(split, study, {m: (m, {}) for m in models}, seeds, progress=progress)
        frames.append(rows.assign(strength=strength))
    return pd.concat(frames, ignore_index=True)


def cold_start_table(summary: pd.DataFrame, value: str = "mean ± ci", metrics=None, digits: int = 4) -> pd.DataFrame:
    """A wide view of :func:`cold_start_summary`: one row per model (chance first), one column per metric.
    ``value``: ``"mean ± ci"`` (text: mean and 95% half-width; the mean alone for one seed; ``n/a`` where the
    metric is undefined, e.g. a stratum too small to rank among itself), ``"mean"``,
    ``"lift"`` (over chance) or ``"oracle share"``."""
    metrics = list(metrics or dict.fromkeys(summary["metric"]))
    rows = summary[summary["metric"].isin(metrics)]
    if value == "mean ± ci":
        text = rows.apply(lambda r: "n/a" if not np.isfinite(r["mean"]) else f"{r['mean']:.{digits}f}"
                          + (f" ± {r['halfwidth']:.{digits}f}" if r["seeds"] > 1 else ""), axis=1)
        rows = rows.assign(text=text)
        value = "text"
    elif value not in ("mean", "lift", "oracle share"):
        raise ValueError(f"value must be 'mean ± ci', 'mean', 'lift' or 'oracle share', got {value!r}")
    table = rows.pivot(index="model", columns="metric", values=value)
    return table.loc[list(dict.fromkeys(rows["model"])), metrics]
