"""Notebook 04's saved grids (:mod:`workbench.analysis.mmq`), so that the notebook reads them at a profile instead of
training some seventy models.

* ``python -m workbench.bench mmq-study``: one seed of the grids on the synthetic catalogue of a profile (MMQ
  Table 1 (a)/(b), the feature modes, Table 2, Fig. 3-6: tokenizers, PPNets and generators for every row).
* ``python -m workbench.bench mmq-movielens``: one seed of the ranking rows on real ratings: MovieLens 100K (the
  ``recbole`` wheel) and ``../shared/data/ml-latest-small`` (skipped when absent), each with MiniLM vectors of the
  titles and genres and the genre multi-hot as its two modalities.

``--seeds 0-2`` (or one seed at a time with ``--append``) gives the intervals. ``mmq-study`` keeps each finished
tokenizer's rows in ``data/cache/mmq-study-<profile>-seed<N>.json`` until its seed is complete, so that a run cut
short resumes where it stopped."""
from __future__ import annotations

import sys
import time
from dataclasses import asdict

from ..core.runtime import runtime_facts


def _logger(name: str, seed: int):
    t0 = time.perf_counter()

    def log(label):
        print(f"{name} seed {seed}: {label} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    return log, t0


def _records(rows) -> list[dict]:
    return rows.dropna(axis=1, how="all").to_dict("records")


def bench_mmq_study(device: str | None = None, repeats: int = 1, seed: int = 0, profile: str = "default") -> dict:
    """See the module doc (``repeats`` is unused)."""
    from ..analysis.mmq import mmq_grid, mmq_study_config
    from ..data.synthetic import load_synthetic

    from ..core.paths import cache_dir

    study = mmq_study_config(profile)
    log, t0 = _logger("mmq-study", seed)
    checkpoint = cache_dir() / f"mmq-study-{profile}-seed{seed}.json"  # a run cut short resumes from here
    rows = mmq_grid(load_synthetic(profile), study, seed, progress=log, checkpoint=checkpoint)
    checkpoint.unlink(missing_ok=True)  # the seed is complete: a later run trains afresh
    parts = {part: _records(group) for part, group in rows.groupby("part")}
    return {"benchmark": "mmq-study", "profile": profile, "seed": seed, "study": asdict(study), **parts,
            "seconds": time.perf_counter() - t0, **runtime_facts(device)}


def bench_mmq_movielens(device: str | None = None, repeats: int = 1, seed: int = 0, profile: str = "default"
                        ) -> dict:
    """See the module doc (``repeats`` is unused)."""
    from ..analysis.mmq import mmq_data, mmq_study_config, ranking_grid
    from ..core.paths import shared_data_dir
    from ..data.loaders import load_ml100k, load_movielens_csv

    study = mmq_study_config(profile)
    log, t0 = _logger("mmq-movielens", seed)
    out = {"benchmark": "mmq-movielens", "profile": profile, "seed": seed, "study": asdict(study)}
    out["ml-100k"] = _records(ranking_grid(mmq_data(load_ml100k(device=device), modalities=("text", "genre")), study,
                                           seed, progress=log))
    folder = shared_data_dir() / "ml-latest-small"
    if (folder / "ratings.csv").is_file():
        ds = load_movielens_csv(folder, text=True, device=device)
        out["ml-latest-small"] = _records(ranking_grid(mmq_data(ds, modalities=("text", "genre")), study, seed,
                                                       progress=log))
    else:
        out["ml-latest-small_skipped"] = f"{folder} is absent"
    return {**out, "seconds": time.perf_counter() - t0, **runtime_facts(device)}
