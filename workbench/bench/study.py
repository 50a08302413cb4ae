"""``python -m workbench.bench tune``: each model's learning rate and L2 weight chosen on validation on the
default synthetic catalogue (notebook 02's split), the grid behind ``STUDY_PRESETS["default"].tuned``."""
from __future__ import annotations

import sys
import time


from ..core.runtime import runtime_facts

MODELS = ("mf-bpr", "lightgcn", "vbpr", "freedom", "motorec")


def notebook_split(profile: str = "default", seed: int = 0):
    """The catalogue of ``profile`` with notebook 02's split: random 8:1:1 per user (``seed``), the new arrivals
    held out as zero-shot items."""
    from ..data.splits import random_split
    from ..data.synthetic import load_synthetic

    ds = load_synthetic(profile)
    split = ds.with_split(random_split(ds.interactions, seed=seed, holdout_items=ds.items["new_arrival"].to_numpy()))
    split.check_trainable()
    return split


def bench_tune(device: str | None = None, repeats: int = 1, seed: int = 0, profile: str = "default") -> dict:
    """:func:`~workbench.analysis.studies.tune_model` for every model of :data:`MODELS` over
    :data:`~workbench.analysis.studies.DEFAULT_GRID` with the ``profile``'s study budget (``tuned`` ignored),
    training seed ``seed``; validation Recall@20 only (``repeats`` is unused)."""
    from dataclasses import replace

    from ..analysis.studies import DEFAULT_GRID, study_config, tune_model

    split = notebook_split(profile, seed)
    study = replace(study_config(profile), tuned={})
    out = {"benchmark": "tune", "profile": profile, "seed": seed, "epochs": study.epochs, "patience": study.patience,
           "grid": {k: list(v) for k, v in DEFAULT_GRID.items()}, "models": {}}
    for name in MODELS:
        t0 = time.perf_counter()
        best, table = tune_model(name, split, seed, study)
        out["models"][name] = {"best": best, "seconds": time.perf_counter() - t0, "grid": table.to_dict("records")}
        print(f"tune {name}: {best} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    out.update(runtime_facts(device))
    return out


STRENGTHS = (0.7, 1.3, 1.9)  # popularity_weight values around the default catalogue's 1.3


def bench_motorec_study(device: str | None = None, repeats: int = 1, seed: int = 0, profile: str = "default") -> dict:
    """One training seed of notebook 02's grids on the ``profile`` catalogue: MoToRec's ablations (Table 3, plus
    the amplifying rarity weights and the chunked tokenizer), the K x gamma sensitivity (Fig. 4), and LightGCN,
    VBPR, FREEDOM and MoToRec at three popularity strengths. Each run: test Recall@20 overall, on cold and
    zero-shot items in the full ranking and among themselves (``repeats`` is unused; ``--seeds 0-2`` for CIs)."""
    from ..analysis.studies import (ablation_variants, grid_runs, popularity_study, sensitivity_variants,
                                    study_config)

    study = study_config(profile)
    split = notebook_split(profile)

    def log(label, s):
        print(f"motorec-study seed {s}: {label}", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    ablation = grid_runs(split, study, ablation_variants(), (seed,), epochs=study.ablation_epochs, progress=log)
    sensitivity = grid_runs(split, study, sensitivity_variants(study), (seed,), epochs=study.grid_epochs,
                            progress=log)
    popularity = popularity_study(STRENGTHS, study, (seed,), profile=profile, progress=log)
    return {"benchmark": "motorec-study", "profile": profile, "seed": seed, "epochs": study.epochs,
            "ablation_epochs": study.ablation_epochs, "grid_epochs": study.grid_epochs, "patience": study.patience,
            "tuned": study.tuned, "motorec": study.motorec, "ablation": ablation.to_dict("records"),
            "sensitivity": sensitivity.to_dict("records"), "popularity": popularity.to_dict("records"),
            "seconds": time.perf_counter() - t0, **runtime_facts(device)}
