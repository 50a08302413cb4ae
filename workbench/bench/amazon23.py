"""``python -m workbench.bench amazon23``: the cold-start comparison on real content and real interactions
(Amazon Reviews 2023 Industrial & Scientific, ``../shared/data/amazon23-industrial-mini``)."""
from __future__ import annotations

import sys
import time

import numpy as np

from ..core.runtime import runtime_facts

MODELS = {"popularity": {}, "random": {}, "lightgcn": {}, "vbpr": {}, "freedom": {},
          "motorec": {"K": 64, "L": 3}}  # 1,204 items: 64 codes per level (the paper's 512 is for 7,050+ items)
COLD = 10  # MoToRec's definition: fewer than 10 training interactions


def bench_amazon23(device: str | None = None, repeats: int = 1, seed: int = 0, epochs: int = 200,
                   lr: float = 5e-3) -> dict:
    """Every model of :data:`MODELS` on the files' own chronological split, trained with ``seed`` (Adam at
    ``lr``, at most ``epochs`` epochs, early stopping on validation R@20 with patience 20), then the test split
    once: R@20 overall, on cold items (< 10 training interactions) and on zero-shot items in the full ranking, and
    on cold items ranked among themselves, with chance for each (``repeats`` is unused)."""
    from ..core.paths import shared_data_dir
    from ..data.amazon23 import load_amazon23
    from ..data.dataset import TEST

    folder = shared_data_dir() / "amazon23-industrial-mini"
    if not folder.exists():
        return {"benchmark": "amazon23", "skipped": f"{folder} is absent"}
    ds = load_amazon23(folder, device=device)
    degree = ds.item_degree("train")
    strata = {"cold": degree < COLD, "zero-shot": degree == 0}
    test = ds.matrix(TEST)
    out = {"benchmark": "amazon23", "seed": seed, "users": ds.n_users, "items": ds.n_items,
           "interactions": len(ds.interactions), "lr": lr, "max_epochs": epochs,
           "cold_items": int(strata["cold"].sum()), "zero_shot_items": int(strata["zero-shot"].sum()),
           "test_share_cold": float(test[:, strata["cold"]].nnz / test.nnz),
           "chance_cold_among_themselves": 20 / int(strata["cold"].sum()), "models": {}}
    for name, options in MODELS.items():
        out["models"][name] = _run_model(name, options, ds, strata, seed, epochs, lr, device)
        print(f"amazon23 seed {seed} {name}: {out['models'][name]}", file=sys.stderr, flush=True)
    out.update(runtime_facts(device))
    return out


def _run_model(name: str, options: dict, ds, strata: dict, seed: int, epochs: int, lr: float, device) -> dict:
    """Fit one model, then its test Recall@20: overall, cold and zero-shot in the full ranking, cold items ranked
    among themselves (:func:`~workbench.analysis.studies.cold_start_metrics`)."""
    from ..analysis.studies import cold_start_metrics
    from ..models.base import make_model
    from ..models.graph_model import GraphModel

    t0 = time.perf_counter()
    model = make_model(name, **({"seed": seed} if name == "random" else options))
    if isinstance(model, GraphModel):
        model.fit(ds, epochs=epochs, lr=lr, patience=20, seed=seed, device=device, progress=False)
    else:
        model.fit(ds)
    seconds = time.perf_counter() - t0
    metrics = cold_start_metrics(ds, model, strata)
    row = {"overall": metrics["overall"], "cold": metrics["cold full"],
           "cold_among_themselves": metrics["cold among"], "zero-shot": metrics["zero-shot full"],
           "seconds": seconds}
    if isinstance(model, GraphModel):
        row["best_epoch"] = int(model.best_epoch_)
    return row


def summarize_amazon23(runs: list[dict]) -> dict:
    """Per model and column: the mean over seeds and its 95% t-interval half-width."""
    from ..evaluation.statistics import t_halfwidth

    runs = [r for r in runs if "skipped" not in r]
    if not runs:
        return {}
    columns = ("overall", "cold", "zero-shot", "cold_among_themselves")
    return {m: {c: {"mean": float(np.mean([r["models"][m][c] for r in runs])),
                    "halfwidth": float(t_halfwidth(np.array([r["models"][m][c] for r in runs])))}
                for c in columns} for m in runs[0]["models"]}
