"""Notebook 02's figures and tables (MoToRec Tab. 2-3, Fig. 3-7): the main comparison with references and cold
strata, zero-shot items, embedding maps, a token case study, time per epoch (``motorec-main``); the ablations,
the gamma x K sensitivity and the popularity-strength study (``motorec-grids``, read from the saved
``motorec-study`` benchmark when it was run for the profile, else trained here)."""
from __future__ import annotations

import numpy as np

from .registry import Context, Recipe, catalogue, frame_of, records, register

SEED = 0
MODELS = ["mf-bpr", "lightgcn", "vbpr", "freedom", "motorec"]
ZERO_MODELS = ["lightgcn", "vbpr", "freedom", "w/o RQ-VAE", "motorec"]
COLD_TITLES = {"overall": "all test items", "cold full": "cold items, full ranking",
               "cold among": "cold items among themselves", "0 full": "zero-shot items, full ranking",
               "0 among": "zero-shot items among themselves"}


def _split(profile: str, device=None):
    """The catalogue, notebook 02's split (new arrivals held out), its strata and chance."""
    from ..analysis.studies import chance_metrics, evaluation_strata
    from ..data.splits import random_split
    from ..data.synthetic import load_synthetic

    ds = load_synthetic(profile, device=device)
    split = ds.with_split(random_split(ds.interactions, valid=0.1, test=0.1, seed=SEED,
                                       holdout_items=ds.items["new_arrival"].to_numpy()))
    strata = evaluation_strata(split)
    cold = {"cold": strata["cold"], "0": strata["0"]}
    return ds, split, strata, cold, chance_metrics(split, cold)


def _main_runs(split, study, cold, log) -> tuple[list, list, object]:
    """Every model of Table 2 over the study's seeds, MoToRec w/o RQ-VAE per seed, and the rows of both."""
    import pandas as pd

    from ..analysis.studies import cold_start_metrics, train_model

    runs = []
    for seed in study.seeds:
        for name in MODELS:
            log(f"motorec-main: {name}, seed {seed}")
            runs.append(train_model(name, split, seed, study))
    without = [train_model("motorec", split, seed, study, label="w/o RQ-VAE", use_rqvae=False) for seed in study.seeds]
    rows = pd.DataFrame([{"model": r.name, "seed": r.seed, **cold_start_metrics(split, r.model, cold)}
                         for r in runs + without])
    return runs, without, rows


def _embedding_maps(ds, split, study, strata, first, without) -> dict:
    from ..analysis.plots import knn_agreement, project_2d
    from ..analysis.studies import train_model

    sparsity = train_model("motorec", split, SEED, study, label="w/o Sparsity", use_sparsity=False)
    sample = np.random.default_rng(SEED).choice(split.n_items, size=min(600, split.n_items), replace=False)
    category = ds.items["category"].to_numpy()
    maps = {}
    for name, model in {"MoToRec": first.model, "w/o RQ-VAE": without.model, "w/o Sparsity": sparsity.model}.items():
        items = model.final_embeddings()[1]
        maps[name] = {"agreement": knn_agreement(items, category, items=strata["cold"]),
                      "coords": project_2d(items[sample], "tsne", seed=SEED).tolist()}
    return {"sample": sample.tolist(), "category": category[sample].tolist(),
            "cold": strata["cold"][sample].tolist(), "maps": maps}


def _token_case(ds, model, cold) -> dict:
    """The image tokenizer's two-level prefix with the purest attribute among prefixes holding a cold item."""
    from ..tokenizers.health import code_case_study

    codes, K = model.encode()["image"], model.config.K
    prefix = (codes[:, 0] * K + codes[:, 1])[:, None]
    attrs = ds.items[["category", "colour", "pattern", "material", "brand", "price_tier"]]
    cases = code_case_study(prefix, attrs, level=1, top=50, min_items=4)
    has_cold = cases["code"].map(lambda c: cold[prefix[:, 0] == c].any())
    best = (cases[has_cold] if has_cold.any() else cases).iloc[0]
    members = np.flatnonzero(prefix[:, 0] == best["code"])
    members = np.r_[members[cold[members]], members[~cold[members]]][:8]    # cold items first
    a, b = divmod(int(best["code"]), K)
    return {"items": members.tolist(), "cold": cold[members].tolist(),
            "title": f"image prefix <a_{a}><b_{b}>: {best['attribute']} = {best['value']} (purity "
                     f"{best['purity']:.2f}, {best['items']} items; cold items in red)"}


def compute_main(ctx: Context) -> dict:
    import pandas as pd

    from ..analysis.studies import cold_start_summary, reference_runs, run_table, study_config

    study = study_config(ctx.profile, **({} if ctx.seeds is None else {"seeds": ctx.seeds}))
    ds, split, strata, cold, chance = _split(ctx.profile, ctx.device)
    runs, without, rows = _main_runs(split, study, cold, ctx.log)
    references = reference_runs(split, cold, seeds=study.seeds)
    main = rows[rows["model"].isin(MODELS)]
    summary = cold_start_summary(pd.concat([references, main], ignore_index=True), chance)
    zero = cold_start_summary(pd.concat([references, rows[rows["model"].isin(ZERO_MODELS)]]), chance)
    first = next(r for r in runs if r.name == "motorec" and r.seed == study.seeds[0])
    timing = run_table(runs).groupby("model", sort=False)[["sec/epoch", "eval sec", "parameters"]].median()
    return {"seeds": list(study.seeds), "profile": ctx.profile, "summary": records(summary),
            "zero": records(zero), "history": records(first.model.history_), "best_epoch": int(first.best_epoch),
            "maps": _embedding_maps(ds, split, study, strata, first, without[0]),
            "case": _token_case(ds, first.model, strata["cold"]), "timing": records(timing)}


def _cold_start_frame(saved: dict):
    frame = frame_of(saved)
    frame["seeds"] = frame["seeds"].astype(int)
    return frame


def draw_main(results: dict) -> dict:
    import matplotlib.pyplot as plt

    from ..analysis.plots import (plot_cold_map, plot_cold_start, plot_item_grid, plot_timing,
                                  plot_training_curves)
    from ..analysis.studies import cold_start_table

    summary, zero = _cold_start_frame(results["summary"]), _cold_start_frame(results["zero"])
    history = frame_of(results["history"])
    history.index = history.index.astype(int)
    m = results["maps"]
    maps, axes = plt.subplots(1, 3, figsize=(15, 5))
    for ax, (name, entry) in zip(axes, m["maps"].items()):
        plot_cold_map(np.asarray(entry["coords"]), np.asarray(m["category"]), np.asarray(m["cold"]), ax=ax,
                      title=f"{name}: cold kNN agreement {entry['agreement']:.2f}", legend=name == "MoToRec")
    case = results["case"]
    grid = plot_item_grid(catalogue(results["profile"]), case["items"])
    for ax, is_cold in zip(grid.axes, case["cold"]):
        if is_cold:
            ax.set_title("COLD " + ax.get_title(), color="red", fontsize=7.5)
    grid.suptitle(case["title"], y=1.0)
    grid.subplots_adjust(top=0.82)
    return {"02_motorec_training": plot_training_curves(
                history, ["loss_bpr", "loss_rq", "loss_cl", "valid_recall@20"], title="MoToRec training",
                best_epoch=results["best_epoch"]),
            "02_table2": cold_start_table(summary),
            "02_strata": plot_cold_start(summary, metrics=("overall", "cold full", "cold among"),
                                         titles=COLD_TITLES),
            "02_zero_shot": plot_cold_start(zero, metrics=("0 full", "0 among"), titles=COLD_TITLES),
            "02_embedding_maps": maps, "02_token_case_study": grid,
            "02_timing": plot_timing(frame_of(results["timing"]))}


register(Recipe("motorec-main", "02_motorec", {
    "02_motorec_training": "-", "02_table2": "MoToRec Tab. 2 (with chance, popularity and the oracle)",
    "02_strata": "MoToRec Fig. 3 (cold-start items)", "02_zero_shot": "-",
    "02_embedding_maps": "MoToRec Fig. 6 (t-SNE of item embeddings)", "02_token_case_study": "-",
    "02_timing": "MoToRec Fig. 7 (time per epoch, evaluation time)"}, compute_main, draw_main,
    tables=("02_table2",)))


def _grid_rows(part: str, ctx: Context, split, study, log):
    """The rows of one part of the ``motorec-study`` grids: saved for this profile, else trained here."""
    from ..analysis.studies import ablation_variants, grid_runs, popularity_study, sensitivity_variants
    from ..bench.report import saved_study

    rows = saved_study(part, ctx.profile)
    if rows is not None:
        log(f"motorec-grids: {part} from the saved motorec-study benchmark")
        return rows, "saved motorec-study benchmark"
    log(f"motorec-grids: training the {part} grid")
    if part == "popularity":
        return popularity_study((0.7, 1.3, 1.9), study, study.seeds, profile=ctx.profile), "trained here"
    variants = ablation_variants() if part == "ablation" else sensitivity_variants(study)
    epochs = study.ablation_epochs if part == "ablation" else study.grid_epochs
    return grid_runs(split, study, variants, study.seeds, epochs=epochs), "trained here"


def compute_grids(ctx: Context) -> dict:
    from ..analysis.studies import study_config

    study = study_config(ctx.profile, **({} if ctx.seeds is None else {"seeds": ctx.seeds}))
    _, split, _, _, chance = _split(ctx.profile, ctx.device)
    out = {"profile": ctx.profile, "chance": chance}
    for part in ("ablation", "sensitivity", "popularity"):
        rows, source = _grid_rows(part, ctx, split, study, ctx.log)
        out[part], out[f"{part}_source"] = records(rows), source
    out["seeds"] = sorted({int(s) for s in frame_of(out["ablation"])["seed"]})
    return out


def draw_grids(results: dict) -> dict:
    import pandas as pd

    from ..analysis.plots import plot_sensitivity
    from ..analysis.studies import cold_start_summary, cold_start_table, paired_gain, t_halfwidth

    ablation_rows = frame_of(results["ablation"])
    ablation_rows["seed"] = ablation_rows["seed"].astype(int)
    ablation = cold_start_summary(ablation_rows.drop(columns=["best_epoch", "sec/epoch"])
                                  .rename(columns={"variant": "model"}), results["chance"])
    sens_rows = frame_of(results["sensitivity"])
    params = sens_rows["variant"].str.extract(r"K=(?P<K>\d+) gamma=(?P<gamma>[\d.e-]+)").astype(
        {"K": int, "gamma": float})
    sens = (sens_rows.join(params).groupby(["K", "gamma"])[["overall", "cold among"]]
            .agg(["mean", t_halfwidth]).reset_index())
    sens.columns = ["K", "gamma", "overall", "overall ci", "cold among", "cold among ci"]
    sensitivity = plot_sensitivity(sens, x="gamma", group="K", columns=["overall", "cold among"],
                                   errors={"overall": "overall ci", "cold among": "cold among ci"})
    pop_rows = frame_of(results["popularity"])
    gain = paired_gain(pop_rows, "cold among", "lightgcn").assign(ci=lambda t: t["high"] - t["gain"])
    strength = plot_sensitivity(gain, x="strength", group="variant", columns=["gain"], errors={"gain": "ci"})
    ax = strength.axes[0]
    ax.set_ylim(bottom=1.2 * min(0.0, float((gain["gain"] - gain["ci"]).min())))   # gains can be negative
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_title("gain over LightGCN, cold items among themselves")
    gains = pd.concat({m: paired_gain(ablation_rows, m, "MoToRec").set_index("variant")[["gain", "low", "high"]]
                       for m in ("overall", "cold among", "0 among")}, axis=1)
    gains.columns = [f"{m}: {c}" for m, c in gains.columns]
    return {"02_table3": cold_start_table(ablation), "02_table3_gains": gains, "02_sensitivity": sensitivity,
            "02_popularity_strength": strength}


register(Recipe("motorec-grids", "02_motorec", {
    "02_table3": "MoToRec Tab. 3 (ablations, overall and cold)",
    "02_table3_gains": "MoToRec Tab. 3 (paired gains against the full model)",
    "02_sensitivity": "MoToRec Fig. 4-5 (gamma x K sensitivity)", "02_popularity_strength": "-"},
    compute_grids, draw_grids, tables=("02_table3", "02_table3_gains")))
