"""Published semantic-id and item-text files (hostile and real), and the real sequence data when present."""
import json

import numpy as np
import pytest

import workbench as wb
from workbench.data.loaders import read_code_index, read_item_text

SHARED = wb.shared_data_dir()


def write(tmp_path, obj, name="index.json"):
    path = tmp_path / name
    path.write_text(json.dumps(obj))
    return path


def test_read_code_index(tmp_path):
    codes = read_code_index(write(tmp_path, {"0": ["<a_3>", "<b_0>"], "1": ["<a_1>", "<b_7>"]}))
    assert codes.tolist() == [[3, 0], [1, 7]]
    bad = [({"0": ["<b_3>", "<a_0>"]}, "item 0: expected 2 tokens"),            # levels out of order
           ({"0": ["<a_3>", "<b_0>"], "1": ["<a_1>"]}, "item 1"),               # a short id
           ({"0": ["<a_3>"], "2": ["<a_1>"]}, r"keys '0'..'1'"),                # a missing item
           ({"0": ["a_3"]}, "item 0"), ({"0": ["<a_-3>"]}, "item 0")]
    for obj, message in bad:
        with pytest.raises(wb.DataError, match=message):
            read_code_index(write(tmp_path, obj))
    (tmp_path / "broken.json").write_text("{\"0\": [")
    with pytest.raises(wb.DataError, match="not valid JSON"):
        read_code_index(tmp_path / "broken.json")


def test_read_item_text(tmp_path):
    path = write(tmp_path, {"0": {"title": "Sal's", "description": "Pizza"}, "1": {"title": "Deli", "description": None}})
    assert read_item_text(path) == ["Sal's Pizza", "Deli"]
    with pytest.raises(wb.DataError, match="item 0: expected an object"):
        read_item_text(write(tmp_path, {"0": {"title": 3}}))


@pytest.mark.skipif(not (SHARED / "beauty" / "Beauty.txt").exists(), reason="../shared/data/beauty is absent")
def test_beauty_sequences_and_published_ids():
    data = wb.sequence_split(wb.load_sequences(SHARED / "beauty" / "Beauty.txt"))
    assert (data.n_users, data.n_items) == (22363, 12101)
    assert len(data.train_items) + 2 * len(data.users("test")) == 198502
    assert data.ties["checkable"] is False                     # a sequence file has positions, not times
    codes = read_code_index(SHARED / "beauty" / "Beauty.index.json", data.n_items)
    assert codes.shape == (12101, 4) and codes.max() == 255
    # in LETTER's published file 13 items repeat a tuple already taken (nine pairs, two triples); TIGER's extra
    # level makes them unique
    unique, sizes = wb.resolve_collisions(codes, 256, "level")
    assert len(np.unique(codes, axis=0)) == 12088 and sizes[-1] == 3
    wb.CodeTrie(unique, sizes)


@pytest.mark.skipif(not (SHARED / "yelp" / "Yelp.item.json").exists(), reason="../shared/data/yelp is absent")
def test_yelp_item_text():
    texts = read_item_text(SHARED / "yelp" / "Yelp.item.json")
    assert len(texts) == 20033 and texts[0].startswith("The Great Greek")


@pytest.mark.skipif(not (SHARED / "yelp" / "Yelp.txt").exists(), reason="../shared/data/yelp/Yelp.txt is absent")
def test_yelp_sequences_align_with_the_item_text_and_ids():
    data = wb.sequence_split(wb.load_sequences(SHARED / "yelp" / "Yelp.txt"))
    assert (data.n_users, data.n_items) == (30431, 20033)      # item k of Yelp.item.json = item k+1 of Yelp.txt
    assert read_code_index(SHARED / "yelp" / "Yelp.index.json", data.n_items).shape[0] == data.n_items
