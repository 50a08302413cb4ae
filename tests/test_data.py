"""Dataset container, splits, strata, profiles and configs: behaviour and bad input."""
import dataclasses

import numpy as np
import pandas as pd
import pytest

from workbench.core.config import configure, get_profile
from workbench.data.dataset import TEST, TRAIN, VALID, DataError, RecDataset, check_interactions
from workbench.data.splits import leave_one_out, random_split, temporal_split
from workbench.core.storage import atomic_path, content_hash, load_arrays, save_arrays
from workbench.data.strata import cold_mask, degree_strata, popularity_quartiles
from workbench.data.synthetic import CatalogueConfig


def toy_interactions(n_users=30, per_user=10, n_items=50, seed=0):
    rng = np.random.default_rng(seed)
    rows = [(u, i, t) for u in range(n_users) for t, i in enumerate(rng.choice(n_items, per_user, replace=False))]
    df = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    return df.sample(frac=1.0, random_state=seed).reset_index(drop=True)  # rows out of time order


# ------------------------------------------------------------------------------------------------ splits
def test_random_split_rule():
    df = toy_interactions()
    labels = random_split(df, valid=0.1, test=0.2, seed=3)
    counts = pd.crosstab(df["user_id"], labels)
    assert (counts[TRAIN] == 7).all() and (counts[VALID] == 1).all() and (counts[TEST] == 2).all()
    np.testing.assert_array_equal(labels, random_split(df, valid=0.1, test=0.2, seed=3))
    assert not np.array_equal(labels, random_split(df, valid=0.1, test=0.2, seed=4))


def test_random_split_small_users_and_holdout():
    df = pd.DataFrame({"user_id": [0, 0, 1, 1, 1, 2, 2, 2, 2], "item_id": [0, 1, 0, 1, 2, 0, 1, 2, 3]})
    labels = random_split(df, seed=0)
    assert (labels[:2] == TRAIN).all()  # fewer than 3 interactions: all train
    assert (np.bincount(df["user_id"][labels == TRAIN]) >= 1).all()
    held = random_split(df, seed=0, holdout_items=np.array([False, False, False, True]))
    assert held[8] != TRAIN  # item 3 is zero-shot
    everything = random_split(df, seed=0, holdout_items=np.array([0, 1, 2, 3]))
    assert (np.bincount(df["user_id"][everything == TRAIN], minlength=3) >= 1).all()  # users keep a train row


def test_leave_one_out_is_chronological():
    df = toy_interactions()
    labels = leave_one_out(df)
    last = df.loc[df.groupby("user_id")["timestamp"].idxmax()]
    assert (labels[last.index] == TEST).all()
    assert (np.bincount(df["user_id"][labels == VALID]) == 1).all()
    valid_rows = df[labels == VALID]
    assert (valid_rows["timestamp"].to_numpy() == 8).all()


def test_temporal_split_is_global():
    df = toy_interactions()
    labels = temporal_split(df, test=0.1, valid=0.1)
    assert (labels == TEST).sum() == 30 and (labels == VALID).sum() == 27
    assert df["timestamp"][labels == TEST].min() >= df["timestamp"][labels == VALID].max()
    assert df["timestamp"][labels == VALID].min() >= df["timestamp"][labels == TRAIN].max()


# ------------------------------------------------------------------------------------------------ strata
def test_strata():
    deg = np.array([0, 1, 4, 5, 9, 10, 50, 0])
    s = degree_strata(deg)
    assert [int(m.sum()) for m in s.values()] == [2, 2, 2, 2]
    assert sum(s.values()).max() == 1  # a partition
    np.testing.assert_array_equal(cold_mask(deg, 10), deg < 10)
    np.testing.assert_array_equal(cold_mask(deg, 5, inclusive=True), deg <= 5)
    q = popularity_quartiles(deg)
    assert q["popular"].sum() == 2 and set(deg[q["popular"]]) == {10, 50}
    assert set(deg[q["long_tail"]]) == {0}
    with pytest.raises(ValueError):
        degree_strata(deg, edges=(5, 1))


# ------------------------------------------------------------------------------------------ container
def make_ds(**kw):
    df = toy_interactions()
    args = dict(name="toy", interactions=df, n_users=30, n_items=50, features={"text": np.ones((50, 4))})
    args.update(kw)
    return RecDataset(**args)


def test_container_matrices_and_degrees():
    ds = make_ds()
    split = ds.with_split(random_split(ds.interactions, seed=0))
    train = split.matrix("train")
    assert train.shape == (30, 50) and train.nnz == (split.interactions["x_label"] == TRAIN).sum()
    np.testing.assert_array_equal(split.item_degree(), np.asarray(train.sum(0)).ravel())
    assert split.features["text"].dtype == np.float32
    assert split.summary()["sparsity"] == pytest.approx(1 - 300 / 1500)


def test_bad_input_errors():
    df = toy_interactions()
    with pytest.raises(DataError, match="missing column"):
        check_interactions(df.drop(columns="item_id"), "f.inter")
    bad = df.astype({"item_id": object})
    bad.loc[5, "item_id"] = "abc"
    with pytest.raises(DataError, match=r"f.inter: row 5: field 'item_id' is 'abc'; expected an integer"):
        check_interactions(bad, "f.inter")
    with pytest.raises(DataError, match="beyond the 40 feature rows"):
        check_interactions(df, "f.inter", n_items=40)
    dup = pd.concat([df, df.iloc[[3]]], ignore_index=True)
    with pytest.raises(DataError, match="repeat a \\(user_id, item_id\\) pair"):
        check_interactions(dup, "f.inter")
    assert len(check_interactions(dup, "f.inter", duplicates="first")) == len(df)
    with pytest.raises(DataError, match="has 49 rows but the dataset has 50 items"):
        make_ds(features={"image": np.ones((49, 3))})
    nan = np.ones((50, 3))
    nan[7, 1] = np.nan
    with pytest.raises(DataError, match=r"NaN/inf .* first item rows \[7\]"):
        make_ds(features={"image": nan})
    ds = make_ds()
    with pytest.raises(ValueError, match="no split"):
        ds.part("test")
    with pytest.raises(DataError, match="the test split is empty"):
        ds.with_split(np.zeros(len(ds.interactions), int)).part("test")


def test_users_without_training_interactions():
    ds = make_ds()
    labels = random_split(ds.interactions, seed=0)
    labels[ds.interactions["user_id"].to_numpy() == 4] = TEST
    with pytest.raises(DataError, match=r"no training interaction, e.g. user_id \[4\]"):
        ds.with_split(labels).check_trainable()


def test_profiles_and_configs():
    assert get_profile("Smoke") == "smoke"
    with pytest.raises(ValueError, match="unknown profile 'huge'.*smoke, default, paper"):
        get_profile("huge")
    with pytest.raises(ValueError, match="unknown option\\(s\\) 'n_itemz' for CatalogueConfig"):
        configure(CatalogueConfig(), n_itemz=5)
    assert dataclasses.is_dataclass(CatalogueConfig) and CatalogueConfig.__dataclass_params__.frozen


def test_env_profile(monkeypatch):
    monkeypatch.setenv("WORKBENCH_PROFILE", "nope")
    with pytest.raises(ValueError, match="environment variable WORKBENCH_PROFILE"):
        get_profile()


def test_atomic_writes_leave_nothing_half_written(tmp_path):
    target = tmp_path / "a.npz"
    save_arrays(target, {"x": np.arange(3)})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("crash mid-write")
    np.testing.assert_array_equal(load_arrays(target)["x"], np.arange(3))  # old content intact
    assert [p.name for p in tmp_path.iterdir()] == ["a.npz"]  # no temporary file left
    assert content_hash({"a": 1, "b": 2}) == content_hash({"b": 2, "a": 1})
    assert content_hash(np.arange(3)) != content_hash(np.arange(3.0))


def test_resolve_config_rejects_options_beside_a_config():
    from workbench.core.config import resolve_config

    with pytest.raises(ValueError, match="not both"):
        resolve_config(CatalogueConfig, CatalogueConfig(), {"n_users": 5})
    with pytest.raises(ValueError, match="unknown option"):
        resolve_config(CatalogueConfig, None, {"n_userz": 5})
