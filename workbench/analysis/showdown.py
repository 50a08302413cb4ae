"""Notebook 05's cold-start showdown: every model of notebooks 02-04 on one catalogue and one seed set, each number
under its own protocol, per item stratum, against chance, random, popularity and the oracle.

* **Full ranking** (notebook 02's split: random 8:1:1, new arrivals held out): MF-BPR and LightGCN (ids only),
  VBPR, FREEDOM and MoToRec (content); Recall@20 over every item. Strata: the test item's training degree (0,
  1-4, 5-9, >= 10) and the zero-shot new arrivals.
* **Leave-one-out** (notebook 03's split: each user's last item): SASRec (BCE and softmax) and GRU4Rec (ids only), and
  generators over TIGER's, LETTER's, CEMG's and MMQ's ids (content); HR@10 by trie-constrained beam search.
  Strata: the target's training degree.
* **CTR** (notebook 04's chronological split, ratings > 3 are clicks): the item-id DNN and PPNet (ids only), the PPNet with
  MMQ's ids, frozen and fine-tuned (content); AUC of the rows of each stratum of items by training impressions.

The splits are fixed (notebook 02's split seed is 0, the others have no randomness); the seeds vary the models'
initialisation and sampling. Each protocol keeps its notebook's budgets (:func:`~workbench.analysis.studies.study_config`,
:func:`~workbench.analysis.generative.generative_study_config`, :func:`~workbench.analysis.mmq.mmq_study_config`).
Per seed, every content model is compared with every id model on the same users in every stratum
(:func:`~workbench.evaluation.statistics.paired_values`; for AUC a paired bootstrap over users), so that the
notebook can test the best content model against the best id model per stratum. The first seed also keeps every
tokenizer's codes, for the purity and NMI of each level with each planted attribute.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..core.config import preset
from ..data.dataset import RecDataset
from ..data.strata import degree_strata

ID_MODELS = ("mf-bpr", "lightgcn", "sasrec-bce", "sasrec-ce", "gru4rec", "ppnet", "dnn")
REFERENCES = ("chance", "random", "popularity", "oracle")
STRATA = ("0", "1-4", "5-9", ">=10")


@dataclass(frozen=True)
class ShowdownConfig:
    """The showdown's models per protocol and its seeds (each protocol's budgets come from its notebook's study)."""

    seeds: tuple[int, ...] = (0, 1, 2)
    profile: str | None = None          # whose budgets each protocol uses (None: the active profile)
    graph_models: tuple[str, ...] = ("mf-bpr", "lightgcn", "vbpr", "freedom", "motorec")
    sequence_models: tuple[str, ...] = ("sasrec-bce", "sasrec-ce", "gru4rec", "tiger", "letter", "cemg", "mmq")
    ctr_models: tuple[str, ...] = ("dnn", "ppnet", "ppnet+mmq", "ppnet+mmq+ft")
    n_boot: int = 500


SHOWDOWN_PRESETS = {"smoke": ShowdownConfig(seeds=(0,), profile="smoke", n_boot=100),
                    "default": ShowdownConfig(profile="default"),
                    "paper": ShowdownConfig(seeds=(0, 1, 2, 3, 4), profile="paper", n_boot=2000)}


def showdown_config(profile: str | None = None, **changes) -> ShowdownConfig:
    """The showdown of ``profile`` (default: the active one), with ``changes``."""
    return preset(SHOWDOWN_PRESETS, profile, **changes)


def kind(model: str) -> str:
    """``"reference"``, ``"id"`` (learns from ids alone) or ``"content"`` (reads the items' content)."""
    return "reference" if model in REFERENCES else "id" if model in ID_MODELS else "content"


def _row(protocol: str, metric: str, model: str, seed: int, stratum: str, value: float, users: int) -> dict:
    return {"protocol": protocol, "metric": metric, "model": model, "kind": kind(model), "seed": seed,
            "stratum": stratum, "value": float(value), "users": int(users)}


def _pairs(protocol: str, seed: int, per_user: dict, strata_of_user: dict, n_boot: int) -> list[dict]:
    """Every content model against every id model, per stratum, on the same users (``per_user``: model ->
    ``(n,)`` values over one user order; ``strata_of_user``: stratum -> boolean mask over those users)."""
    from ..evaluation.statistics import paired_values

    out = []
    for a in [m for m in per_user if kind(m) == "content"]:
        for b in [m for m in per_user if kind(m) == "id"]:
            for stratum, mask in strata_of_user.items():
                if mask.sum() >= 2:
                    test = paired_values(per_user[a][mask], per_user[b][mask], n_boot=n_boot, seed=seed)
                    out.append({"protocol": protocol, "seed": seed, "stratum": stratum, "a": a, "b": b, **test})
    return out


# ---------------------------------------------------------------------------------------------- full ranking
def full_ranking(dataset: RecDataset, config: ShowdownConfig, seed: int, progress=None,
                 shared: dict | None = None) -> dict:
    """Rows, pairs and MoToRec's codes of the full-ranking protocol for one seed (module doc)."""
    from ..analysis.studies import chance_metrics, study_config, train_model
    from ..data.splits import random_split
    from ..models.baselines import PopularityRecommender, RandomRecommender
    from ..models.oracle import OracleRecommender

    split = dataset.with_split(random_split(dataset.interactions, valid=0.1, test=0.1, seed=0,
                                            holdout_items=dataset.items["new_arrival"].to_numpy()))
    strata = {**degree_strata(split.item_degree("train")),
              "zero-shot": np.array(dataset.items["new_arrival"], dtype=bool)}
    chance = chance_metrics(split, strata)
    rows = [_row("full ranking", "recall@20", "chance", seed, s, chance[f"{s} full"] if s != "all" else
                 chance["overall"], 0) for s in ("all", *strata)]
    models = {"random": RandomRecommender(seed=seed).fit(split), "popularity": PopularityRecommender().fit(split),
              "oracle": OracleRecommender().fit(split)}
    codes = {}
    for name in config.graph_models:
        if progress is not None:
            progress(f"full ranking: {name}")
        models[name] = train_model(name, split, seed, study_config(config.profile)).model
        if name == "motorec":
            codes.update({f"motorec {m}": c for m, c in models[name].encode().items()})
    reports = {name: m.evaluate(split, "test", strata=strata, ks=(20,), metrics=("recall",))
               for name, m in models.items()}
    for name, rep in reports.items():
        rows.append(_row("full ranking", "recall@20", name, seed, "all", rep["recall@20"], len(rep.users)))
        rows += [_row("full ranking", "recall@20", name, seed, s, rep.strata[s]["recall@20"],
                      len(rep.strata[s].users)) for s in strata]
    per_user = {"all": {n: r.per_user["recall@20"] for n, r in reports.items()}}   # the same users in every report
    per_user.update({s: {n: r.strata[s].per_user["recall@20"] for n, r in reports.items()} for s in strata})
    pairs = [p for s, values in per_user.items() for p in _pairs(
        "full ranking", seed, values, {s: np.ones(len(next(iter(values.values()))), bool)}, config.n_boot)]
    return {"rows": rows, "pairs": pairs, "codes": codes}


# --------------------------------------------------------------------------------------------- leave-one-out
def _mmq_fitted(dataset: RecDataset, seed: int, profile: str | None, shared: dict | None):
    """Notebook 04's data and fitted MMQ tokenizer for ``seed``, and the fit's seconds: made once per seed when the
    protocols share ``shared`` (leave-one-out and CTR use the same tokenizer)."""
    from ..analysis.mmq import make_tokenizer, mmq_data, mmq_study_config

    shared = {} if shared is None else shared
    if ("mmq", seed) not in shared:
        mdata = mmq_data(dataset)
        shared["mmq", seed] = (mdata, *make_tokenizer("mmq", mdata, mmq_study_config(profile), seed))
    return shared["mmq", seed]


def _mmq_tokens(dataset: RecDataset, seed: int, profile: str | None, shared: dict | None = None):
    """MMQ's ids (notebook 04's tokenizer and budgets) as the generators' item tokens."""
    from ..analysis.generative import ItemTokens
    from ..models.generative.item_codes import item_codes

    mdata, tok, seconds = _mmq_fitted(dataset, seed, profile, shared)
    try:
        ids = item_codes(tok, mdata.X, "reassign")
    except ValueError:  # more items share a prefix than the last position has codes: TIGER's extra level
        ids = item_codes(tok, mdata.X, "level")
    return ItemTokens("mmq", ids, mdata.X, tok, None, {"tokenizer": seconds})


def leave_one_out(dataset: RecDataset, config: ShowdownConfig, seed: int, progress=None,
                  shared: dict | None = None) -> dict:
    """Rows, pairs and the generators' codes of the leave-one-out protocol for one seed (module doc)."""
    from ..analysis.generative import generative_data, generative_study_config, run_next_item
    from ..evaluation.next_item import chance_next_item

    study = generative_study_config(config.profile)
    data = generative_data(dataset, study)
    target_degree = data.item_degree()[data.targets("test")]
    by_user = {"all": np.ones(len(target_degree), bool), **degree_strata(target_degree)}
    chance = chance_next_item(data.n_items)["recall@10"]
    rows = [_row("leave-one-out", "hr@10", "chance", seed, s, chance, m.sum()) for s, m in by_user.items()]
    # a uniformly random ranking: each user's target is in the top 10 with the chance probability
    per_user = {"random": (np.random.default_rng(seed).random(len(target_degree)) < chance).astype(float)}
    rows += [_row("leave-one-out", "hr@10", "random", seed, s, per_user["random"][m].mean() if m.any() else np.nan,
                  m.sum()) for s, m in by_user.items()]
    codes = {}
    for name in ("popularity", "oracle", *config.sequence_models):
        if progress is not None:
            progress(f"leave-one-out: {name}")
        tokens = _mmq_tokens(dataset, seed, config.profile, shared) if name == "mmq" else None
        run = run_next_item(name, dataset, data, study, seed, tokens=tokens)
        per_user[name] = run.report.per_user["recall@10"]          # one target per user: the hit at 10
        if run.tokens is not None:
            codes[name] = run.tokens.codes.raw
        rows += [_row("leave-one-out", "hr@10", name, seed, s, per_user[name][m].mean() if m.any() else np.nan,
                      m.sum()) for s, m in by_user.items()]
    return {"rows": rows, "pairs": _pairs("leave-one-out", seed, per_user, by_user, config.n_boot), "codes": codes}


# ------------------------------------------------------------------------------------------------------ CTR
def _auc_pairs(seed: int, test: dict, scores: dict, strata: dict, n_boot: int) -> list[dict]:
    """Every content model against every id model, per stratum: the AUC difference on the stratum's rows with a
    paired bootstrap over users."""
    from ..evaluation.ctr import paired_bootstrap_auc, weighted_auc

    out = []
    for a, b in [(a, b) for a in scores if kind(a) == "content" for b in scores if kind(b) == "id"]:
        for stratum, items in strata.items():
            rows = items[test["items"]]
            y = test["labels"][rows]
            if not 0 < y.sum() < len(y):
                continue
            diff = paired_bootstrap_auc(test["users"][rows], y, scores[a][rows], scores[b][rows], n_boot=n_boot,
                                        seed=seed)
            out.append({"protocol": "CTR", "seed": seed, "stratum": stratum, "a": a, "b": b,
                        "mean_a": weighted_auc(y, scores[a][rows]), "mean_b": weighted_auc(y, scores[b][rows]),
                        "diff": diff["diff"], "ci_low": diff["ci_low"], "ci_high": diff["ci_high"],
                        "users": len(np.unique(test["users"][rows]))})
    return out


def ctr(dataset: RecDataset, config: ShowdownConfig, seed: int, progress=None, shared: dict | None = None) -> dict:
    """Rows and pairs of the CTR protocol for one seed (module doc): AUC per stratum of items by training
    impressions; references: chance (0.5), random scores, popularity (training impressions) and, on generated data,
    the true appeal of each (user, item) pair (the oracle). The content models are compared with the item-id
    PPNet and DNN."""
    from ..analysis.mmq import finetune_rank, mmq_study_config, rank
    from ..evaluation.ctr import auc_by_stratum

    study = mmq_study_config(config.profile)
    data, tok, _ = _mmq_fitted(dataset, seed, config.profile, shared)
    test = data.ctr.part("test")
    impressions = data.ctr.item_impressions()
    strata = {"all": np.ones(len(impressions), bool), **degree_strata(impressions)}
    scores = {"random": np.random.default_rng(seed).random(len(test["labels"])),
              "popularity": impressions[test["items"]].astype(float)}
    if dataset.choice_model is not None:
        scores["oracle"] = dataset.choice_model.pair_appeal(test["users"], test["items"])
    if progress is not None:
        progress("CTR: PPNets")
    item_model, _ = rank(data, study, seed)
    dnn, _ = rank(data, study, seed, arch="dnn") if "dnn" in config.ctr_models else (None, None)
    frozen, _ = rank(data, study, seed, tok.encode(data.X), tok.K)
    tuned, _ = finetune_rank(frozen, tok, data, study, seed)
    for name, model in (("dnn", dnn), ("ppnet", item_model), ("ppnet+mmq", frozen), ("ppnet+mmq+ft", tuned)):
        if name in config.ctr_models:
            scores[name] = model.predict_rows(test)
    rows = [_row("CTR", "auc", "chance", seed, s, 0.5, 0) for s in strata]
    for name, values in scores.items():
        aucs = auc_by_stratum(test["labels"], values, test["items"], strata)
        rows += [_row("CTR", "auc", name, seed, s, aucs[s], len(np.unique(test["users"][m[test["items"]]])))
                 for s, m in strata.items()]
    return {"rows": rows, "pairs": _auc_pairs(seed, test, scores, strata, config.n_boot), "codes": {}}


# ---------------------------------------------------------------------------------------------------- grid
PROTOCOLS = {"full ranking": full_ranking, "leave-one-out": leave_one_out, "CTR": ctr}


def showdown_seed(dataset: RecDataset, config: ShowdownConfig, seed: int, protocols=tuple(PROTOCOLS),
                  progress=None) -> dict:
    """One seed of the showdown: ``rows`` (long format: protocol, metric, model, kind, seed, stratum, value,
    users), ``pairs`` (content against id models per stratum) and, for the first seed, ``tokens``: purity and NMI
    of every tokenizer's levels with the planted attributes."""
    rows, pairs, codes, shared = [], [], {}, {}  # shared: what two protocols both fit (MMQ's tokenizer)
    for name in protocols:
        out = PROTOCOLS[name](dataset, config, seed, progress, shared=shared)
        rows += out["rows"]
        pairs += out["pairs"]
        codes.update(out["codes"])
    tokens = attribute_table(dataset, codes) if seed == config.seeds[0] and codes else pd.DataFrame()
    return {"rows": pd.DataFrame(rows), "pairs": pd.DataFrame(pairs), "tokens": tokens}


def attribute_table(dataset: RecDataset, codes: dict[str, np.ndarray], seed: int = 0) -> pd.DataFrame:
    """Purity and NMI of every tokenizer's level with every planted attribute (long: tokenizer, level, attribute,
    purity, nmi), each beside the same level's codes shuffled across items (``purity shuffled``, ``nmi shuffled``:
    the same code sizes carrying nothing, the reference small groups inflate NMI against)."""
    from ..tokenizers.health import attribute_scores

    attrs = dataset.items[[c for c in ("category", "colour", "pattern", "material", "brand", "price_tier")
                           if c in dataset.items]]
    rng = np.random.default_rng(seed)
    frames = {}
    for name, c in codes.items():
        shuffled = np.stack([rng.permutation(c[:, level]) for level in range(c.shape[1])], axis=1)
        frames[name] = attribute_scores(c, attrs).join(attribute_scores(shuffled, attrs).add_suffix(" shuffled"))
    return pd.concat(frames, names=["tokenizer"]).reset_index()


# ------------------------------------------------------------------------------------------------ summaries
def showdown_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Per protocol, model and stratum: ``kind``, ``seeds``, the mean over seeds, ``ci`` (the 95% t-interval's
    half-width; 0 for one seed), ``users`` (mean per seed), ``lift`` (mean over chance) and ``oracle share``."""
    from ..evaluation.statistics import t_halfwidth

    keys = ["protocol", "model", "stratum"]
    grouped = rows.groupby(keys, sort=False)
    out = grouped.agg(kind=("kind", "first"), seeds=("seed", "nunique"), mean=("value", "mean"),
                      users=("users", "mean")).reset_index()
    out["ci"] = grouped["value"].apply(lambda v: t_halfwidth(v.dropna().to_numpy()) if v.notna().sum() > 1
                                       else 0.0).to_numpy()
    base = out.set_index(keys)["mean"]
    for column, model in (("lift", "chance"), ("oracle share", "oracle")):
        ref = base.xs(model, level="model") if model in out["model"].values else None
        out[column] = [m / ref.get((p, s), np.nan) if ref is not None and ref.get((p, s), 0) else np.nan
                       for p, s, m in zip(out["protocol"], out["stratum"], out["mean"])]
    return out


def showdown_table(summary: pd.DataFrame, protocol: str, value: str = "mean ± ci", digits: int = 4) -> pd.DataFrame:
    """One protocol as a wide table: a row per model (references first, then id, then content models), a column
    per stratum; ``value``: ``"mean ± ci"`` (text) or any numeric column of :func:`showdown_summary`."""
    part = summary[summary["protocol"] == protocol].copy()
    if value == "mean ± ci":
        part["cell"] = ["-" if not np.isfinite(m) else f"{m:.{digits}f}" + (f" ± {c:.{digits}f}" if n > 1 else "")
                        for m, c, n in zip(part["mean"], part["ci"], part["seeds"])]
        value = "cell"
    table = part.pivot(index="model", columns="stratum", values=value)
    order = sorted(dict.fromkeys(part["model"]), key=lambda m: ("reference", "id", "content").index(kind(m)))
    columns = [s for s in ("all", *STRATA, "zero-shot") if s in table.columns]
    table = table.loc[order, columns]
    table.insert(0, "kind", [kind(m) for m in order])
    return table


def duel_table(summary: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """Per protocol and stratum: the best content model against the best id model (by mean over seeds), their
    paired difference per seed on the same users, averaged over seeds with a t-interval (or, for one seed, the
    bootstrap interval over users), and the largest per-seed p-value of the paired t-test over users."""
    from ..evaluation.statistics import t_halfwidth

    rows = []
    for (protocol, stratum), part in summary.groupby(["protocol", "stratum"], sort=False):
        means = part.set_index("model")["mean"].dropna()
        content, ids = means[[kind(m) == "content" for m in means.index]], means[[kind(m) == "id" for m in means.index]]
        if content.empty or ids.empty:
            continue
        a, b = content.idxmax(), ids.idxmax()
        duel = pairs[(pairs["protocol"] == protocol) & (pairs["stratum"] == stratum) & (pairs["a"] == a)
                     & (pairs["b"] == b)]
        if duel.empty:
            continue
        diffs = duel["diff"].to_numpy()
        half = t_halfwidth(diffs) if len(diffs) > 1 else np.nan
        low, high = ((diffs.mean() - half, diffs.mean() + half) if len(diffs) > 1
                     else (duel["ci_low"].iloc[0], duel["ci_high"].iloc[0]))
        rows.append({"protocol": protocol, "stratum": stratum, "best content": a, "best id": b,
                     "content": content[a], "id": ids[b], "difference": diffs.mean(), "low": low, "high": high,
                     "seeds": len(diffs), "users per seed": duel["users"].mean(),
                     "max p (paired t, users)": duel["t_pvalue"].max() if "t_pvalue" in duel else np.nan})
    return pd.DataFrame(rows)


def plot_showdown(summary: pd.DataFrame, protocols=None, axes=None):
    """One panel per protocol: each model's mean per stratum with its 95% interval (id models hatched, random and
    popularity grey), chance (dashed) and the oracle (dotted) as lines."""
    import matplotlib.pyplot as plt

    protocols = list(dict.fromkeys(summary["protocol"])) if protocols is None else list(protocols)
    if axes is None:
        fig, axes = plt.subplots(1, len(protocols), figsize=(5.2 * len(protocols), 4), squeeze=False)
        axes = axes[0]
    fig = axes[0].figure
    for ax, protocol in zip(axes, protocols):
        part = summary[(summary["protocol"] == protocol) & ~summary["model"].isin(["chance", "oracle"])]
        strata = [s for s in ("all", *STRATA, "zero-shot") if s in set(part["stratum"])]
        models = list(dict.fromkeys(part["model"]))
        width = 0.8 / len(models)
        for i, model in enumerate(models):
            m = part[part["model"] == model].set_index("stratum").reindex(strata)
            colour = "0.6" if kind(model) == "reference" else None
            ax.bar(np.arange(len(strata)) + (i - len(models) / 2 + 0.5) * width, m["mean"], width, yerr=m["ci"],
                   label=model, color=colour, hatch="//" if kind(model) == "id" else None, capsize=2)
        for model, style in (("chance", "k--"), ("oracle", "k:")):   # the floor and the ceiling as lines
            line = summary[(summary["protocol"] == protocol) & (summary["model"] == model)]
            if not line.empty:
                ax.plot(np.arange(len(strata)), line.set_index("stratum").reindex(strata)["mean"], style,
                        linewidth=1.2, marker="_", markersize=14, label=model)
        metric = {"full ranking": "Recall@20", "leave-one-out": "HR@10", "CTR": "AUC"}.get(protocol, "")
        ax.set_xticks(np.arange(len(strata)), strata)
        ax.set_title(f"{protocol} ({metric})")
        ax.set_xlabel("stratum (training interactions of the item)")
        ax.legend(fontsize=6.5, ncol=2)
    fig.tight_layout()
    return fig


def plot_attribute_gain(tokens: pd.DataFrame, ax=None):
    """A heatmap: rows tokenizer and level, columns planted attributes, cells NMI minus the same level's shuffled
    codes' NMI (what the codes carry beyond their sizes)."""
    import matplotlib.pyplot as plt

    gain = tokens.assign(gain=tokens["nmi"] - tokens["nmi shuffled"]).pivot_table(
        index=["tokenizer", "level"], columns="attribute", values="gain", sort=False)
    if ax is None:
        fig, ax = plt.subplots(figsize=(1.1 * gain.shape[1] + 3, 0.28 * len(gain) + 1.5))
    image = ax.imshow(gain.to_numpy(), cmap="viridis", aspect="auto", vmin=0)
    ax.set_xticks(range(gain.shape[1]), gain.columns, rotation=30, ha="right")
    ax.set_yticks(range(len(gain)), [f"{t} · level {lvl}" for t, lvl in gain.index], fontsize=7)
    ax.figure.colorbar(image, ax=ax, label="NMI over shuffled codes")
    ax.set_title("What each level's codes carry")
    ax.figure.tight_layout()
    return ax.figure


def plot_duels(duels: pd.DataFrame, ax=None):
    """:func:`duel_table`'s differences (best content minus best id model) with their 95% intervals, one point per
    protocol and stratum."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3.6))
    x = np.arange(len(duels))
    ax.errorbar(x, duels["difference"], yerr=[duels["difference"] - duels["low"], duels["high"] - duels["difference"]],
                fmt="o", capsize=3)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(x, [f"{p}\n{s}" for p, s in zip(duels["protocol"], duels["stratum"])], fontsize=7)
    ax.set_ylabel("best content - best id")
    ax.set_title("Content against ids, per stratum (95% intervals)")
    ax.figure.tight_layout()
    return ax.figure
