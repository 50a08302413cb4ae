"""Contract tests over every recommender, run on the planted synthetic data."""
import json

import numpy as np
import pytest
import torch

from workbench.bench.eval import bench_eval
from workbench.evaluation.ranking import evaluate_ranking, evaluate_split
from workbench.models.baselines import PopularityRecommender, RandomRecommender
from workbench.models.oracle import OracleRecommender
from workbench.data.splits import random_split
from workbench.data.strata import degree_strata
from workbench.data.synthetic import catalogue_config, make_catalogue

MODELS = {"popularity": PopularityRecommender, "random": lambda: RandomRecommender(seed=3),
          "oracle": OracleRecommender}


@pytest.fixture(scope="module")
def data():
    ds = make_catalogue(catalogue_config("smoke"))
    return ds.with_split(random_split(ds.interactions, seed=0, holdout_items=ds.items["new_arrival"].to_numpy()))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_contract(name, data):
    model = MODELS[name]().fit(data)
    users = torch.arange(7)
    scores = model.score(users)
    assert scores.shape == (7, data.n_items) and torch.isfinite(scores).all()
    # deterministic, and independent of how users are batched
    torch.testing.assert_close(model.score(users), scores)
    torch.testing.assert_close(model.score(users[3:]), scores[3:])
    train = data.matrix("train")
    rec = model.recommend(users, k=10, exclude=train)
    assert rec.item_ids.shape == rec.scores.shape == (7, 10)
    assert (rec.item_ids >= 0).all() and (rec.item_ids < data.n_items).all()
    for u in range(7):  # seen items are never recommended
        assert not set(rec.item_ids[u].tolist()) & set(train[u].indices.tolist())
    assert (rec.scores[:, :-1] >= rec.scores[:, 1:]).all()


def test_popularity_beats_random_on_planted_data(data):
    pop = evaluate_split(data, PopularityRecommender().fit(data).score, "test")
    rnd = evaluate_split(data, RandomRecommender().fit(data).score, "test")
    assert pop["recall@20"] > 2 * rnd["recall@20"]
    # random recall@20 is close to its expectation 20 / n_items
    assert rnd["recall@20"] == pytest.approx(20 / data.n_items, rel=0.5)
    # popularity never ranks a zero-shot item above a seen one: its zero-shot recall is 0
    strat = evaluate_split(data, PopularityRecommender().fit(data).score, "test", strata=degree_strata(data.item_degree()))
    assert strat.strata["0"]["recall@20"] == 0.0 and strat.strata[">=10"]["recall@20"] > pop["recall@20"]


def test_mask_valid_option(data):
    """A scorer that ranks each user's validation items first: at test time they fill the top slots unless
    ``mask_valid`` masks them, which leaves popularity's ranking of the other unseen items."""
    pop = PopularityRecommender().fit(data).score
    valid = torch.as_tensor(data.matrix("valid").toarray(), dtype=torch.float32)
    assert (valid.sum(1) > 0).all()  # every user has validation items to mask
    valid_first = lambda users: pop(users) + 1e3 * valid[users]
    train, test = data.matrix("train"), data.matrix("test")
    both = train + data.matrix("valid")
    both.data[:] = 1.0
    plain = evaluate_split(data, valid_first, "test", ks=(1, 20))
    masked = evaluate_split(data, valid_first, "test", mask_valid=True, ks=(1, 20))
    ref = evaluate_ranking(pop, test, exclude=both, ks=(1, 20))  # training and validation items masked by hand
    np.testing.assert_array_equal(masked.users, ref.users)
    for name in ref.per_user:
        np.testing.assert_allclose(masked.per_user[name], ref.per_user[name], err_msg=name)
    # unmasked, a validation item takes every user's first slot and pushes the test items down
    np.testing.assert_allclose(plain.per_user["ndcg@20"],
                               evaluate_ranking(valid_first, test, exclude=train, ks=(20,)).per_user["ndcg@20"])
    assert plain["hr@1"] == 0.0 < masked["hr@1"] and plain["ndcg@20"] < masked["ndcg@20"] - 0.02
    # on the validation split the validation items are the ground truth: never masked
    on_valid = evaluate_split(data, valid_first, "valid", mask_valid=True, ks=(1, 20))
    assert on_valid["hr@1"] == 1.0
    assert on_valid.metrics == evaluate_split(data, valid_first, "valid", ks=(1, 20)).metrics


def test_bench_eval_small(capsys):
    out = bench_eval(n_users=300, n_items=200, n_train=2000, n_test=400, repeats=1, device="cpu")
    assert out["evaluated_users"] > 250 and out["seconds"] > 0
    assert json.loads(json.dumps(out))["users"] == 300
