"""Notebook 06's figures: an item's nearest items by shared MMQ prefix, and every tokenizer's NMI with the planted
attributes level by level (random codes as the reference)."""
from __future__ import annotations

import numpy as np

from .registry import Context, Recipe, catalogue, frame_of, records, register

SEED = 0
METHODS = ("ma-rq-vae", "ma-rq-kmeans", "mmq")


def compute(ctx: Context) -> dict:
    import pandas as pd

    from ..analysis.explorer import Explorer
    from ..analysis.mmq import make_tokenizer, mmq_data, mmq_study_config
    from ..data.synthetic import load_synthetic
    from ..tokenizers.health import attribute_scores

    study = mmq_study_config(ctx.profile)
    ds = load_synthetic(ctx.profile, device=ctx.device)
    data = mmq_data(ds)
    codes = {m: make_tokenizer(m, data, study, seed=SEED)[0].encode(data.X) for m in METHODS}
    ex = Explorer(ds, codes, sequences=data.sequences)
    item = int(ex.search("dress")["item_id"].iloc[0])
    near = ex.neighbours_by_prefix(item, "mmq", k=8)
    reference = {"random codes": np.random.default_rng(SEED).integers(0, study.K, size=(ds.n_items, 6))}
    attrs = ds.items[list(ex.attributes)]
    nmi = pd.concat({name: attribute_scores(c, attrs)["nmi"].unstack("attribute")
                     for name, c in {**codes, **reference}.items()}, axis=1)
    nmi.columns = [f"{name} | {attribute}" for name, attribute in nmi.columns]
    return {"seeds": [SEED], "profile": ctx.profile, "item": item, "neighbours": near["item_id"].tolist(),
            "shared_prefix": near["shared_prefix"].tolist(), "nmi": records(nmi)}


def draw(results: dict) -> dict:
    import matplotlib.pyplot as plt

    from ..analysis.plots import plot_item_grid

    strip = plot_item_grid(catalogue(results["profile"]), results["neighbours"], attributes=(),
                           ncols=8, captions=[f"shared_prefix {s}" for s in results["shared_prefix"]])
    nmi = frame_of(results["nmi"])
    nmi.index = nmi.index.astype(int)
    methods = list(dict.fromkeys(c.split(" | ")[0] for c in nmi.columns if not c.startswith("random")))
    fig, axes = plt.subplots(1, len(methods), figsize=(4.2 * len(methods), 3.2), sharey=True)
    for ax, name in zip(np.atleast_1d(axes), methods):
        part = nmi[[c for c in nmi.columns if c.startswith(f"{name} | ")]]
        part.columns = [c.split(" | ")[1] for c in part.columns]
        part.plot(ax=ax, marker="o", title=name, legend=name == methods[-1])
        ax.set_xlabel("level")
    np.atleast_1d(axes)[0].set_ylabel("NMI with the attribute")
    fig.tight_layout()
    return {"06_item_neighbours": strip, "06_code_attributes": fig}


register(Recipe("explorer", "06_explorer", {"06_item_neighbours": "-", "06_code_attributes": "-"}, compute, draw))
