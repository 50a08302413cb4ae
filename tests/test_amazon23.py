"""The Amazon Reviews 2023 reader: a hand-made folder with a known answer, bad files with clear errors, and the
shared Industrial & Scientific subset (skips when ../shared/data is absent). Encoders are replaced by a stub
(MiniLM itself is exercised by the ml-100k and catalogue tests)."""
import json

import numpy as np
import pytest

from workbench.core.paths import shared_data_dir
from workbench.data.amazon23 import HEADER, load_amazon23
from workbench.data.dataset import TEST, TRAIN, VALID, DataError

NAME = "Toy"
ROWS = {  # user 0: 0 -> 1 -> 2 (valid) -> 3 (test); user 1: 2 -> 2 (a repeat, dropped) -> 1 (test); user 2: 3 -> 0
    "train": [(0, "0", 1), (1, "2", 2), (2, "3", 0)],
    "valid": [(0, "0 1", 2)],
    "test": [(0, "0 1 2", 3), (1, "2 2", 1)],
}


@pytest.fixture(autouse=True)
def stub_encoder(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBENCH_DATA", str(tmp_path / "data"))
    monkeypatch.setattr("workbench.data.encoders.encode_texts",
                        lambda texts, **kw: np.array([[len(t), t.count(" ")] + [0.0] * 382 for t in texts], np.float32))


def write_folder(folder, rows=ROWS, items=None, captions=None, header="\t".join(HEADER), item2id=None):
    folder.mkdir(parents=True, exist_ok=True)
    for split, table in rows.items():
        body = "".join(f"{u}\t{h}\t{i}\n" for u, h, i in table)
        (folder / f"{NAME}.{split}.inter").write_text(header + "\n" + body)
    (folder / f"{NAME}.item2id").write_text(item2id or "".join(f"B0ITEM{i}\t{i}\n" for i in range(4)))
    (folder / f"{NAME}.user2id").write_text("".join(f"AUSER{u}\t{u}\n" for u in range(3)))
    items = items if items is not None else {str(i): {"title": f"item {i}", "brand": None, "categories": "Tools",
                                                       "description": ""} for i in range(4)}
    (folder / f"{NAME}.item.json").write_text(json.dumps(items))
    captions = captions if captions is not None else {
        str(i): {"title": "", "brand": "", "categories": "", "description": f"[Original Meta]: item {i} "
                 f"[Image Visual]: a photo of item {i}"} for i in range(4)}
    (folder / f"{NAME}.item-image2text.json").write_text(json.dumps(captions))
    return folder


def test_rows_become_one_sequence_per_user(tmp_path):
    ds = load_amazon23(write_folder(tmp_path / "a"))
    got = {(u, i): (t, x) for u, i, t, x in ds.interactions[["user_id", "item_id", "timestamp", "x_label"]].to_numpy()}
    assert got == {(0, 0): (0, TRAIN), (0, 1): (1, TRAIN), (0, 2): (2, VALID), (0, 3): (3, TEST),
                   (1, 2): (0, TRAIN), (1, 1): (2, TEST), (2, 3): (0, TRAIN), (2, 0): (1, TRAIN)}
    assert "1 repeat interactions dropped" in ds.description
    assert ds.items["caption"].tolist() == [f"a photo of item {i}" for i in range(4)]
    assert ds.items["raw_id"].tolist() == [f"B0ITEM{i}" for i in range(4)]
    assert ds.features["text"][:, 0].tolist() == [len(f"item {i} Tools") for i in range(4)]  # null brand skipped
    assert set(ds.features) == {"text", "caption"} and ds.features["caption"].shape == (4, 384)


def _break_rows(split, row):
    rows = {k: list(v) for k, v in ROWS.items()}
    rows[split][0] = row
    return rows


@pytest.mark.parametrize("change,match", [
    (dict(header="user_id\titem_id"), r"Toy.train.inter: header \['user_id', 'item_id'\] is not"),
    (dict(rows=_break_rows("train", (0, "0", "x1"))), r"Toy.train.inter: data row 0 \(line 2\): item is 'x1'"),
    (dict(rows=_break_rows("train", (0, "0,1", 1))), r"Toy.train.inter: data row 0 \(line 2\): history is '0,1'"),
    (dict(rows=_break_rows("train", (0, "0", 9))), r"Toy.train.inter: data row 0 \(line 2\): item id 9 is beyond the 4"),
    (dict(rows=_break_rows("train", (7, "0", 1))), r"Toy.train.inter: data row 0 \(line 2\): user id 7 is beyond the 3"),
    (dict(rows=_break_rows("valid", (0, "0 1 2 3", 2))), r"rows of user 0 do not form one sequence"),
    (dict(items={"0": {"title": "a"}}), r"Toy.item.json: expected an object with keys '0'..'3'"),
    (dict(items={str(i): {"title": 5} for i in range(4)}), r"Toy.item.json: item 0: expected an object whose title"),
    (dict(captions={str(i): {"description": "no caption"} for i in range(4)}),
     r"Toy.item-image2text.json: item 0 has no '\[Image Visual\]:' caption"),
    (dict(item2id="B0\t0\nB1\t0\nB2\t2\nB3\t3\n"), r"Toy.item2id: indices are not 0..3 each once"),
    (dict(item2id="B0\t0\nB1\tone\n"), r"Toy.item2id: data row 1 \(line 2\): index is 'one'; expected an integer index"),
])
def test_bad_files_are_named(tmp_path, change, match):
    with pytest.raises(DataError, match=match):
        load_amazon23(write_folder(tmp_path / "a", **change))


def test_broken_json_and_missing_files(tmp_path):
    folder = write_folder(tmp_path / "a")
    (folder / f"{NAME}.item.json").write_text("{not json")
    with pytest.raises(DataError, match=r"Toy.item.json: not valid JSON"):
        load_amazon23(folder)
    (folder / f"{NAME}.user2id").unlink()
    with pytest.raises(DataError, match=r"Toy.user2id: no such file"):
        load_amazon23(folder)
    with pytest.raises(DataError, match="expected exactly one <name>.train.inter"):
        load_amazon23(tmp_path)


SHARED = shared_data_dir() / "amazon23-industrial-mini"


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"{SHARED} is absent (reference data)")
def test_shared_industrial_and_scientific():
    ds = load_amazon23(SHARED)
    assert (ds.n_users, ds.n_items, len(ds.interactions)) == (7595, 1204, 13566)
    assert ds.interactions["x_label"].value_counts().to_dict() == {TRAIN: 12092, TEST: 746, VALID: 728}
    assert "3619 repeat interactions dropped" in ds.description
    seq = ds.interactions[ds.interactions["user_id"] == 383].sort_values("timestamp")
    assert seq[["item_id", "x_label"]].to_numpy().tolist() == [[375, TRAIN], [36, TRAIN], [376, VALID], [348, VALID]]
    assert ds.items.loc[0, "raw_id"] == "B09VJZB1ML" and ds.items.loc[0, "caption"].startswith("A white rectangular")
    assert (ds.item_degree("train") < 10).mean() == pytest.approx(0.80, abs=0.01)  # very sparse: most items cold


def test_the_benchmark_skips_without_the_data(monkeypatch, tmp_path):
    from workbench.bench.amazon23 import bench_amazon23

    monkeypatch.setenv("WORKBENCH_SHARED_DATA", str(tmp_path / "nowhere"))
    assert "is absent" in bench_amazon23()["skipped"]


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"{SHARED} is absent (reference data)")
def test_the_benchmark_reports_every_model_with_chance():
    from workbench.bench.amazon23 import MODELS, bench_amazon23, summarize_amazon23
    from workbench.bench.report import render_amazon23

    run = bench_amazon23(epochs=2)
    assert set(run["models"]) == set(MODELS) and run["models"]["popularity"]["zero-shot"] == 0.0
    assert run["chance_cold_among_themselves"] == pytest.approx(20 / run["cold_items"])
    text = render_amazon23({"runs": [run, run], "seeds": [0, 1], "summary": summarize_amazon23([run, run])})
    assert "| motorec |" in text and "Chance among the cold items" in text


def test_blank_lines_empty_splits_and_ragged_rows(tmp_path):
    rows = {"train": ROWS["train"], "valid": ROWS["valid"], "test": []}  # no test rows at all
    folder = write_folder(tmp_path / "a", rows=rows)
    text = (folder / f"{NAME}.train.inter").read_text()
    (folder / f"{NAME}.train.inter").write_text(text.replace("\n1\t", "\n\n1\t") + "\n")
    ds = load_amazon23(folder)
    assert (ds.interactions["x_label"] == TEST).sum() == 0 and len(ds.interactions) == 6
    (folder / f"{NAME}.train.inter").write_text(text.replace("\n1\t2\t2", "\n\n1\tx\t2"))
    with pytest.raises(DataError, match=r"Toy.train.inter: data row 1 \(line 4\): history is 'x'"):
        load_amazon23(folder)
    (folder / f"{NAME}.item2id").write_text("B0\t0\t9\nB1\t1\n")
    with pytest.raises(DataError, match=r"Toy.item2id: data row 0 \(line 1\) has 3 tab-separated fields; expected 2"):
        load_amazon23(folder)
