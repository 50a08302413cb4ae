"""Notebook 05's figures and tables: the cold-start showdown per protocol and stratum, content against ids, and
what each tokenizer's levels carry (read from the saved ``showdown`` benchmark when it was run for the profile,
else trained here)."""
from __future__ import annotations

import pandas as pd

from .registry import Context, Recipe, frame_of, records, register

PARTS = ("rows", "pairs", "tokens")


def compute(ctx: Context) -> dict:
    from ..analysis.showdown import showdown_config, showdown_seed
    from ..bench.report import saved_study
    from ..data.synthetic import load_synthetic

    saved = {part: saved_study(part, ctx.profile, benchmark="showdown") for part in PARTS}
    if all(frame is not None for frame in saved.values()):
        ctx.log("showdown: from the saved showdown benchmark")
        parts, source = saved, "saved showdown benchmark"
    else:
        config = showdown_config(ctx.profile, **({} if ctx.seeds is None else {"seeds": ctx.seeds}))
        ds = load_synthetic(ctx.profile, device=ctx.device)
        runs = [showdown_seed(ds, config, seed, progress=ctx.log) for seed in config.seeds]
        parts = {k: pd.concat([r[k] for r in runs], ignore_index=True) for k in ("rows", "pairs")}
        parts["tokens"], source = runs[0]["tokens"], "trained here"
    return {"profile": ctx.profile, "seeds": sorted({int(s) for s in parts["rows"]["seed"]}), "source": source,
            **{k: records(v) for k, v in parts.items()}}


def draw(results: dict) -> dict:
    from ..analysis.showdown import (duel_table, plot_attribute_gain, plot_duels, plot_showdown, showdown_summary,
                                     showdown_table)

    rows, pairs, tokens = (frame_of(results[k]) for k in PARTS)
    summary = showdown_summary(rows)
    duels = duel_table(summary, pairs)
    tables = pd.concat({p: showdown_table(summary, p) for p in dict.fromkeys(summary["protocol"])},
                       names=["protocol", "model"])
    return {"05_showdown": plot_showdown(summary), "05_showdown_values": tables, "05_duels": plot_duels(duels),
            "05_duels_values": duels.set_index(["protocol", "stratum"]),
            "05_token_attributes": plot_attribute_gain(tokens)}


register(Recipe("showdown", "05_showdown", {
    "05_showdown": "MoToRec Fig. 3, CEMG Tab. 3, MMQ Fig. 3 (cold strata), every model on one catalogue",
    "05_showdown_values": "the same, as numbers", "05_duels": "-", "05_duels_values": "-",
    "05_token_attributes": "-"}, compute, draw, tables=("05_showdown_values", "05_duels_values")))
