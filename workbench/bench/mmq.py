"""``python -m workbench.bench mmq-study``: one seed of notebook 04's grids (:mod:`workbench.analysis.mmq`) on the
synthetic catalogue of a profile (MMQ Table 1 (a)/(b), Table 2, Fig. 3-6: tokenizers, PPNets and generators for every
row) and the ranking rows on MovieLens 100K (its MiniLM text and genre vectors), saved so that the notebook reads
them at that profile instead of training some seventy models. ``--seeds 0-2`` (or one seed at a time with
``--append``) gives the intervals."""
from __future__ import annotations

import sys
import time
from dataclasses import asdict

from ..core.runtime import runtime_facts


def bench_mmq_study(device: str | None = None, repeats: int = 1, seed: int = 0, profile: str = "default") -> dict:
    """See the module doc (``repeats`` is unused)."""
    from ..analysis.mmq import mmq_data, mmq_grid, mmq_study_config, ranking_grid
    from ..data.loaders import load_ml100k
    from ..data.synthetic import load_synthetic

    study = mmq_study_config(profile)
    t0 = time.perf_counter()

    def log(label):
        print(f"mmq-study seed {seed}: {label} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)

    rows = mmq_grid(load_synthetic(profile), study, seed, progress=log)
    movielens = ranking_grid(mmq_data(load_ml100k(), modalities=("text", "genre")), study, seed, progress=log)
    parts = {part: group.dropna(axis=1, how="all").to_dict("records") for part, group in rows.groupby("part")}
    parts["movielens"] = movielens.dropna(axis=1, how="all").to_dict("records")
    return {"benchmark": "mmq-study", "profile": profile, "seed": seed, "study": asdict(study), **parts,
            "seconds": time.perf_counter() - t0, **runtime_facts(device)}
