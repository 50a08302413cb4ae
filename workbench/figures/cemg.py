"""Notebook 03's figures and tables (CEMG Tab. 2-3, Fig. 2-4): the fusion weights, the fused map, the generator's
training and a case study (``cemg-main``); Table 2, Table 3 (cold targets), the ablations, time per stage and the
sensitivity sweep (``cemg-grids``, read from the saved ``cemg-study`` benchmark when it was run for the profile,
else trained here)."""
from __future__ import annotations

import numpy as np

from .registry import Context, Recipe, catalogue, frame_of, records, register

SEED = 0
METRICS = ["recall@10", "ndcg@10", "recall@20", "ndcg@20"]
COLD = [f"cold {m}" for m in METRICS]
ORDER = ["popularity", "sasrec-bce", "sasrec-ce", "gru4rec", "tiger", "letter", "cemg", "oracle"]
PARAMS = ["levels", "codebook", "beta", "diversity"]


def _study(ctx: Context):
    from ..analysis.generative import generative_study_config

    return generative_study_config(ctx.profile, **({} if ctx.seeds is None else {"seeds": ctx.seeds}))


def compute_main(ctx: Context) -> dict:
    from ..analysis.generative import (collaborative_embeddings, generation_table, generative_data, tokenize,
                                       train_generator)
    from ..analysis.plots import project_2d
    from ..data.synthetic import load_synthetic

    study = _study(ctx)
    ds = load_synthetic(ctx.profile, device=ctx.device)
    data = generative_data(ds, study)
    cold = data.cold_items()
    cf = collaborative_embeddings(data, "lightgcn", dim=study.cf_dim, epochs=study.cf_epochs, seed=SEED)
    tokens = tokenize("cemg", ds, data, study, seed=SEED, cf=cf)
    ctx.log("cemg-main: the generator")
    cemg = train_generator(tokens, data, study, seed=SEED)
    report = cemg.evaluate(data)
    hits = np.flatnonzero((report.ranks >= 0) & (report.ranks < 10))
    user = int(data.users("test")[hits[0] if len(hits) else 0])
    view = generation_table(cemg, data, user, k=10, items=ds.items)
    return {"seeds": [SEED], "profile": ctx.profile, "alpha_image": tokens.fusion.weights()[:, 0].tolist(),
            "cold": cold.tolist(), "map": project_2d(tokens.X, "tsne", seed=SEED).tolist(),
            "first_code": tokens.codes.raw[:, 0].tolist(), "category": ds.items["category"].tolist(),
            "history": records(cemg.history_), "case_user": user, "case_items": view["item"].tolist()[-14:]}


def draw_main(results: dict) -> dict:
    import matplotlib.pyplot as plt

    from ..analysis.plots import plot_code_map, plot_embedding_map, plot_item_grid, plot_training_curves

    alpha, cold = np.asarray(results["alpha_image"]), np.asarray(results["cold"], dtype=bool)
    weights, ax = plt.subplots(figsize=(6, 3.2))
    ax.hist([alpha[~cold], alpha[cold]], bins=30, label=["warm items", "cold items (<= 5)"], density=True)
    ax.set_xlabel("attention weight on the image (alpha_v)")
    ax.legend(fontsize=8)
    ax.set_title("Which modality each item leans on")
    coords = np.asarray(results["map"])
    fused, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    plot_code_map(coords, np.asarray(results["first_code"]), ax=axes[0],
                  title="fused vectors, by first code (10 largest)")
    plot_embedding_map(coords, results["category"], ax=axes[1], title="fused vectors, by category")
    history = frame_of(results["history"])
    history.index = history.index.astype(int)
    case = plot_item_grid(catalogue(results["profile"]), results["case_items"], ncols=7)
    case.suptitle(f"user {results['case_user']}: the last history items, then the generated ones", y=1.02)
    return {"03_fusion_weights": weights, "03_fused_map": fused,
            "03_training": plot_training_curves(history, ["loss_ce", "valid_ndcg@10"], title="CEMG generator"),
            "03_case_study": case}


register(Recipe("cemg-main", "03_cemg", {
    "03_fusion_weights": "CEMG eq. 2-3 (attention weights per item)", "03_fused_map": "-",
    "03_training": "-", "03_case_study": "-"}, compute_main, draw_main))


def _grid(part: str, ctx: Context, ds, study):
    """The rows of one part of the ``cemg-study`` grids: saved for this profile, else trained here."""
    import pandas as pd

    from ..analysis.generative import generative_grid
    from ..bench.report import saved_study

    saved = saved_study(part, ctx.profile, benchmark="cemg-study")
    if saved is not None:
        ctx.log(f"cemg-grids: {part} from the saved cemg-study benchmark")
        return saved
    ctx.log(f"cemg-grids: training the {part} grid")
    seeds = study.seeds[:1] if part == "sensitivity" else study.seeds
    return pd.concat([generative_grid(ds, study, s, parts=(part,)) for s in seeds], ignore_index=True)


def compute_grids(ctx: Context) -> dict:
    from ..analysis.generative import generative_data
    from ..data.synthetic import load_synthetic
    from ..evaluation.next_item import chance_next_item

    study = _study(ctx)
    ds = load_synthetic(ctx.profile, device=ctx.device)
    data = generative_data(ds, study)
    out = {"profile": ctx.profile, "chance": chance_next_item(data.n_items),
           "defaults": {p: float(getattr(study, p)) for p in PARAMS}}
    for part in ("main", "ablation", "sensitivity"):
        out[part] = records(_grid(part, ctx, ds, study))
    out["seeds"] = sorted({int(s) for s in frame_of(out["main"])["seed"]})
    return out


def _sensitivity_points(main, sens, defaults: dict):
    import pandas as pd

    from ..analysis.generative import mean_and_ci

    own_point = mean_and_ci(main[(main["model"] == "cemg") & main["seed"].isin(sens["seed"].unique())], ["recall@10"])
    own = float(own_point["recall@10"].iloc[0])
    points = mean_and_ci(sens.assign(key=sens["param"] + "=" + sens["value"].astype(str)), ["recall@10"], by="key")
    points["param"], points["value"] = zip(*[(k.split("=")[0], float(k.split("=")[1])) for k in points.index])
    extra = [{"param": p, "value": v, "recall@10": own, "recall@10 ci": float(own_point["recall@10 ci"].iloc[0]),
              "seeds": int(own_point["seeds"].iloc[0])} for p, v in defaults.items()]
    return pd.concat([points, pd.DataFrame(extra)]), own


def draw_grids(results: dict) -> dict:
    from ..analysis.generative import mean_and_ci
    from ..analysis.plots import plot_bars_ci, plot_efficiency, plot_parameter_panels

    chance = results["chance"]
    main, ablation, sens = (frame_of(results[p]) for p in ("main", "ablation", "sensitivity"))
    table2 = mean_and_ci(main, METRICS + COLD + ["epochs", "test users/s"])
    order = [m for m in ORDER if m in table2.index]
    abl = mean_and_ci(ablation, METRICS + COLD, by="variant")
    timing = main[main["model"].isin(["tiger", "letter", "cemg"])].groupby("model", sort=False)[
        ["collaborative sec", "fusion sec", "tokenizer sec", "model sec/epoch", "epochs", "test users/s"]].mean()
    timing["generator sec"] = timing["model sec/epoch"] * timing["epochs"]
    points, own = _sensitivity_points(main, sens, results["defaults"])
    return {"03_table2": plot_bars_ci(table2.loc[order], ["recall@10", "ndcg@10"], reference=chance,
                                      highlight="cemg"),
            "03_table2_values": table2.loc[order, ["seeds"] + [c for m in METRICS for c in (m, f"{m} ci")]],
            "03_table3_cold": plot_bars_ci(table2.loc[order], ["cold recall@10", "cold ndcg@10"],
                                           reference={"cold recall@10": chance["recall@10"],
                                                      "cold ndcg@10": chance["ndcg@10"]}, highlight="cemg"),
            "03_table3_values": table2.loc[order, [c for m in COLD for c in (m, f"{m} ci")]],
            "03_ablations": plot_bars_ci(abl, ["recall@10", "ndcg@10"], highlight="CEMG"),
            "03_efficiency": plot_efficiency(timing, ["collaborative sec", "fusion sec", "tokenizer sec",
                                                      "generator sec"]),
            "03_sensitivity": plot_parameter_panels(points, PARAMS, "recall@10", baseline=own)}


register(Recipe("cemg-grids", "03_cemg", {
    "03_table2": "CEMG Tab. 2 (HR@10, NDCG@10 with chance, popularity and the oracle)",
    "03_table2_values": "CEMG Tab. 2", "03_table3_cold": "CEMG Tab. 3 (cold targets)",
    "03_table3_values": "CEMG Tab. 3", "03_ablations": "CEMG Fig. 2 (ablations)",
    "03_efficiency": "CEMG Fig. 3 (time per stage)", "03_sensitivity": "CEMG Fig. 4 (M, K, lambda_q, lambda_d)"},
    compute_grids, draw_grids, tables=("03_table2_values", "03_table3_values")))
