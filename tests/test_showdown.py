"""Notebook 05's showdown: summaries and duels by hand, one protocol end to end, the attribute table."""
import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.analysis import showdown as sd


def _rows():
    data = []
    for seed, (a, b, c) in enumerate([(0.30, 0.20, 0.10), (0.34, 0.22, 0.10)]):
        for model, value in (("motorec", a), ("lightgcn", b), ("chance", c), ("oracle", 0.8)):
            data.append({"protocol": "full ranking", "metric": "recall@20", "model": model, "kind": sd.kind(model),
                         "seed": seed, "stratum": "0", "value": value, "users": 10})
    return pd.DataFrame(data)


def test_kinds():
    assert [sd.kind(m) for m in ("chance", "oracle", "lightgcn", "ppnet", "motorec", "mmq", "ppnet+mmq+ft")] == [
        "reference", "reference", "id", "id", "content", "content", "content"]


def test_summary_and_table_by_hand():
    summary = sd.showdown_summary(_rows()).set_index("model")
    assert summary.loc["motorec", "mean"] == pytest.approx(0.32)
    assert summary.loc["motorec", "ci"] == pytest.approx(12.706 * np.std([0.30, 0.34], ddof=1) / np.sqrt(2), rel=1e-3)
    assert summary.loc["motorec", "lift"] == pytest.approx(3.2) and summary.loc["lightgcn", "oracle share"] == \
        pytest.approx(0.21 / 0.8)
    table = sd.showdown_table(sd.showdown_summary(_rows()), "full ranking")
    assert list(table.index) == ["chance", "oracle", "lightgcn", "motorec"]            # references, ids, content
    assert table.loc["motorec", "0"].startswith("0.3200 ± ") and table.loc["oracle", "kind"] == "reference"


def test_duel_picks_the_best_of_each_kind_and_averages_paired_differences():
    rows = _rows()
    extra = rows[rows["model"] == "lightgcn"].assign(model="mf-bpr", kind="id", value=[0.25, 0.05])
    weaker = rows[rows["model"] == "motorec"].assign(model="vbpr", value=[0.12, 0.10])      # a weaker content model
    summary = sd.showdown_summary(pd.concat([rows, extra, weaker]))
    pairs = pd.DataFrame([{"protocol": "full ranking", "seed": s, "stratum": "0", "a": "motorec", "b": b,
                           "diff": d, "ci_low": d - 0.01, "ci_high": d + 0.01, "t_pvalue": p, "users": 10}
                          for s, (b, d, p) in enumerate([("lightgcn", 0.10, 0.01), ("lightgcn", 0.12, 0.03)])]
                         + [{"protocol": "full ranking", "seed": 0, "stratum": "0", "a": a, "b": b,
                             "diff": 0.05, "ci_low": 0, "ci_high": 0.1, "t_pvalue": 0.5, "users": 10}
                            for a, b in (("motorec", "mf-bpr"), ("vbpr", "lightgcn"))])
    duel = sd.duel_table(summary, pairs).iloc[0]
    assert (duel["best content"], duel["best id"]) == ("motorec", "lightgcn")          # 0.21 beats mf-bpr's 0.15
    assert duel["difference"] == pytest.approx(0.11) and duel["max p (paired t, users)"] == 0.03
    assert duel["low"] == pytest.approx(0.11 - 12.706 * np.std([0.10, 0.12], ddof=1) / np.sqrt(2), rel=1e-3)


def test_full_ranking_protocol_end_to_end():
    ds = wb.load_synthetic("smoke")
    config = sd.showdown_config("smoke", graph_models=("lightgcn", "vbpr"))
    out = sd.full_ranking(ds, config, seed=0)
    rows, pairs = pd.DataFrame(out["rows"]), pd.DataFrame(out["pairs"])
    value = rows.set_index(["model", "stratum"])["value"]
    assert value["popularity", "zero-shot"] == 0 and value["oracle", "all"] > value["lightgcn", "all"]
    assert value["lightgcn", "zero-shot"] == 0                    # an id never trained cannot reach the top 20
    assert value["vbpr", "zero-shot"] > value["lightgcn", "zero-shot"]  # content reaches new arrivals at all
    assert {"all", "zero-shot", ">=10"} <= set(pairs["stratum"]) <= set(rows["stratum"])
    assert set(zip(pairs["a"], pairs["b"])) == {("vbpr", "lightgcn")}    # content against ids only
    both = pairs.set_index("stratum")
    for stratum in ("all", "zero-shot"):                      # the pair's means are the rows' values
        assert both.loc[stratum, "mean_a"] == pytest.approx(value["vbpr", stratum])
        assert both.loc[stratum, "mean_b"] == pytest.approx(value["lightgcn", stratum])


def test_attribute_table_against_shuffled_codes():
    ds = wb.load_synthetic("smoke")
    category = pd.factorize(ds.items["category"])[0]
    codes = {"category itself": np.stack([category, np.zeros_like(category)], 1)}
    table = sd.attribute_table(ds, codes).set_index(["level", "attribute"])
    assert table.loc[(1, "category"), "nmi"] == pytest.approx(1.0)
    assert table.loc[(1, "category"), "purity"] == pytest.approx(1.0)
    assert table.loc[(1, "category"), "nmi shuffled"] < 0.1       # the same code sizes, no information
    assert table.loc[(2, "colour"), "nmi"] == pytest.approx(0.0)  # one code carries nothing


def test_benchmark_report_renders_the_duels():
    """``bench report``'s section from a saved run (the figures tests' smoke results of the same study)."""
    import json
    from pathlib import Path

    from workbench.bench.report import render_showdown

    saved = json.loads((Path(__file__).parent / "data" / "figure_results" / "showdown.json").read_text())
    from workbench.figures import frame_of

    frames = {k: frame_of(saved[k]).to_dict("records") for k in ("rows", "pairs")}
    result = {"benchmark": "showdown", "seeds": [0], "runs": [{"profile": "smoke", "seed": 0, **frames}],
              "command": "python -m workbench.bench showdown --seeds 0", "date": "today"}
    text = render_showdown(result)
    assert "| full ranking | zero-shot |" in text and "| CTR | all |" in text


def test_protocols_of_one_seed_share_one_mmq_tokenizer(monkeypatch):
    """Leave-one-out and CTR both read MMQ's ids: one seed fits the tokenizer once, a second seed fits it again."""
    from workbench.analysis import mmq

    fits = []
    monkeypatch.setattr(mmq, "mmq_data", lambda dataset: "data")
    monkeypatch.setattr(mmq, "make_tokenizer", lambda method, data, study, seed: (fits.append(seed) or "tok", 1.0))
    seen = []

    def protocol(dataset, config, seed, progress, shared=None):
        seen.append(sd._mmq_fitted(dataset, seed, "smoke", shared)[1])
        return {"rows": [], "pairs": [], "codes": {}}

    monkeypatch.setattr(sd, "PROTOCOLS", {"leave-one-out": protocol, "CTR": protocol})
    config = sd.showdown_config("smoke")
    for seed in (0, 1):
        sd.showdown_seed(None, config, seed, protocols=("leave-one-out", "CTR"))
    assert fits == [0, 1] and seen == ["tok"] * 4
