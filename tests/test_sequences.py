"""Leave-one-out sequence data, next-item metrics by hand, and the contract of every next-item model."""
import numpy as np
import pandas as pd
import pytest
import torch

import workbench as wb
from workbench.data.sequences import PAD, sequence_split, tie_report
from workbench.evaluation.next_item import chance_next_item, evaluate_next_item, rank_metrics, target_ranks
from workbench.models.base import make_model


def toy_dataset(time_unit="seconds"):
    """User 0: items 5, 3, 8, 1 at times day 2, 10 s, 30 s, 20 s (sorted: 3, 1, 8, 5); user 1: 2, 4 (too short);
    user 2: 0, 6, 7, 9 with 6 and 7 at the same time (row order decides: 6 then 7)."""
    inter = pd.DataFrame({"user_id": [0, 0, 0, 0, 1, 1, 2, 2, 2, 2],
                          "item_id": [5, 3, 8, 1, 2, 4, 0, 6, 7, 9],
                          "rating": 1.0,
                          "timestamp": [86400 * 2, 10, 30, 20, 5, 6, 86400 * 3, 86400 * 4, 86400 * 4, 86400 * 4 + 60]})
    return wb.RecDataset("toy", inter, 3, 10, time_unit=time_unit)


def test_leave_one_out_by_hand():
    data = sequence_split(toy_dataset(), max_len=3)
    assert data.valid_items.tolist() == [8, PAD, 7] and data.test_items.tolist() == [5, PAD, 9]
    assert data.train_offsets.tolist() == [0, 2, 4, 6]
    assert data.train_items.tolist() == [3, 1, 2, 4, 0, 6]
    assert data.users("test").tolist() == [0, 2]
    # validation history = training sequence; test history = training sequence + validation item
    assert data.histories("valid").tolist() == [[PAD, 3, 1], [PAD, 0, 6]]
    assert data.histories("test").tolist() == [[3, 1, 8], [0, 6, 7]]
    hist, targets, users = data.examples("prefix")
    assert hist.tolist() == [[PAD, PAD, 3], [PAD, PAD, 2], [PAD, PAD, 0]] and targets.tolist() == [1, 4, 6]
    assert users.tolist() == [0, 1, 2]
    assert data.training_sequences().tolist() == [[PAD, PAD, 3, 1], [PAD, PAD, 2, 4], [PAD, PAD, 0, 6]]
    # items with at most 5 training interactions are cold: here all of them
    assert data.cold_items().all() and data.item_degree()[[3, 1, 0]].tolist() == [1, 1, 1]


def test_no_leakage_on_the_synthetic_catalogue():
    ds = wb.make_catalogue(wb.catalogue_config("smoke"), render=False)
    data = sequence_split(ds, max_len=50)
    users = data.users("test")
    test_hist, valid_hist = data.histories("test"), data.histories("valid")
    hist, targets, owners = data.examples("prefix")
    # a user's test target never appears in its inputs; the validation target only in the test history
    assert not (test_hist == data.test_items[users][:, None]).any()
    assert not (valid_hist == data.valid_items[users][:, None]).any()
    assert not (valid_hist == data.test_items[users][:, None]).any()
    assert not (hist == data.test_items[owners][:, None]).any() and not (targets == data.test_items[owners]).any()
    assert not (hist == data.valid_items[owners][:, None]).any() and not (targets == data.valid_items[owners]).any()
    # every prefix example: its target follows its history's last item in the user's training sequence
    assert len(targets) == (data.train_lengths - 1).clip(0).sum()
    last = hist[:, -1]
    pos = np.searchsorted(data.train_offsets, np.arange(len(data.train_items)), side="right") - 1
    follows = {(int(u), int(a), int(b)) for u, a, b in zip(pos[:-1], data.train_items[:-1], data.train_items[1:])}
    assert all((int(u), int(a), int(b)) in follows for u, a, b in zip(owners, last, targets))
    # the split is the time order: the test target is each user's latest interaction
    inter = ds.interactions
    latest = inter.loc[inter.groupby("user_id")["timestamp"].idxmax(), ["user_id", "item_id"]]
    assert (data.test_items[latest["user_id"].to_numpy()] == latest["item_id"].to_numpy()).all()


def test_tie_report():
    ties = tie_report(toy_dataset())
    # user 2's rows 6 and 7 share a timestamp (2 of 10 rows); user 2's valid and test are
    # 60 s apart on one day, user 0's on different days
    assert ties["tied_rows"] == pytest.approx(0.2) and ties["valid_test_same_time"] == 0.0
    assert ties["valid_test_same_day"] == pytest.approx(0.5)
    blind = tie_report(toy_dataset("position"))
    assert blind["checkable"] is False and np.isnan(blind["valid_test_same_day"])
    with pytest.raises(wb.DataError, match="time_unit"):
        toy_dataset("days")


def test_rank_metrics_by_hand():
    ranks = target_ranks(torch.tensor([[4, 2, 7], [1, 0, 3], [9, 8, 6]]), torch.tensor([7, 1, 5]))
    assert ranks.tolist() == [2, 0, -1]
    m = rank_metrics(ranks, ks=(1, 3))
    assert m["recall@1"].tolist() == [0, 1, 0] and m["recall@3"].tolist() == [1, 1, 0]
    assert m["ndcg@3"] == pytest.approx([1 / np.log2(4), 1.0, 0.0])
    # chance: the target's rank is uniform over n items
    ch = chance_next_item(10, ks=(3,))
    assert ch["recall@3"] == pytest.approx(0.3)
    assert ch["ndcg@3"] == pytest.approx((1 + 1 / np.log2(3) + 1 / np.log2(4)) / 10)


def test_evaluate_next_item_with_strata():
    rec = lambda h, k: torch.as_tensor(h[:, ::-1][:, :k].copy())  # recommend the history, most recent first
    hist = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    report = evaluate_next_item(rec, hist, np.array([3, 5, 0]), ks=(1, 3),
                                strata={"odd": np.arange(10) % 2 == 1}, batch_size=2)
    assert report.ranks.tolist() == [0, 1, -1]
    assert report["recall@1"] == pytest.approx(1 / 3) and report["recall@3"] == pytest.approx(2 / 3)
    assert report.strata["odd"]["recall@3"] == 1.0 and report.stratum_users["odd"] == 2


def planted_sequences(seed=0, groups=4, per_group=12, users=300, length=8):
    """Items in cycles of ``per_group``: after item ``i`` a user picks the next item of its cycle with
    probability 0.9 (else a random unseen item); every item equally popular, so only a sequence model can tell
    which item comes next."""
    rng = np.random.default_rng(seed)
    n = groups * per_group
    rows = []
    for u in range(users):
        item = int(rng.integers(n))
        seq = [item]
        while len(seq) < length:
            g, p = divmod(item, per_group)
            nxt = g * per_group + (p + 1) % per_group
            item = nxt if rng.random() < 0.9 and nxt not in seq else int(rng.choice(np.setdiff1d(np.arange(n), seq)))
            seq.append(item)
        rows += [(u, i, t) for t, i in enumerate(seq)]
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).assign(rating=1.0)
    return wb.RecDataset("planted-cycles", inter, users, n)


SEQUENCE_MODELS = {"sasrec-ce": ("sasrec", {}), "sasrec-bce": ("sasrec", {"loss": "bce"}),
                   "gru4rec": ("gru4rec", {}), "sasrec-last": ("sasrec", {"positions": "last"})}


@pytest.fixture(scope="module")
def planted():
    return sequence_split(planted_sequences(), max_len=6)


@pytest.mark.parametrize("name", sorted(SEQUENCE_MODELS))
def test_sequence_model_contract_and_planted_structure(name, planted):
    model_name, options = SEQUENCE_MODELS[name]
    model = make_model(model_name, dim=32, **options).fit(planted, epochs=40, lr=5e-3, batch_size=64,
                                                          progress=False, seed=0)
    hist = planted.histories("test")[:7]
    scores = model.score(hist)
    assert scores.shape == (7, planted.n_items) and torch.isfinite(scores).all()
    torch.testing.assert_close(model.score(hist[3:]), scores[3:])          # independent of batching
    rec = model.recommend(hist, 5)
    assert rec.item_ids.shape == (7, 5) and (rec.scores[:, :-1] >= rec.scores[:, 1:]).all()
    # the next item of a cycle is predictable; popularity is flat: the model must beat it by far
    pop = make_model("sequence-popularity").fit(planted).evaluate(planted)
    report = model.evaluate(planted)
    assert report["recall@5"] > 0.5 > 3 * pop["recall@5"], (report.metrics, pop.metrics)
    assert model.best_epoch_ >= 1 and "valid_ndcg@10" in model.history_
    # causal: a position's state never depends on the items after it
    inputs = torch.as_tensor(planted.training_sequences()[:5, :-1] + 1)
    changed = inputs.clone()
    changed[:, 3:] = torch.randint(1, planted.n_items + 1, changed[:, 3:].shape)
    with torch.no_grad():
        torch.testing.assert_close(model.hidden_states(changed)[:, :3], model.hidden_states(inputs)[:, :3])
    # determinism under the seed
    again = make_model(model_name, dim=32, **options).fit(planted, epochs=2, lr=5e-3, batch_size=64,
                                                          progress=False, seed=0)
    twice = make_model(model_name, dim=32, **options).fit(planted, epochs=2, lr=5e-3, batch_size=64,
                                                          progress=False, seed=0)
    torch.testing.assert_close(again.score(hist), twice.score(hist))


def test_sequence_model_errors(planted):
    with pytest.raises(ValueError, match="loss must be one of"):
        make_model("sasrec", loss="softmax")
    with pytest.raises(RuntimeError, match="not been fitted"):
        make_model("gru4rec").score(np.zeros((1, 3), dtype=int))
    model = make_model("gru4rec", dim=8).fit(planted, epochs=1, progress=False)
    with pytest.raises(ValueError, match="history item ids must be in"):
        model.score(np.array([[0, planted.n_items]]))


def test_as_dataset_round_trip():
    data = sequence_split(toy_dataset(), max_len=3)
    ds = data.as_dataset()
    assert ds.matrix("train").sum() == len(data.train_items) == 6
    assert ds.part("valid")["item_id"].tolist() == [8, 7] and ds.part("test")["item_id"].tolist() == [5, 9]


def test_next_item_oracle_is_the_generator():
    ds = wb.make_catalogue(wb.catalogue_config("smoke"), render=False)
    data = sequence_split(ds)
    oracle = make_model("next-item-oracle").fit(data, ds)
    users = data.users("test")
    scores = oracle.scores_for(data, "test", users)
    # every held-out choice was possible at its step: released, never chosen before (not masked)
    target = scores[torch.arange(len(users)), torch.as_tensor(data.targets("test"))]
    assert (target > -1e3).all()
    # a user's earlier items are masked, as the generator never repeats an item
    hist = data.histories("test")
    assert (scores.gather(1, torch.as_tensor(np.where(hist >= 0, hist, 0)))[torch.as_tensor(hist >= 0)] < -1e3).all()
    report, pop = oracle.evaluate(data), make_model("sequence-popularity").fit(data).evaluate(data)
    assert report["recall@10"] > 3 * pop["recall@10"]
    with pytest.raises(ValueError, match="synthetic catalogue only"):
        make_model("next-item-oracle").fit(data, toy_dataset())
