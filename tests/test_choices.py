"""The synthetic catalogue's choice model (exposure, appeal, release timeline) and the oracle that reads it."""
import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.data.choices import UNRELEASED, ChoiceModel
from workbench.data.synthetic import catalogue_config, make_catalogue


def _tiny_model(**changes) -> ChoiceModel:
    """Two users, three items, one attribute with two values: item 0 and 2 carry value 0, item 1 value 1.
    User 0 steps at t = 0, 10, 20; user 1 at t = 5, 30. Item 2 is released at t = 15."""
    fields = dict(
        item_codes={"a": np.array([0, 1, 0])},
        log_preference={"a": np.log(np.array([[0.9, 0.1], [0.2, 0.8]], dtype=np.float32))},
        attribute_weights={"a": 2.0}, exposure=np.array([0.5, 0.0, -0.5], dtype=np.float32),
        release=np.array([0.0, 0.0, 15.0]), step_times=np.array([0.0, 10.0, 20.0, 5.0, 30.0]),
        step_offsets=np.array([0, 3, 5]), taste_weight=1.0, popularity_weight=1.0)
    return ChoiceModel(**{**fields, **changes})


def test_appeal_exposure_and_released_share_by_hand():
    model = _tiny_model()
    raw = 2.0 * np.log(np.array([[0.9, 0.1, 0.9], [0.2, 0.8, 0.2]]))
    appeal = raw - raw.mean(1, keepdims=True)
    np.testing.assert_allclose(model.appeal([0, 1]), appeal, rtol=1e-5)
    np.testing.assert_allclose(model.pair_appeal([1, 0], [1, 2]), [appeal[1, 1], appeal[0, 2]], rtol=1e-5)
    # user 0: item 2 released before 1 of 3 steps (t = 20); user 1: before 1 of 2 steps (t = 30)
    np.testing.assert_allclose(model.released_share([0, 1]), [[1, 1, 1 / 3], [1, 1, 1 / 2]])
    np.testing.assert_allclose(model.released_share([1]), [[1, 1, 1 / 2]])  # batching does not matter
    expected = appeal + model.exposure + np.log([[1, 1, 1 / 3], [1, 1, 1 / 2]])
    np.testing.assert_allclose(model.scores([0, 1]), expected, rtol=1e-5)
    never = _tiny_model(release=np.array([0.0, 0.0, 40.0]))
    assert never.scores([0])[0, 2] == pytest.approx(appeal[0, 2] - 0.5 + UNRELEASED)
    with pytest.raises(ValueError, match="user ids"):
        model.scores([2])


@pytest.fixture(scope="module")
def smoke():
    return make_catalogue(catalogue_config("smoke"), render=False)


def test_no_item_is_chosen_before_its_release(smoke):
    inter = smoke.interactions
    released = smoke.items["released"].to_numpy()
    assert (inter["timestamp"].to_numpy() >= released[inter["item_id"].to_numpy()]).all()
    late = released > released.min()
    assert 0.25 < late.mean() < 0.35  # release_fraction 0.3 of the catalogue comes out over the year
    new = smoke.items["new_arrival"].to_numpy()
    assert new.sum() == round(0.15 * smoke.n_items) and released[new].min() >= released[~new].max()
    # the new arrivals are picked, fewer times than the items there from the start
    degree = smoke.item_degree(None)
    assert 0 < degree[new].mean() < 0.7 * degree[~late].mean()


def test_new_arrivals_are_picked_by_users_whose_tastes_they_match(smoke):
    """Late items are cold because they are new, not because they are unappealing: the users who pick them
    like them as much as the users who pick items that were there from the start."""
    inter = smoke.interactions
    appeal = smoke.choice_model.pair_appeal(inter["user_id"].to_numpy(), inter["item_id"].to_numpy())
    new = smoke.items["new_arrival"].to_numpy()[inter["item_id"].to_numpy()]
    assert appeal[new].mean() > 0.8 * appeal[~new].mean() > 0  # chosen items are liked, new or not


def test_popularity_strength_controls_the_long_tail():
    def gini(x):
        x = np.sort(x.astype(float))
        return float((2 * np.arange(1, len(x) + 1) - len(x) - 1).dot(x) / (len(x) * x.sum()))

    ginis = [gini(make_catalogue(catalogue_config("smoke", popularity_weight=w), render=False).item_degree(None))
             for w in (0.0, 1.3, 2.5)]
    assert ginis[0] + 0.1 < ginis[1] < ginis[2] - 0.05, ginis


def test_oracle_is_the_ceiling_and_ranks_cold_items_far_above_chance(smoke):
    """On the catalogue's own split the oracle beats popularity overall and ranks the cold and zero-shot
    items far above chance (they are cold by exposure or by release date, not unattractive)."""
    split = smoke.with_split(wb.random_split(smoke.interactions, seed=0,
                                             holdout_items=smoke.items["new_arrival"].to_numpy()))
    strata = wb.evaluation_strata(split)
    reports = {name: wb.make_model(name).fit(split).evaluate(split, "test", strata=strata, ks=(20,))
               for name in ("oracle", "popularity", "random")}
    assert reports["oracle"]["recall@20"] > 1.3 * reports["popularity"]["recall@20"]
    chance = 20 / smoke.n_items
    for stratum in ("cold", "0"):
        assert reports["oracle"].strata[stratum]["recall@20"] > 5 * chance, stratum
    assert reports["popularity"].strata["0"]["recall@20"] == 0.0


def test_oracle_needs_a_choice_model():
    ds = wb.RecDataset("real", pd.DataFrame({"user_id": [0, 1], "item_id": [1, 0]}), n_users=2, n_items=2)
    with pytest.raises(ValueError, match="no choice model"):
        wb.make_model("oracle").fit(ds)
    with pytest.raises(wb.DataError, match="choice model covers"):
        wb.RecDataset("bad", ds.interactions, n_users=2, n_items=2, choice_model=_tiny_model())
