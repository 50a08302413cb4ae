"""The explorer's logic and panels, without a browser (notebook 06; the browser test drives the widget)."""
import dataclasses

import numpy as np
import pytest

import workbench as wb
from workbench.analysis.explorer import Explorer, ExplorerError
from workbench.analysis.explorer_app import ExplorerApp, Note, code_panel, item_panel, user_panel


@pytest.fixture(scope="module")
def parts():
    ds = wb.load_synthetic("smoke")
    ds = ds.with_split(wb.random_split(ds.interactions, seed=0))
    X = wb.fuse_modalities(ds.features, ["image", "text"])
    codes = {"rq-kmeans": wb.RQKMeans(K=8, L=3, seed=0).fit(X).encode(X),
             "opq": wb.OPQ(K=8, L=2, n_iter=2, seed=0).fit(X).encode(X)}
    seq = wb.sequence_split(ds)
    ids = wb.item_codes(wb.RQKMeans(K=16, L=3, seed=0).fit(X), X, "level")
    gen = wb.Generator(ids.codes, ids.sizes, config=wb.generator_config("tiny", valid_users=50))
    gen.fit(seq, epochs=1, progress=False)
    ranker = wb.make_model("lightgcn").fit(ds, epochs=1, progress=False)
    return ds, codes, seq, gen, ranker


@pytest.fixture(scope="module")
def ex(parts):
    ds, codes, seq, gen, ranker = parts
    return Explorer(ds, codes, sequences=seq, generator=gen, ranker=ranker)


def test_search_by_id_and_title_and_the_errors(ex):
    assert ex.search("7")["item_id"].tolist() == [7] and ex.search("#7")["item_id"].tolist() == [7]
    word = ex.dataset.items["title"].iloc[3].split()[-1]
    found = ex.search(word.upper())
    titles = ex.dataset.items["title"].str.lower()
    assert set(found["item_id"]) <= set(np.flatnonzero(titles.str.contains(word.lower(), regex=False)))
    assert len(found) == min(20, titles.str.contains(word.lower(), regex=False).sum())
    assert (np.diff(found["degree"]) <= 0).all()                              # most-interacted first
    with pytest.raises(ExplorerError, match="no item of .* has 'zzqx' in its title"):
        ex.search("zzqx")
    with pytest.raises(ExplorerError, match="ids run from 0 to 239"):
        ex.item_card(240)
    with pytest.raises(ExplorerError, match="not an item id"):
        ex.item_codes("abc")


def test_item_card_and_codes_by_hand(ex, parts):
    ds, codes = parts[0], parts[1]
    degree = np.bincount(ds.part("train")["item_id"], minlength=ds.n_items)
    item = int(np.flatnonzero(degree == 0)[0]) if (degree == 0).any() else 0
    card = ex.item_card(item)
    assert card["degree"] == degree[item] and card["cold"] == (degree[item] < 10)
    assert card["category"] == ds.items["category"].iloc[item] and card["stratum"] == ("0" if degree[item] == 0
                                                                                      else card["stratum"])
    table = ex.item_codes(item)
    assert list(table.index) == ["rq-kmeans", "opq"] and list(table.loc["rq-kmeans"]) == list(codes["rq-kmeans"][item])
    assert table.loc["opq"].isna().tolist() == [False, False, True]            # the shorter ids are padded


def test_neighbours_match_brute_force(ex, parts):
    codes = parts[1]["rq-kmeans"]
    item = 5
    near = ex.neighbours_by_prefix(item, "rq-kmeans", k=10)
    shared = [next((j for j in range(3) if codes[o, j] != codes[item, j]), 3) for o in near["item_id"]]
    assert near["shared_prefix"].tolist() == shared and item not in near["item_id"].tolist()
    best = max(next((j for j in range(3) if codes[o, j] != codes[item, j]), 3) for o in range(240) if o != item)
    assert shared[0] == best and (np.diff(shared) <= 0).all()
    unit = ex._unit
    sims = unit @ unit[item]
    sims[item] = -np.inf
    assert ex.neighbours_by_embedding(item, 6)["item_id"].tolist() == np.argsort(-sims, kind="stable")[:6].tolist()
    with pytest.raises(ExplorerError, match=r"no tokenizer 'vq'; the explorer holds \['rq-kmeans', 'opq'\]"):
        ex.neighbours_by_prefix(item, "vq")


def test_code_members_summary_and_purity_by_hand(ex, parts):
    ds, codes = parts[0], parts[1]["rq-kmeans"]
    code = int(codes[0, 1])
    members = ex.code_members("rq-kmeans", 2, code)
    mask = codes[:, 1] == code
    assert sorted(members["item_id"]) == np.flatnonzero(mask).tolist() and (np.diff(members["degree"]) <= 0).all()
    summary = ex.code_summary("rq-kmeans", 2, code).set_index("attribute")
    values = ds.items["colour"].to_numpy()[mask]
    top, count = np.unique(values, return_counts=True)
    assert summary.loc["colour", "purity"] == pytest.approx(count.max() / mask.sum())
    assert summary.loc["colour", "base rate"] == pytest.approx((ds.items["colour"] == top[count.argmax()]).mean())
    assert ex.code_summary("rq-kmeans", 2, code).attrs == {"items": int(mask.sum()),
                                                           "cold": int((mask & ex.cold).sum())}
    prefix = ex.code_members("rq-kmeans", 2, prefix_of=0)
    assert sorted(prefix["item_id"]) == np.flatnonzero((codes[:, :2] == codes[0, :2]).all(1)).tolist()
    with pytest.raises(ExplorerError, match="levels 1 to 3, not 4"):
        ex.code_members("rq-kmeans", 4, 0)
    with pytest.raises(ExplorerError, match="no item holds code 99 at level 1"):
        ex.code_summary("rq-kmeans", 1, 99)
    for bad in (None, "x"):
        with pytest.raises(ExplorerError, match="is not a code; give an integer code"):
            ex.code_members("rq-kmeans", 1, bad)


def test_first_level_codes_carry_a_planted_attribute(ex, parts):
    """Planted structure: the first level's codes are purer in some planted attribute than its base rate."""
    codes = parts[1]["rq-kmeans"]
    gains = []
    for code in np.unique(codes[:, 0]):
        s = ex.code_summary("rq-kmeans", 1, int(code))
        gains.append((s["purity"] - s["base rate"]).max())
    assert np.mean(gains) > 0.4                 # random codes of the same shape: 0.16


def test_user_views(ex, parts):
    ds, _, seq, gen, _ = parts
    user = int(seq.users("test")[0])
    history = ex.user_history(user)["item_id"].to_numpy()
    train = seq.train_items[seq.train_offsets[user]:seq.train_offsets[user + 1]]
    assert history.tolist() == train.tolist() + [int(seq.valid_items[user])]
    beam = ex.generator_beam(user, k=5)
    assert len(beam) <= 5 and (np.diff(beam["log_prob"]) <= 1e-6).all()
    for _, row in beam.iterrows():
        assert row["codes"] == "-".join(str(c) for c in gen.codes_[row["item_id"]])
    assert beam["target"].tolist() == (beam["item_id"] == seq.test_items[user]).tolist()
    top = ex.ranker_top(user, k=10)
    seen = ds.matrix("train")[user].indices
    assert not set(top["item_id"]) & set(seen) and (np.diff(top["score"]) <= 1e-6).all()
    with pytest.raises(ExplorerError, match="user 9999 is not in"):
        ex.user_history(9999)


def test_text_only_dataset_and_missing_models(parts):
    ds, codes = parts[0], parts[1]
    text_only = dataclasses.replace(ds, images=None)
    ex = Explorer(text_only, codes)
    assert ex.strip(ex.search("1")) is None
    panel = item_panel(ex, "1", "opq")
    assert panel and not any(hasattr(p, "savefig") for p in panel)
    assert [p.kind for p in user_panel(ex, "0") if isinstance(p, Note)] == ["heading"]   # history only
    with pytest.raises(ExplorerError, match="no generator"):
        ex.generator_beam(0)


def test_panels_show_errors_instead_of_raising(ex):
    for panel in (item_panel(ex, "no such title at all"), code_panel(ex, "rq-kmeans", 9, 0), user_panel(ex, "x")):
        assert len(panel) == 1 and panel[0].kind == "error"
        assert "wb-explorer-error" in panel[0]._repr_html_()
    good = item_panel(ex, "3", "rq-kmeans")
    assert any(hasattr(p, "savefig") for p in good) and good[0].kind == "heading"


def test_app_panels_follow_the_controls(ex):
    app = ExplorerApp(ex)
    before = wb.explorer_tables_html(app.panel("code"))
    codes = ex.codes["rq-kmeans"]
    app.code_value.value = int(next(c for c in np.unique(codes[:, 0]) if c != app.code_value.value))
    after = wb.explorer_tables_html(app.panel("code"))
    assert before != after and "code" in after
    app.item_query.value = "zzqx"
    assert app.panel("item")[0].kind == "error"


def test_training_rows_come_from_the_split_or_the_sequences(parts):
    ds, codes, seq = parts[0], parts[1], parts[2]
    unsplit = wb.load_synthetic("smoke")
    by_sequences = Explorer(unsplit, codes, sequences=seq)
    assert (by_sequences.degree == seq.item_degree()).all()
    assert (Explorer(unsplit, codes).degree == unsplit.item_degree(None)).all()
    assert (Explorer(ds, codes, sequences=seq).degree == ds.item_degree("train")).all()


def test_bench_explorer_times_every_panel_and_renders():
    from workbench.bench.explorer import bench_explorer
    from workbench.bench.report import render_explorer

    result = bench_explorer(profile="smoke", repeats=2)
    for panel in ("item", "code", "user", "search"):
        assert 0 < result[f"{panel}_median_s"] <= result[f"{panel}_max_s"] < 60
    assert result["slowest_median_s"] == max(result[f"{p}_median_s"] for p in ("item", "code", "user", "search"))
    text = render_explorer({**result, "command": "python -m workbench.bench explorer", "date": "today"})
    assert "| user view" in text and f"{result['user_median_s']:.2f} s" in text


def test_bad_codes_and_attributes_are_refused(parts):
    ds, codes = parts[0], parts[1]
    with pytest.raises(ExplorerError, match=r"codes 'bad': expected integers of shape \(240, L\), got float64"):
        Explorer(ds, {"bad": np.zeros((240, 3))})
    with pytest.raises(ExplorerError, match=r"codes 'short': expected integers of shape \(240, L\)"):
        Explorer(ds, {"short": codes["opq"][:10]})
    with pytest.raises(ExplorerError, match=r"no item attribute \['genre'\]"):
        Explorer(ds, codes, attributes=("genre",))
    given = dict(codes)
    Explorer(ds, given)
    assert given.keys() == codes.keys()                                   # the caller's dict is left as it was
