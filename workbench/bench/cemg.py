"""``python -m workbench.bench cemg-study``: one seed of notebook 03's grids on the synthetic catalogue of a profile
(the main next-item table, CEMG's ablations with the backbone swap, and the sensitivity to M, K, lambda_q and
lambda_d), saved so that the notebook reads them at that profile instead of training some forty models.
``--seeds 0-2`` (or one seed at a time with ``--append``) gives the intervals of the main table and the
ablations; the sensitivity sweep (eight more generators, about 45 minutes on 2 cores at the default profile) runs
for the study's first seed only."""
from __future__ import annotations

import sys
import time
from dataclasses import asdict

from ..core.runtime import runtime_facts


def bench_cemg_study(device: str | None = None, repeats: int = 1, seed: int = 0, profile: str = "default") -> dict:
    """See the module doc (``repeats`` is unused)."""
    from ..analysis.generative import generative_grid, generative_study_config
    from ..data.synthetic import load_synthetic

    study = generative_study_config(profile)
    dataset = load_synthetic(profile)
    t0 = time.perf_counter()

    def log(label):
        print(f"cemg-study seed {seed}: {label} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)

    parts = ("main", "ablation") + (("sensitivity",) if seed == study.seeds[0] else ())
    rows = generative_grid(dataset, study, seed, parts=parts, progress=log)
    return {"benchmark": "cemg-study", "profile": profile, "seed": seed, "study": asdict(study),
            **{part: group.dropna(axis=1, how="all").to_dict("records") for part, group in rows.groupby("part")},
            "seconds": time.perf_counter() - t0, **runtime_facts(device)}
