"""Notebook 00's figures: the catalogue's items, its degree distribution, the feature maps and the references per
stratum."""
from __future__ import annotations

import numpy as np

from .registry import Context, Recipe, catalogue, frame_of, records, register

SEED = 0


def _catalogue_split(profile: str, device=None):
    from ..data.splits import random_split
    from ..data.synthetic import load_synthetic

    ds = load_synthetic(profile, device=device)
    split = ds.with_split(random_split(ds.interactions, valid=0.1, test=0.1, seed=SEED,
                                       holdout_items=ds.items["new_arrival"].to_numpy()))
    return ds, split


def compute(ctx: Context) -> dict:
    from ..analysis.plots import project_2d
    from ..core.runtime import seed_everything
    from ..data.strata import degree_strata
    from ..models.baselines import PopularityRecommender, RandomRecommender
    from ..models.oracle import OracleRecommender

    ds, split = _catalogue_split(ctx.profile, ctx.device)
    examples = seed_everything(SEED).choice(ds.n_items, size=8, replace=False)   # the notebook's first draw
    degree = split.item_degree("train")
    ctx.log("data-tour: t-SNE of the image and text features")
    maps = {m: project_2d(ds.features[m], method="tsne", seed=SEED).tolist() for m in ("image", "text")}
    references = {"random": RandomRecommender(seed=SEED), "popularity": PopularityRecommender(),
                  "oracle": OracleRecommender()}
    strata = degree_strata(degree)
    frames = {name: records(model.fit(split).evaluate(split, "test", strata=strata).to_frame())
              for name, model in references.items()}
    return {"seeds": [SEED], "profile": ctx.profile, "examples": examples.tolist(), "degree": degree.tolist(),
            "maps": maps, "labels": {a: ds.items[a].tolist() for a in ("category", "colour", "material")},
            "strata": frames}


def draw(results: dict) -> dict:
    import matplotlib.pyplot as plt

    from ..analysis.plots import (plot_degree_distribution, plot_embedding_map, plot_item_grid,
                                  plot_stratum_metrics)
    from ..data.synthetic import colour_palette

    images = catalogue(results["profile"])  # rendering only: no encoder, no training
    maps, labels = {m: np.asarray(c) for m, c in results["maps"].items()}, results["labels"]
    fig, axes = plt.subplots(2, 2, figsize=(11, 10))
    plot_embedding_map(maps["image"], labels["category"], ax=axes[0, 0], title="image features · category")
    plot_embedding_map(maps["text"], labels["category"], ax=axes[0, 1], title="text features · category")
    plot_embedding_map(maps["image"], labels["colour"], ax=axes[1, 0], title="image features · colour (image-only)",
                       palette=colour_palette())
    plot_embedding_map(maps["text"], labels["material"], ax=axes[1, 1], title="text features · material (text-only)")
    fig.tight_layout()
    return {"00_item_grid": plot_item_grid(images, results["examples"]),
            "00_degree_distribution": plot_degree_distribution(
                np.asarray(results["degree"]), title=f"Synthetic ({results['profile']}): item training degrees"),
            "00_feature_maps": fig,
            "00_baselines_by_stratum": plot_stratum_metrics(
                {name: frame_of(f) for name, f in results["strata"].items()}, "recall@20")}


register(Recipe("data-tour", "00_data_tour", {
    "00_item_grid": "-", "00_degree_distribution": "-", "00_feature_maps": "-",
    "00_baselines_by_stratum": "-"}, compute, draw))
