"""Real-data loaders: MMRec bundles (round trip, zero-shot items, bad files), ml-100k, sequence files.
Tests on ../shared/data skip when it is absent."""
import gzip

import numpy as np
import pandas as pd
import pytest

from workbench.data.dataset import TRAIN, DataError, RecDataset
from workbench.data.loaders import (MMREC_COLUMNS, load_ml100k, load_mmrec, load_sequences, read_sequences,
                                    recbole_example_dir, save_mmrec)
from workbench.core.paths import shared_data_dir

HEADER = "\t".join(MMREC_COLUMNS)


def write_bundle(folder, rows, image=None, text=None, name="toy", header=HEADER):
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.inter").write_text(header + "\n" + "".join("\t".join(map(str, r)) + "\n" for r in rows))
    if image is not None:
        np.save(folder / "image_feat.npy", image)
    if text is not None:
        np.save(folder / "text_feat.npy", text)
    return folder


ROWS = [(0, 0, 5, 10, 0), (0, 1, 4, 11, 0), (0, 2, 3, 12, 2), (1, 1, 5, 10, 0), (1, 3, 1, 13, 1), (1, 4, 2, 14, 2)]


def test_bundle_round_trip_and_zero_shot(tmp_path):
    rng = np.random.default_rng(0)
    img, txt = rng.random((6, 5), dtype=np.float32), rng.random((6, 3), dtype=np.float32)
    ds = load_mmrec(write_bundle(tmp_path / "b", ROWS, img, txt))
    assert ds.n_items == 6 and ds.n_users == 2  # item 5 never interacted; items 2, 3, 4 only held out
    assert set(ds.features) == {"image", "text"}
    deg = ds.item_degree("train")
    assert deg.tolist() == [1, 2, 0, 0, 0, 0]
    save_mmrec(ds, tmp_path / "out", name="copy")
    again = load_mmrec(tmp_path / "out")
    pd.testing.assert_frame_equal(again.interactions, ds.interactions)
    np.testing.assert_array_equal(again.features["image"], img)


def test_bundle_with_one_modality_or_none(tmp_path):
    only_text = load_mmrec(write_bundle(tmp_path / "t", ROWS, text=np.ones((5, 2), np.float32)))
    assert list(only_text.features) == ["text"] and only_text.n_items == 5
    bare = load_mmrec(write_bundle(tmp_path / "n", ROWS))
    assert bare.features == {} and bare.n_items == 5


@pytest.mark.parametrize("header,rows,match", [
    ("userID\titemID\trating\ttimestamp", ROWS, r"missing \['x_label'\]"),
    (HEADER + "\textra", ROWS, r"unexpected \['extra'\]"),
    (HEADER, [(0, "x7", 5, 1, 0)] + ROWS[1:], r"data row 0 \(line 2\): itemID is 'x7'; expected a non-negative integer id"),
    (HEADER, ROWS[:3] + [(1, 1, 5, 1, 7)] + ROWS[4:], r"data row 3 \(line 5\): x_label 7 is not 0, 1 or 2"),
    (HEADER, ROWS + [(0, 0, 5, 10, 0)], r"repeat a \(user_id, item_id\) pair"),
])
def test_bad_inter_files(tmp_path, header, rows, match):
    with pytest.raises(DataError, match=match) as err:
        load_mmrec(write_bundle(tmp_path / "bad", rows, header=header))
    assert "toy.inter" in str(err.value)


def test_bad_feature_files(tmp_path):
    with pytest.raises(DataError, match=r"row 5: itemID 4 is beyond the 4 rows of image_feat.npy"):
        load_mmrec(write_bundle(tmp_path / "a", ROWS, image=np.ones((4, 2))))
    with pytest.raises(DataError, match="image_feat.npy has 6 rows, text_feat.npy has 7 rows"):
        load_mmrec(write_bundle(tmp_path / "b", ROWS, image=np.ones((6, 2)), text=np.ones((7, 2))))
    inf = np.ones((6, 2))
    inf[2, 0] = np.inf
    with pytest.raises(DataError, match=r"text_feat.npy: modality 'text' has NaN/inf .* \[2\]"):
        load_mmrec(write_bundle(tmp_path / "c", ROWS, text=inf))
    with pytest.raises(DataError, match="expected exactly one"):
        load_mmrec(tmp_path)
    no_train = [(u, i, r, t, 2 if u == 1 else x) for u, i, r, t, x in ROWS]
    with pytest.raises(DataError, match=r"no training interaction, e.g. user_id \[1\]"):
        load_mmrec(write_bundle(tmp_path / "d", no_train))
    all_test = [(u, i, r, t, 2) for u, i, r, t, _ in ROWS]
    with pytest.raises(DataError, match="the train split is empty"):
        load_mmrec(write_bundle(tmp_path / "e", all_test))


def test_sequence_reader(tmp_path):
    path = tmp_path / "S.txt"
    path.write_text("1 3 1 2\n2 2 3\n3 1 1 4\n")
    seqs = read_sequences(path)
    assert [s.tolist() for s in seqs] == [[2, 0, 1], [1, 2], [0, 0, 3]]
    ds = load_sequences(path)
    assert ds.n_users == 3 and ds.n_items == 4 and len(ds.interactions) == 7  # repeated (2, 0) kept once
    path.write_text("1 3 1\n2 a 3\n")
    with pytest.raises(DataError, match=r"S.txt: line 2: token 'a' is not an integer id in \[0, 2147483647\]"):
        read_sequences(path)
    path.write_text("1 3 1\n5 2 3\n")
    with pytest.raises(DataError, match="line 2: user id 5 is out of order"):
        read_sequences(path)


def _recbole_installed():
    try:
        recbole_example_dir()
        return True
    except FileNotFoundError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not _recbole_installed(), reason="recbole==1.2.1 is not installed (pip install --no-deps recbole==1.2.1)")
def test_ml100k():
    ds = load_ml100k()
    assert (ds.n_users, ds.n_items, len(ds.interactions)) == (943, 1682, 100_000)
    assert ds.features["text"].shape == (1682, 384) and ds.features["genre"].shape == (1682, 19)
    assert (ds.features["genre"].sum(1) >= 1).all()
    assert ds.items.loc[0, "title"] == "Toy Story" and ds.items.loc[0, "raw_id"] == 1
    assert np.allclose(np.linalg.norm(ds.features["text"], axis=1), 1, atol=1e-3)


SHARED = shared_data_dir()


@pytest.mark.skipif(not (SHARED / "baby-interactions").is_dir(), reason=f"{SHARED} is absent (reference data)")
def test_shared_baby_interactions():
    path = SHARED / "baby-interactions" / "baby.inter.gz"
    with gzip.open(path, "rt") as fh:
        assert fh.readline().split() == list(MMREC_COLUMNS)
    ds = load_mmrec(SHARED / "baby-interactions")
    assert (ds.n_users, ds.n_items, len(ds.interactions)) == (19445, 7050, 160792)
    assert (ds.interactions["x_label"] == TRAIN).mean() == pytest.approx(0.744, abs=0.01)


@pytest.mark.skipif(not (SHARED / "beauty").is_dir(), reason=f"{SHARED} is absent (reference data)")
def test_shared_beauty_sequences():
    ds = load_sequences(SHARED / "beauty" / "Beauty.txt")
    assert (ds.n_users, ds.n_items, len(ds.interactions)) == (22363, 12101, 198502)
    assert isinstance(ds, RecDataset) and (ds.user_degree(None) >= 5).all()
