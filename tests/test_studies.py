"""Cold-start references (chance, popularity, oracle; full ranking and among themselves) and the validation
grid that picks each model's learning rate and L2 weight."""
import numpy as np
import pandas as pd
import pytest

import workbench as wb
from planted import planted_dataset
from workbench.analysis.studies import (chance_metrics, cold_start_metrics, cold_start_summary, reference_runs,
                                        tune_model)


@pytest.fixture(scope="module")
def catalogue():
    ds = wb.make_catalogue(wb.catalogue_config("smoke"), render=False)
    return ds.with_split(wb.random_split(ds.interactions, seed=0, holdout_items=ds.items["new_arrival"].to_numpy()))


def test_chance_by_hand():
    """User 0 saw 1 of 4 items and has test items 2 (cold) and 3; user 1 saw 2 and has test item 3. At k = 2:
    full ranking 2/3 and 2/2; the cold stratum {2} has one candidate, so any ranking of it is perfect: "among" is
    trivial there and reported as NaN, for chance and for a model alike."""
    inter = pd.DataFrame({"user_id": [0, 0, 0, 1, 1, 1], "item_id": [0, 2, 3, 0, 1, 3],
                          "x_label": [0, 2, 2, 0, 0, 2]})
    ds = wb.RecDataset("tiny", inter, 2, 4)
    cold = np.array([False, False, True, False])
    chance = chance_metrics(ds, {"cold": cold}, k=2)
    assert chance["overall"] == pytest.approx((2 / 3 + 1.0) / 2)
    assert chance["cold full"] == pytest.approx(2 / 3) and np.isnan(chance["cold among"])
    row = cold_start_metrics(ds, wb.make_model("popularity").fit(ds), {"cold": cold}, k=2)
    assert np.isfinite(row["cold full"]) and np.isnan(row["cold among"])
    wide = np.array([False, True, True, True])  # 3 items > k: user 0 has 3 unseen candidates, user 1 has 2
    assert chance_metrics(ds, {"w": wide}, k=2)["w among"] == pytest.approx((2 / 3 + 1.0) / 2)


def test_random_ranking_matches_its_exact_chance(catalogue):
    strata = wb.evaluation_strata(catalogue)
    strata = {"cold": strata["cold"], "0": strata["0"]}
    chance = chance_metrics(catalogue, strata)
    runs = reference_runs(catalogue, strata, seeds=tuple(range(12)))
    random = runs[runs["model"] == "random"].drop(columns=["model", "seed"]).mean()
    for metric, expected in chance.items():
        assert random[metric] == pytest.approx(expected, rel=0.25), metric
    assert set(runs["model"]) == {"random", "popularity", "oracle"}


def test_cold_start_metrics_agree_with_the_restricted_report_and_the_oracle_leads(catalogue):
    strata = {"cold": wb.evaluation_strata(catalogue)["cold"]}
    oracle = wb.make_model("oracle").fit(catalogue)
    row = cold_start_metrics(catalogue, oracle, strata)
    assert row["cold among"] == pytest.approx(wb.restricted_report(catalogue, oracle, strata["cold"])["recall@20"])
    assert row["overall"] == pytest.approx(oracle.evaluate(catalogue, "test")["recall@20"])
    chance = chance_metrics(catalogue, strata)
    assert all(row[m] > 3 * chance[m] for m in row)


def test_cold_start_summary_by_hand():
    rows = pd.DataFrame({"model": ["oracle", "a", "a"], "seed": [0, 0, 1], "cold full": [0.4, 0.1, 0.3]})
    out = cold_start_summary(rows, {"cold full": 0.01}).set_index("model")
    assert out.loc["a", "mean"] == pytest.approx(0.2) and out.loc["a", "lift"] == pytest.approx(20.0)
    assert out.loc["a", "oracle share"] == pytest.approx(0.5) and out.loc["chance", "oracle share"] == pytest.approx(0.025)
    half = 12.7062047 * np.std([0.1, 0.3], ddof=1) / np.sqrt(2)
    assert out.loc["a", "halfwidth"] == pytest.approx(half) and out.loc["oracle", "halfwidth"] == 0.0
    undefined = cold_start_summary(rows.assign(**{"0 among": np.nan}), {"cold full": 0.01, "0 among": np.nan})
    table = wb.cold_start_table(undefined)
    assert (table["0 among"] == "n/a").all() and table.loc["a", "cold full"] == f"0.2000 ± {half:.4f}"


def test_tune_model_keeps_the_best_validation_combination():
    ds = planted_dataset()
    study = wb.StudyConfig(epochs=6, patience=6)
    best, table = tune_model("lightgcn", ds, 0, study, grid={"lr": (1e-5, 1e-2), "reg_weight": (1e-4,)})
    assert len(table) == 2 and best == {"lr": 1e-2, "reg_weight": 1e-4}  # 1e-5 barely moves in 6 epochs
    assert table["valid recall@20"].iloc[1] > table["valid recall@20"].iloc[0]
    tuned = wb.StudyConfig(epochs=6, patience=6, tuned={"lightgcn": best})
    run = wb.train_model("lightgcn", ds, 0, tuned)
    assert run.model.valid_["recall@20"] == pytest.approx(table["valid recall@20"].max())


def test_grid_runs_and_paired_gain():
    """Every variant x seed is one row with the cold-start metrics; the paired gain is the mean per-seed
    difference against the baseline, with a t-interval."""
    ds = planted_dataset()
    study = wb.StudyConfig(epochs=3, patience=3)
    variants = {"lightgcn": ("lightgcn", {}), "mf": ("mf-bpr", {}), "mf-fast": ("mf-bpr", {"lr": 0.05})}
    seen = []
    rows = wb.grid_runs(ds, study, variants, seeds=(0, 1), strata={"cold": ds.item_degree("train") < 20},
                        progress=lambda label, seed: seen.append((label, seed)))
    assert len(rows) == 6 and seen[0] == ("lightgcn", 0) and {"cold full", "cold among", "best_epoch"} <= set(rows)
    gain = wb.paired_gain(rows, "cold among", "lightgcn").set_index("variant")
    by_seed = rows.pivot(index="seed", columns="variant", values="cold among")
    diff = by_seed["mf"] - by_seed["lightgcn"]
    assert gain.loc["mf", "gain"] == pytest.approx(diff.mean())
    half = 12.7062047 * diff.std(ddof=1) / np.sqrt(2)
    assert gain.loc["mf", "high"] - gain.loc["mf", "gain"] == pytest.approx(half)
    assert set(gain.index) == {"mf", "mf-fast"}


def test_popularity_study_changes_only_the_choices(monkeypatch):
    """Each strength regenerates the choices of the same items; every model is trained at each strength."""
    loaded = []
    real = wb.make_catalogue

    def fake_load(profile=None, config=None, **kw):
        loaded.append(config.popularity_weight)
        return real(config, render=False)

    monkeypatch.setattr("workbench.data.synthetic.load_synthetic", fake_load)
    cfg = dict(n_items=60, n_users=80, mean_interactions=8.0, max_interactions=20, image_size=32)
    monkeypatch.setattr("workbench.data.synthetic.PRESETS",
                        {p: wb.CatalogueConfig(**cfg) for p in ("smoke", "default", "paper")})
    rows = wb.popularity_study((0.5, 2.0), wb.StudyConfig(epochs=2, patience=2), seeds=(0,), models=("mf-bpr",))
    assert loaded == [0.5, 2.0] and list(rows["strength"]) == [0.5, 2.0]
    assert rows["overall"].notna().all()


def test_choose_combination_breaks_near_ties_by_cost():
    from workbench.analysis.studies import choose_combination

    table = pd.DataFrame({"lr": [1e-3, 5e-3, 1e-2], "valid recall@20": [0.300, 0.298, 0.280],
                          "epochs_run": [60, 25, 15]})
    assert choose_combination(table, ["lr"]) == {"lr": 5e-3}  # within 1% of the best, and cheaper
    assert choose_combination(table, ["lr"], tolerance=0.0) == {"lr": 1e-3}
    assert choose_combination(table, ["lr"], tolerance=0.1) == {"lr": 1e-2}


def test_cold_start_table_views():
    rows = pd.DataFrame({"model": ["oracle", "a", "a"], "seed": [0, 0, 1], "cold full": [0.4, 0.1, 0.3],
                         "overall": [0.5, 0.2, 0.2]})
    summary = cold_start_summary(rows, {"cold full": 0.01, "overall": 0.02})
    text = wb.cold_start_table(summary)
    assert list(text.index) == ["chance", "oracle", "a"] and list(text.columns) == ["cold full", "overall"]
    assert text.loc["a", "cold full"].startswith("0.2000 ± ") and text.loc["oracle", "overall"] == "0.5000"
    assert wb.cold_start_table(summary, "lift").loc["a", "overall"] == pytest.approx(10.0)
    with pytest.raises(ValueError, match="value must be"):
        wb.cold_start_table(summary, "median")
