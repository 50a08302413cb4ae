"""CTR data: clicks, the chronological split, vocabularies fitted on the training window only, strata."""
import numpy as np
import pandas as pd
import pytest

from workbench.data.ctr import ctr_data
from workbench.data.dataset import DataError, RecDataset
from workbench.evaluation.ctr import auc_by_stratum


def _dataset(**changes):
    # ten rows in time order; the split with test=0.2, valid=0.25 is rows 0-5 train, 6-7 valid, 8-9 test
    inter = pd.DataFrame({
        "user_id":   [0, 1, 0, 2, 1, 2, 3, 1, 2, 4],
        "item_id":   [0, 0, 1, 2, 1, 0, 3, 2, 4, 0],
        "rating":    [5, 2, 4, 3, 5, 1, 4, 5, 4, 2],
        "timestamp": [15, 10, 20, 30, 40, 50, 60, 70, 80, 90],
    })
    args = dict(name="hand", interactions=inter, n_users=5, n_items=5)
    args.update(changes)
    return RecDataset(**args)


def test_split_labels_and_vocabularies_by_hand():
    data = ctr_data(_dataset(), test=0.2, valid=0.25)
    train, valid, test = data.part("train"), data.part("valid"), data.part("test")
    assert train["timestamps"].tolist() == [10, 15, 20, 30, 40, 50]              # time order within a part
    assert train["labels"].tolist() == [0, 1, 1, 0, 1, 0]                         # rating > 3
    assert valid["users"].tolist() == [3, 1] and test["users"].tolist() == [2, 4]
    # vocabularies from the training rows only: users 0, 1, 2 and items 0, 1, 2 get 1..3, the rest the bucket 0
    assert data.user_vocab.tolist() == [1, 2, 3, 0, 0] and data.item_vocab.tolist() == [1, 2, 3, 0, 0]
    assert valid["user_index"].tolist() == [0, 2] and valid["item_index"].tolist() == [0, 3]
    assert test["user_index"].tolist() == [3, 0] and test["item_index"].tolist() == [0, 1]
    assert data.user_vocab_size == data.item_vocab_size == 4
    rep = data.report()
    assert rep.loc["train", "positive rate"] == pytest.approx(0.5)
    assert rep.loc["test", "cold-user rows"] == 0.5 and rep.loc["test", "cold-item rows"] == 0.5


def test_vocabularies_never_see_later_rows():
    # moving a test row's user into training changes nothing unless that row is in the training window
    base = ctr_data(_dataset(), test=0.2, valid=0.25)
    inter = _dataset().interactions.copy()
    inter.loc[9, "user_id"] = 3                                                    # user 3 now also in test
    moved = ctr_data(_dataset(interactions=inter), test=0.2, valid=0.25)
    assert moved.user_vocab.tolist() == base.user_vocab.tolist()
    assert (moved.part("test")["user_index"] == [3, 0]).all()


def test_item_strata_by_hand():
    data = ctr_data(_dataset(), test=0.2, valid=0.25)
    # training impressions: item 0 three times, items 1 two, item 2 one; items 3, 4 never
    assert data.item_impressions().tolist() == [3, 2, 1, 0, 0]
    strata = data.item_strata()
    assert strata["head"].tolist() == [True, False, False, False, False]
    assert strata["tail"].tolist() == [False, False, True, False, False]
    assert strata["cold"].tolist() == [False, False, False, True, True]
    test = data.part("test")
    out = auc_by_stratum(test["labels"], np.array([0.9, 0.1]), test["items"], strata)
    assert np.isnan(out["cold"])                                                    # one click, one class only


def test_hostile_inputs_are_named():
    with pytest.raises(DataError, match="positions"):
        ctr_data(_dataset(time_unit="position"))
    inter = _dataset().interactions.assign(rating=5)
    with pytest.raises(DataError, match="one class"):
        ctr_data(_dataset(interactions=inter))


def test_synthetic_catalogue_has_both_classes_and_cold_rows():
    import workbench as wb
    data = ctr_data(wb.load_synthetic("smoke"))
    rep = data.report()
    assert 0.05 < rep.loc["train", "positive rate"] < 0.95
    assert rep.loc["test", "rows"] == pytest.approx(0.1 * rep["rows"].sum(), abs=1)
    assert (data.part("train")["user_index"] > 0).all() and (data.part("train")["item_index"] > 0).all()


def test_movielens_100k_ctr_split():
    import workbench as wb
    data = ctr_data(wb.load_ml100k())
    rep = data.report()
    assert rep.loc["test", "rows"] == 10_000 and rep["rows"].sum() == 100_000
    assert 0.45 < rep.loc["train", "positive rate"] < 0.65                        # ratings 4 and 5 of 1-5
    assert rep.loc["test", "cold-user rows"] > 0                                   # new users arrive later
    assert data.part("test")["timestamps"].min() >= data.part("valid")["timestamps"].max()


def test_movielens_csv_reader_names_bad_rows(tmp_path):
    from workbench.data.loaders import load_movielens_csv
    (tmp_path / "movies.csv").write_text("movieId,title,genres\n10,A (1990),Drama|Comedy\n20,B (1991),Drama\n")
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n7,10,4.0,100\n9,20,2.5,200\n")
    ds = load_movielens_csv(tmp_path)
    assert (ds.n_users, ds.n_items) == (2, 2)
    assert ds.interactions[["user_id", "item_id"]].to_numpy().tolist() == [[0, 0], [1, 1]]
    assert ds.features["genre"].tolist() == [[1, 1], [0, 1]]                       # Comedy, Drama
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n7,10,4.0,100\n9,30,2.5,200\n")
    with pytest.raises(DataError, match=r"ratings.csv: row 3: movieId 30 is not listed"):
        load_movielens_csv(tmp_path)
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n7,10,four,100\n")
    with pytest.raises(DataError, match=r"row 2: rating is 'four'; expected a number"):
        load_movielens_csv(tmp_path)


def test_ml_latest_small_when_present():
    from workbench.core.paths import shared_data_dir
    from workbench.data.loaders import load_movielens_csv
    folder = shared_data_dir() / "ml-latest-small"
    if not (folder / "ratings.csv").exists():
        pytest.skip(f"{folder} is absent")
    data = ctr_data(load_movielens_csv(folder))
    rep = data.report()
    assert rep["rows"].sum() == 100_836 and 0.4 < rep.loc["train", "positive rate"] < 0.7
