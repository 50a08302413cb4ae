"""``python -m workbench.bench showdown``: one seed of notebook 05's cold-start showdown on the synthetic catalogue of
a profile (:mod:`workbench.analysis.showdown`: full ranking, leave-one-out and CTR, every model of notebooks 02-04
per item stratum, the paired content-against-id comparisons, and for the first seed the tokenizers' attribute
table). ``--seeds 0-2`` (or one seed at a time with ``--append``) gives the intervals."""
from __future__ import annotations

import time

from .mmq import _logger, _records


def bench_showdown(device: str | None = None, repeats: int = 1, seed: int = 0, profile: str = "default") -> dict:
    """See the module doc (``repeats`` is unused)."""
    from dataclasses import asdict

    from ..analysis.showdown import showdown_config, showdown_seed
    from ..core.runtime import runtime_facts
    from ..data.synthetic import load_synthetic

    config = showdown_config(profile)
    log, t0 = _logger("showdown", seed)
    out = showdown_seed(load_synthetic(profile, device=device), config, seed, progress=log)
    return {"benchmark": "showdown", "profile": profile, "seed": seed, "config": asdict(config),
            **{part: _records(frame) for part, frame in out.items() if not frame.empty},
            "seconds": time.perf_counter() - t0, **runtime_facts(device)}
