"""Notebook 04's figures and tables (MMQ Tab. 1-2, Fig. 3-6): the PPNet on frozen ids and the fine-tuning curves
(``mmq-main``); Table 1 (a) and (b), Table 2, Fig. 3-6 and the feature modes (``mmq-tables``, read from the saved
``mmq-study`` benchmark when it was run for the profile, else trained here); MovieLens ranking
(``mmq-movielens``, from the saved ``mmq-movielens`` benchmark, else MovieLens 100K trained here)."""
from __future__ import annotations

import pandas as pd

from .registry import Context, Recipe, frame_of, records, register

SEED = 0
QUANT, RANKING = ["recon", "entropy", "utilization"], ["auc", "gauc"]
RETRIEVAL = ["recall@5", "ndcg@5", "recall@10", "ndcg@10"]
ORDER = ["ppnet", "ma-rq-vae", "ma-rq-kmeans", "ma-opq", "ms-rq-vae", "ms-rq-kmeans", "ms-opq", "mmq", "mmq+ft"]
PARTS = ("main", "features", "ablation", "length", "experts")
ABLATIONS = {"mmq+ft": "MMQ", "mmq-wo-cosine+ft": "w/o cosine quantizer", "mmq-wo-aux+ft": "w/o auxiliary reconstruction",
             "mmq-wo-ortho+ft": "w/o orthogonal regularization", "mmq": "w/o fine-tuning"}


def _study(ctx: Context):
    from ..analysis.mmq import mmq_study_config

    return mmq_study_config(ctx.profile, **({} if ctx.seeds is None else {"seeds": ctx.seeds}))


def compute_main(ctx: Context) -> dict:
    from ..analysis.mmq import finetune_rank, make_tokenizer, mmq_data, rank
    from ..data.synthetic import load_synthetic

    study = _study(ctx)
    data = mmq_data(load_synthetic(ctx.profile, device=ctx.device))
    tok, _ = make_tokenizer("mmq", data, study, SEED)
    frozen, _ = rank(data, study, SEED, tok.encode(data.X), tok.K)
    ctx.log("mmq-main: behavior-aware fine-tuning")
    tuned, _ = finetune_rank(frozen, tok, data, study, SEED)
    return {"seeds": [SEED], "profile": ctx.profile, "frozen": records(frozen.history_),
            "frozen_best": int(frozen.best_epoch_), "tuned": records(tuned.history_),
            "tuned_best": int(tuned.best_epoch_)}


def _history(saved: dict):
    frame = frame_of(saved)
    frame.index = frame.index.astype(int)
    return frame


def draw_main(results: dict) -> dict:
    from ..analysis.plots import plot_training_curves

    return {"04_ppnet_training": plot_training_curves(_history(results["frozen"]), ["loss_bce", "valid_auc"],
                                                      title="PPNet + MMQ ids", best_epoch=results["frozen_best"]),
            "04_finetuning": plot_training_curves(_history(results["tuned"]),
                                                  ["loss_bce", "loss_recon", "loss_aux", "valid_auc"],
                                                  title="fine-tuning (eq. 19)", best_epoch=results["tuned_best"])}


register(Recipe("mmq-main", "04_mmq", {"04_ppnet_training": "-", "04_finetuning": "MMQ eq. 19 (fine-tuning losses)"},
                compute_main, draw_main))


def compute_tables(ctx: Context) -> dict:
    from ..analysis.mmq import mmq_data, mmq_grid
    from ..bench.report import saved_study
    from ..data.synthetic import load_synthetic
    from ..evaluation.next_item import chance_next_item

    study = _study(ctx)
    saved = {part: saved_study(part, ctx.profile, benchmark="mmq-study") for part in PARTS}
    data = mmq_data(load_synthetic(ctx.profile, device=ctx.device))
    if all(frame is not None for frame in saved.values()):
        ctx.log("mmq-tables: from the saved mmq-study benchmark")
        rows, source = pd.concat(saved.values(), ignore_index=True), "saved mmq-study benchmark"
    else:
        ctx.log("mmq-tables: training the grid (no saved mmq-study for this profile)")
        rows = pd.concat([mmq_grid(data, study, s, progress=ctx.log) for s in study.seeds], ignore_index=True)
        source = "trained here"
    return {"profile": ctx.profile, "seeds": sorted({int(s) for s in rows["seed"]}), "source": source,
            "chance": chance_next_item(data.X.shape[0], ks=(5, 10)), "rows": records(rows)}


def _tables(rows) -> dict:
    from ..analysis.mmq import mmq_table

    main = mmq_table(rows, "main", QUANT + RANKING + ["auc_head", "auc_tail", "auc_cold"] + RETRIEVAL)
    ablation = pd.concat([main.loc[["mmq+ft", "mmq"]], mmq_table(rows, "ablation", QUANT + RANKING + RETRIEVAL)])
    ablation = ablation.loc[[k for k in ABLATIONS if k in ablation.index]].rename(index=ABLATIONS)
    experts = pd.concat([main.loc[["mmq"]], mmq_table(rows, "experts", QUANT + RANKING + RETRIEVAL)])
    length = mmq_table(rows, "length", QUANT + RANKING + RETRIEVAL)
    modes = mmq_table(rows, "features", ["auc", "gauc", "auc_tail", "auc_cold", "ctr_params", "budget", "dim"])
    return {"main": main, "ablation": ablation, "experts": experts, "length": length, "modes": modes}


def draw_tables(results: dict) -> dict:
    from ..analysis.generative import ci_text
    from ..analysis.plots import plot_bars_ci, plot_metric_lines

    rows = frame_of(results["rows"])
    t = _tables(rows)
    main, order = t["main"], [m for m in ORDER if m in t["main"].index]
    chance = {k: results["chance"][k] for k in ("recall@10", "ndcg@10")}
    table1a = plot_bars_ci(main.loc[order], ["auc", "gauc"], highlight="mmq+ft")
    strata = plot_bars_ci(main.loc[order], ["auc_head", "auc_tail", "auc_cold"], highlight="mmq+ft")
    for fig, bottom in ((table1a, 0.5), (strata, 0.4)):
        for ax in fig.axes:
            ax.set_ylim(bottom, None)
    fig4 = main.loc[[m for m in ("ma-rq-vae", "ma-rq-vae+ft", "ms-rq-vae", "ms-rq-vae+ft", "mmq", "mmq+ft")
                     if m in main.index]]
    lengths = [int(m.split("-")[1]) for m in t["length"].index]
    modes = ci_text(t["modes"], ["auc", "gauc", "auc_tail", "auc_cold"]).assign(
        dim=t["modes"]["dim"], params=t["modes"]["ctr_params"])
    return {"04_table1a": table1a, "04_table1a_values": ci_text(main.loc[order], QUANT + RANKING),
            "04_table1b": plot_bars_ci(main.loc[order[1:]], ["recall@10", "ndcg@10"], highlight="mmq+ft",
                                       reference=chance),
            "04_table1b_values": ci_text(main.loc[order[1:]], RETRIEVAL),
            "04_table2_ablations": plot_bars_ci(t["ablation"], ["auc", "recall@10", "entropy"], highlight="MMQ"),
            "04_table2_values": ci_text(t["ablation"], QUANT + RANKING + RETRIEVAL),
            "04_fig3_strata": strata, "04_fig4_finetuning": plot_bars_ci(fig4, ["auc", "recall@10"]),
            "04_fig5_length": plot_metric_lines(t["length"], lengths, ["recon", "entropy", "auc", "ndcg@5", "ndcg@10"],
                                                xlabel="id length"),
            "04_fig6_experts": plot_bars_ci(t["experts"], ["recon", "auc", "ndcg@10"], highlight="mmq"),
            "04_feature_modes": modes}


register(Recipe("mmq-tables", "04_mmq", {
    "04_table1a": "MMQ Tab. 1 (a) (discriminative ranking: AUC, GAUC)", "04_table1a_values": "MMQ Tab. 1 (a)",
    "04_table1b": "MMQ Tab. 1 (b) (generative retrieval: R@10, N@10 with chance)",
    "04_table1b_values": "MMQ Tab. 1 (b)", "04_table2_ablations": "MMQ Tab. 2 (ablations)",
    "04_table2_values": "MMQ Tab. 2", "04_fig3_strata": "MMQ Fig. 3 (popular and long-tail items)",
    "04_fig4_finetuning": "MMQ Fig. 4 (fine-tuning added to RQ-VAE)",
    "04_fig5_length": "MMQ Fig. 5 (semantic-id length 6-18)",
    "04_fig6_experts": "MMQ Fig. 6 (shared against specific-only experts)",
    "04_feature_modes": "-"}, compute_tables, draw_tables,
    tables=("04_table1a_values", "04_table1b_values", "04_table2_values", "04_feature_modes")))


def compute_movielens(ctx: Context) -> dict:
    from ..analysis.mmq import mmq_data, ranking_grid
    from ..bench.report import saved_study
    from ..data.loaders import load_ml100k

    study = _study(ctx)
    out = {"profile": ctx.profile}
    for name in ("ml-100k", "ml-latest-small"):
        frame = saved_study(name, ctx.profile, benchmark="mmq-movielens")
        if frame is None and name == "ml-100k":
            ctx.log("mmq-movielens: MovieLens 100K trained here (no saved mmq-movielens for this profile)")
            ml = mmq_data(load_ml100k(device=ctx.device), modalities=("text", "genre"))
            frame = pd.concat([ranking_grid(ml, study, s) for s in study.seeds], ignore_index=True)
        if frame is not None and not frame.empty:
            out[name] = records(frame)
    out["seeds"] = sorted({int(s) for s in frame_of(out["ml-100k"])["seed"]})
    return out


def draw_movielens(results: dict) -> dict:
    from ..analysis.generative import ci_text
    from ..analysis.mmq import mmq_table

    columns = QUANT + RANKING + ["auc_tail", "auc_cold"]
    tables = {name: ci_text(mmq_table(frame_of(results[name]), "ranking", columns), columns)
              for name in ("ml-100k", "ml-latest-small") if name in results}
    return {"04_movielens_values": pd.concat(tables, names=["dataset", "method"])}


register(Recipe("mmq-movielens", "04_mmq", {
    "04_movielens_values": "MMQ Tab. 1 (a) protocol on MovieLens 100K and latest-small"},
    compute_movielens, draw_movielens, tables=("04_movielens_values",)))
