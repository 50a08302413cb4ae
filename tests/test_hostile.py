"""Hostile and unusual inputs, as a new user would bring them: each must end in a clear error that names the file
(or the dataset), the row or field and what was expected, or be handled correctly; nothing half-written.

Every case calls only public entry points (``load_mmrec``, ``save_mmrec``, ``read_sequences``, ``RecDataset``,
the splits, ``fit``, ``evaluate``), so the same table also measures how older code fared."""
import gzip
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.data.dataset import DataError
from workbench.data.loaders import MMREC_COLUMNS, load_mmrec, load_sequences, read_mmrec_inter, read_sequences, save_mmrec

HEADER = "\t".join(MMREC_COLUMNS)
ROWS = [(0, 0, 5, 10, 0), (0, 1, 4, 11, 0), (0, 2, 3, 12, 2), (1, 1, 5, 10, 0), (1, 3, 1, 13, 1), (1, 4, 2, 14, 2)]
BIG_LINE = 5 << 20  # characters, past the 4 Mi line bound


def _rows_text(rows, header=HEADER, newline="\n"):
    return header + newline + "".join("\t".join(map(str, r)) + newline for r in rows)


def _bundle(folder: Path, inter: bytes | str | None = None, **features) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    inter = _rows_text(ROWS) if inter is None else inter
    (folder / "toy.inter").write_bytes(inter.encode() if isinstance(inter, str) else inter)
    for name, X in features.items():
        path = folder / f"{name}_feat.npy"
        if isinstance(X, bytes):
            path.write_bytes(X)
        else:
            np.save(path, X)
    return folder


def _npy_bytes(X) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, X, allow_pickle=True)
    return buf.getvalue()


def _npz_bytes() -> bytes:
    import io

    buf = io.BytesIO()
    np.savez(buf, x=np.ones((6, 2), np.float32))
    return buf.getvalue()


def _gz(text: str) -> bytes:
    return gzip.compress(text.encode())


def _sequences(tmp: Path, content: bytes | str, name="S.txt") -> Path:
    path = tmp / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


# each case: (id, call(tmp_path), expected error regex or None when the input must be handled)
INTER_CASES = [
    ("inter-dev-zero", lambda t: read_mmrec_inter("/dev/zero"), r"/dev/zero: not a regular file"),
    ("inter-folder", lambda t: read_mmrec_inter(t), r"not a regular file"),
    ("inter-missing-file", lambda t: read_mmrec_inter(t / "nope.inter"), r"nope.inter: no such file"),
    ("inter-one-huge-line", lambda t: load_mmrec(_bundle(t / "b", "x" * BIG_LINE)), r"toy.inter: line 1 is longer than"),
    ("inter-huge-row", lambda t: load_mmrec(_bundle(t / "b", _rows_text(ROWS) + "1\t" * BIG_LINE)),
     r"toy.inter: line 8 is longer than"),
    ("inter-latin1", lambda t: load_mmrec(_bundle(t / "b", (_rows_text(ROWS) + "1\t2\t3\t4\t0 caf\xe9\n").encode("latin-1"))),
     r"toy.inter: line \d+: bytes that are not UTF-8"),
    ("inter-gz-truncated", lambda t: read_mmrec_inter(_write(t / "a.inter.gz", _gz(_rows_text(ROWS * 50))[:-30])),
     r"a.inter.gz: truncated or corrupt gzip"),
    ("inter-gz-corrupt", lambda t: read_mmrec_inter(_write(t / "a.inter.gz", _flip(_gz(_rows_text(ROWS * 50)), 40))),
     r"a.inter.gz: truncated or corrupt gzip"),
    ("inter-gz-not-gzip", lambda t: read_mmrec_inter(_write(t / "a.inter.gz", _rows_text(ROWS).encode())),
     r"a.inter.gz: truncated or corrupt gzip"),
    ("inter-empty-file", lambda t: load_mmrec(_bundle(t / "b", "")), r"toy.inter: header \[''\] does not match"),
    ("inter-header-only", lambda t: load_mmrec(_bundle(t / "b", HEADER + "\n")), r"toy.inter: no interaction rows"),
    ("inter-id-2^63", lambda t: load_mmrec(_bundle(t / "b", _rows_text([(2**63, 0, 5, 1, 0)] + ROWS[1:]))),
     r"toy.inter: data row 0 \(line 2\): field 'user_id' is '9223372036854775808'; expected an integer \(64-bit\)"),
    ("inter-id-2^64", lambda t: load_mmrec(_bundle(t / "b", _rows_text([(0, 2**64, 5, 1, 0)] + ROWS[1:]))),
     r"toy.inter: data row 0 \(line 2\): itemID is '18446744073709551616'; expected a non-negative integer id"),
    ("inter-id-2^40", lambda t: load_mmrec(_bundle(t / "b", _rows_text([(0, 2**40, 5, 1, 0)] + ROWS[1:]))),
     r"toy.inter: data row 0 \(line 2\): item_id 1099511627776 is above 2147483647"),
    ("inter-sparse-user-ids", lambda t: load_mmrec(_bundle(t / "b", _rows_text([(2**31 - 1, 0, 5, 1, 0)] + ROWS[1:]))),
     r"toy.inter: userID values reach 2,147,483,647 but only 3 distinct ids occur"),
    ("inter-sparse-item-ids", lambda t: load_mmrec(_bundle(t / "b", _rows_text([(0, 50_000_000, 5, 1, 0)] + ROWS[1:]))),
     r"toy.inter: itemID values reach 50,000,000 but only 5 distinct"),
    ("inter-negative-id", lambda t: load_mmrec(_bundle(t / "b", _rows_text([(-1, 0, 5, 1, 0)] + ROWS[1:]))),
     r"toy.inter: data row 0 \(line 2\): userID is '-1'; expected a non-negative integer id in ASCII digits"),
    ("inter-float-id", lambda t: load_mmrec(_bundle(t / "b", _rows_text([(0.5, 0, 5, 1, 0)] + ROWS[1:]))),
     r"toy.inter: data row 0 \(line 2\): userID is '0.5'; expected a non-negative integer id"),
    ("inter-arabic-digits", lambda t: load_mmrec(_bundle(t / "b", _rows_text([("\u0661", 0, 5, 1, 0)] + ROWS[1:]))),
     r"toy.inter: data row 0 \(line 2\): userID is '\u0661'; expected a non-negative integer id in ASCII digits"),
    ("inter-word-id", lambda t: load_mmrec(_bundle(t / "b", _rows_text([("True", 0, 5, 1, 0)] + ROWS[1:]))),
     r"toy.inter: data row 0 \(line 2\): userID is 'True'"),
    ("inter-nan-rating", lambda t: load_mmrec(_bundle(t / "b", _rows_text([(0, 0, "nan", 1, 0)] + ROWS[1:]))),
     r"toy.inter: data row 0 \(line 2\): field 'rating' is 'nan'; expected a finite number"),
    ("inter-inf-rating", lambda t: load_mmrec(_bundle(t / "b", _rows_text([(0, 0, "inf", 1, 0)] + ROWS[1:]))),
     r"toy.inter: data row 0 \(line 2\): field 'rating' is 'inf'"),
    ("inter-float-label", lambda t: load_mmrec(_bundle(t / "b", _rows_text([(0, 0, 5, 1, 1.5)] + ROWS[1:]))),
     r"toy.inter: data row 0 \(line 2\): x_label is '1.5'; expected 0, 1 or 2"),
    ("inter-label-3", lambda t: load_mmrec(_bundle(t / "b", _rows_text([(0, 0, 5, 1, 3)] + ROWS[1:]))),
     r"toy.inter: data row 0 \(line 2\): x_label 3 is not 0, 1 or 2"),
    ("inter-short-row", lambda t: load_mmrec(_bundle(t / "b", _rows_text([(0, 0, 5, 1)] + ROWS[1:]))),
     r"toy.inter: the first data row has 4 fields; expected 5"),
    ("inter-long-row", lambda t: load_mmrec(_bundle(t / "b", _rows_text([(0, 0, 5, 1, 0, 9)] + ROWS[1:]))),
     r"toy.inter: data row 0 \(line 2\) has 6 tab-separated fields; expected 5"),
    ("inter-long-later-row", lambda t: load_mmrec(_bundle(t / "b", _rows_text(ROWS[:2] + [(0, 3, 5, 1, 0, 9)] + ROWS[3:]))),
     r"toy.inter: line 4 has 6 fields; expected 5"),
    ("inter-space-separated", lambda t: load_mmrec(_bundle(t / "b", _rows_text(ROWS).replace("\t", " "))),
     r"toy.inter: header .* does not match"),
    ("inter-timestamp-float", lambda t: load_mmrec(_bundle(t / "b", _rows_text([(0, 0, 5, 1.25, 0)] + ROWS[1:]))),
     r"toy.inter: data row 0 \(line 2\): timestamp is '1.25'; expected an integer in ASCII digits"),
    ("inter-bom", lambda t: load_mmrec(_bundle(t / "b", "\ufeff" + _rows_text(ROWS))), None),
    ("inter-crlf", lambda t: load_mmrec(_bundle(t / "b", _rows_text(ROWS, newline="\r\n"))), None),
    ("inter-gz-ok", lambda t: load_mmrec(_bundle_gz(t / "b")), None),
    ("inter-blank-line-inside", lambda t: load_mmrec(_bundle(t / "b", _rows_text(ROWS[:2]) + "\n" + _rows_text(ROWS[2:], header="")[1:])),
     None),
    ("inter-bad-row-after-a-blank-line", lambda t: load_mmrec(_bundle(t / "b", _rows_text(ROWS[:2]) + "\n" + _rows_text([(0, 9, "x", 1, 0)] + ROWS[3:], header="")[1:])),
     r"toy.inter: data row 2 \(line 5\): field 'rating' is 'x'"),
    ("inter-id-1e3", lambda t: load_mmrec(_bundle(t / "b", _rows_text([("1e3", 0, 5, 1, 0)] + ROWS[1:]))),
     r"toy.inter: data row 0 \(line 2\): userID is '1e3'"),
    ("inter-padded-id", lambda t: load_mmrec(_bundle(t / "b", _rows_text([(" 7", 0, 5, 1, 0)] + ROWS[1:]))),
     r"toy.inter: data row 0 \(line 2\): userID is ' 7'"),
    ("inter-trailing-blank-lines", lambda t: load_mmrec(_bundle(t / "b", _rows_text(ROWS) + "\n\n")), None),
    ("inter-no-final-newline", lambda t: load_mmrec(_bundle(t / "b", _rows_text(ROWS).rstrip("\n"))), None),
]

FEATURE_CASES = [
    ("npy-empty", lambda t: load_mmrec(_bundle(t / "b", image=b"")), r"image_feat.npy: empty file \(0 bytes\)"),
    ("npy-0d", lambda t: load_mmrec(_bundle(t / "b", image=np.float32(3.0))),
     r"image_feat.npy: array of shape \(\); expected a 2-D"),
    ("npy-1d", lambda t: load_mmrec(_bundle(t / "b", image=np.ones(6, np.float32))),
     r"image_feat.npy: array of shape \(6,\); expected a 2-D"),
    ("npy-3d", lambda t: load_mmrec(_bundle(t / "b", image=np.ones((6, 2, 2), np.float32))),
     r"image_feat.npy: array of shape \(6, 2, 2\)"),
    ("npy-is-npz", lambda t: load_mmrec(_bundle(t / "b", image=_npz_bytes())), r"image_feat.npy: a zip archive"),
    ("npy-is-text", lambda t: load_mmrec(_bundle(t / "b", image=b"1,2\n3,4\n")), r"image_feat.npy: not a .npy file"),
    ("npy-truncated", lambda t: load_mmrec(_bundle(t / "b", image=_npy_bytes(np.ones((6, 50), np.float32))[:-100])),
     r"image_feat.npy: unreadable .npy"),
    ("npy-pickled-objects", lambda t: load_mmrec(_bundle(t / "b", image=_npy_bytes(np.array([[{}]] * 6, dtype=object)))),
     r"image_feat.npy: unreadable .npy"),
    ("npy-complex", lambda t: load_mmrec(_bundle(t / "b", image=np.ones((6, 2), np.complex64))),
     r"image_feat.npy: dtype complex64; expected real numbers"),
    ("npy-strings", lambda t: load_mmrec(_bundle(t / "b", image=np.array([["a", "b"]] * 6))),
     r"image_feat.npy: dtype <U1; expected real numbers"),
    ("npy-zero-width", lambda t: load_mmrec(_bundle(t / "b", image=np.ones((6, 0), np.float32))),
     r"image_feat.npy: matrix of shape \(6, 0\) has no columns"),
    ("npy-nan", lambda t: load_mmrec(_bundle(t / "b", image=np.full((6, 2), np.nan, np.float32))),
     r"image_feat.npy: modality 'image' has NaN/inf"),
    ("npy-a-folder", lambda t: load_mmrec(_folder_feature(t / "b")), r"image_feat.npy: not a regular file"),
    ("npy-too-few-rows", lambda t: load_mmrec(_bundle(t / "b", image=np.ones((3, 2), np.float32))),
     r"toy.inter: data row 4: itemID 3 is beyond the 3 rows of image_feat.npy"),
    ("npy-big-endian", lambda t: load_mmrec(_bundle(t / "b", image=np.ones((6, 2), ">f4"))), None),
    ("npy-float64", lambda t: load_mmrec(_bundle(t / "b", image=np.ones((6, 2), np.float64))), None),
    ("npy-fortran-order", lambda t: load_mmrec(_bundle(t / "b", image=np.asfortranarray(np.ones((6, 3), np.float32)))), None),
    ("npy-integers", lambda t: load_mmrec(_bundle(t / "b", image=np.ones((6, 2), np.int16))), None),
]

SEQUENCE_CASES = [
    ("seq-dev-zero", lambda t: read_sequences("/dev/zero"), r"/dev/zero: not a regular file"),
    ("seq-huge-line", lambda t: read_sequences(_sequences(t, "1 " + "2 " * (BIG_LINE // 2))), r"S.txt: line 1 is longer than"),
    ("seq-arabic-digits", lambda t: read_sequences(_sequences(t, "1 2 3\n2 \u0663 4\n")),
     r"S.txt: line 2: token '\u0663' is not an integer id"),
    ("seq-superscript", lambda t: read_sequences(_sequences(t, "1 2 \u00b2\n")), r"S.txt: line 1: token '\u00b2'"),
    ("seq-fullwidth", lambda t: read_sequences(_sequences(t, "1 \uff12 3\n")), r"S.txt: line 1: token '\uff12'"),
    ("seq-plus-sign", lambda t: read_sequences(_sequences(t, "1 +2 3\n")), r"S.txt: line 1: token '\+2'"),
    ("seq-negative", lambda t: read_sequences(_sequences(t, "1 -2 3\n")), r"S.txt: line 1: token '-2'"),
    ("seq-id-2^63", lambda t: read_sequences(_sequences(t, f"1 2 {2**63}\n")), r"S.txt: line 1: token '9223372036854775808'"),
    ("seq-id-2^31", lambda t: read_sequences(_sequences(t, f"1 2 {2**31}\n")), r"S.txt: line 1: token '2147483648'"),
    ("seq-sparse-ids", lambda t: load_sequences(_sequences(t, "1 2 3\n2 40000000 2\n")),
     r"S.txt: item id values reach 39,999,999 but only 3 distinct"),
    ("seq-latin1", lambda t: read_sequences(_sequences(t, "1 2 3\n2 3 \xe9\n".encode("latin-1"))),
     r"S.txt: line 2: bytes that are not UTF-8"),
    ("seq-gz-truncated", lambda t: read_sequences(_write(t / "S.txt.gz", _gz("".join(f"{u} 2 3\n" for u in range(1, 2001)))[:-20])),
     r"S.txt.gz: truncated or corrupt gzip"),
    ("seq-empty-line", lambda t: read_sequences(_sequences(t, "1 2 3\n\n3 4\n")), r"S.txt: line 2 is empty"),
    ("seq-empty-file", lambda t: read_sequences(_sequences(t, "")), r"S.txt: no sequences"),
    ("seq-user-only", lambda t: read_sequences(_sequences(t, "1\n")), r"S.txt: line 1: user 1 has no items"),
    ("seq-item-zero-one-based", lambda t: read_sequences(_sequences(t, "1 0 2\n")), r"S.txt: line 1: item id 0 in a 1-based"),
    ("seq-crlf", lambda t: read_sequences(_sequences(t, "1 2 3\r\n2 3 4\r\n")), None),
    ("seq-tabs", lambda t: read_sequences(_sequences(t, "1\t2\t3\n2\t3\t4\n")), None),
    ("seq-bom", lambda t: read_sequences(_sequences(t, "\ufeff1 2 3\n")), None),
]


def _write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def _flip(data: bytes, at: int) -> bytes:
    out = bytearray(data)
    out[at] ^= 0xFF
    return bytes(out)


def _bundle_gz(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "toy.inter.gz").write_bytes(_gz(_rows_text(ROWS)))
    return folder


def _folder_feature(folder: Path) -> Path:
    _bundle(folder)
    (folder / "image_feat.npy").mkdir()
    return folder


@pytest.mark.parametrize("case", INTER_CASES + FEATURE_CASES + SEQUENCE_CASES, ids=lambda c: c[0])
def test_bad_input_files(tmp_path, case):
    _, call, expected = case
    if expected is None:
        assert call(tmp_path) is not None
        return
    with pytest.raises(DataError, match=expected):
        call(tmp_path)


# ------------------------------------------------------------------------------------------- in-memory input
def _toy():
    return wb.RecDataset("toy", pd.DataFrame(ROWS, columns=["user_id", "item_id", "rating", "timestamp", "x_label"]),
                         2, 6, {"image": np.ones((6, 2), np.float32)})


MEMORY_CASES = [
    ("split-float-labels", lambda: _toy().with_split(np.array([0, 0, 1.5, 0, 1, 2])), r"toy: x_label row 2 is 1.5"),
    ("split-integral-floats", lambda: _toy().with_split(np.array([0.0, 0, 1, 0, 1, 2])), r"integer codes 0, 1 or 2"),
    ("split-label-7", lambda: _toy().with_split(np.array([0, 0, 7, 0, 1, 2])), r"toy: x_label row 2 is 7"),
    ("split-bool-labels", lambda: _toy().with_split(np.array([0, 0, 1, 0, 1, 1], bool)), r"integer codes"),
    ("random-split-empty", lambda: wb.random_split(pd.DataFrame({"user_id": [], "item_id": []})),
     r"random_split: the interaction table is empty"),
    ("random-split-no-user-column", lambda: wb.random_split(pd.DataFrame({"item_id": [1]})),
     r"random_split: the interaction table lacks column\(s\) \['user_id'\]"),
    ("loo-empty", lambda: wb.leave_one_out(pd.DataFrame({"user_id": [], "timestamp": []})), r"leave_one_out: .* empty"),
    ("loo-no-timestamp", lambda: wb.leave_one_out(pd.DataFrame({"user_id": [0]})), r"lacks column\(s\) \['timestamp'\]"),
    ("temporal-empty", lambda: wb.temporal_split(pd.DataFrame({"timestamp": []})), r"temporal_split: .* empty"),
    ("dataset-zero-users", lambda: wb.RecDataset("z", pd.DataFrame({"user_id": [], "item_id": []}), 0, 3),
     r"z: n_users is 0; expected an integer in \[1,"),
    ("dataset-2^40-items", lambda: wb.RecDataset("z", pd.DataFrame({"user_id": [0], "item_id": [0]}), 1, 2**40),
     r"z: n_items is 1099511627776"),
    ("dataset-float-size", lambda: wb.RecDataset("z", pd.DataFrame({"user_id": [0], "item_id": [0]}), 1.5, 2),
     r"z: n_users is 1.5"),
    ("dataset-complex-features", lambda: wb.RecDataset("z", pd.DataFrame({"user_id": [0], "item_id": [0]}), 1, 2,
                                                       {"image": np.ones((2, 2), np.complex128)}),
     r"z: modality 'image' must hold real numbers, got dtype complex128"),
    ("dataset-zero-width-features", lambda: wb.RecDataset("z", pd.DataFrame({"user_id": [0], "item_id": [0]}), 1, 2,
                                                          {"image": np.ones((2, 0), np.float32)}),
     r"z: modality 'image' has shape \(2, 0\): no columns"),
    ("dataset-bool-ids", lambda: wb.RecDataset("z", pd.DataFrame({"user_id": [True], "item_id": [0]}), 1, 2),
     r"z: field 'user_id' holds booleans"),
    ("dataset-id-past-range", lambda: wb.RecDataset("z", pd.DataFrame({"user_id": [0], "item_id": [5]}), 1, 2),
     r"z: row 0: item_id 5 is beyond the 2 feature rows"),
]


@pytest.mark.parametrize("case", MEMORY_CASES, ids=lambda c: c[0])
def test_bad_in_memory_input(case):
    _, call, expected = case
    with pytest.raises((DataError, ValueError), match=expected):
        call()


def test_an_empty_dataset_summarizes():
    ds = wb.RecDataset("e", pd.DataFrame({"user_id": [], "item_id": []}), 2, 3)
    stats = ds.summary()
    assert stats["interactions"] == 0 and stats["sparsity"] == 1.0 and stats["items_without_interactions"] == 3


# ----------------------------------------------------------------------------------------------- settings
@pytest.mark.parametrize("options,expected", [
    ({"batch_size": 0}, r"batch_size must be a positive integer"),
    ({"batch_size": -5}, r"batch_size must be a positive integer"),
    ({"batch_size": 2.5}, r"batch_size must be a positive integer"),
    ({"epochs": 0}, r"epochs must be a positive integer"),
    ({"lr": float("nan")}, r"lr > 0"),
    ({"lr": -1e-3}, r"lr > 0"),
    ({"seed": -1}, r"seed must be an integer in \[0, 2\*\*32\)"),
    ({"seed": 1.5}, r"seed must be an integer"),
    ({"seed": 2**40}, r"seed must be an integer"),
    ({"eval_every": 0}, r"eval_every must be a positive integer"),
    ({"optimizer": "sgd"}, r"optimizer must be 'adam' or 'adamw'"),
    ({"patience": 0, "metric": "recall@20"}, r"patience"),
    ({"epoch": 3}, r"unknown option\(s\) 'epoch'"),
])
def test_bad_training_settings(options, expected):
    X = np.ones((10, 4), np.float32)
    with pytest.raises(ValueError, match=expected):
        wb.RQVAE(4, hidden=(8,), quantizer=wb.QuantizerConfig(D=2, L=1, K=4)).fit(X, progress=False, **options)


def test_configure_with_a_profile_name_instead_of_a_config():
    with pytest.raises(TypeError, match="expected a config dataclass"):
        wb.configure("smoke", n_users=3)


@pytest.mark.parametrize("X,expected", [
    (np.ones((0, 4), np.float32), r"non-empty real"),
    (np.ones((10, 5), np.float32), r"features have 5 columns; this tokenizer was built for 4"),
    (np.ones(10, np.float32), r"non-empty real"),
    (np.full((10, 4), np.nan, np.float32), r"NaN/inf"),
    (np.ones((10, 4), np.complex64), r"non-empty real"),
])
def test_bad_tokenizer_input(X, expected):
    with pytest.raises(ValueError, match=expected):
        wb.RQVAE(4, hidden=(8,), quantizer=wb.QuantizerConfig(D=2, L=1, K=4)).fit(X, progress=False, epochs=1)


@pytest.mark.parametrize("X,expected", [
    (np.ones((3, 5), np.float32), r"expects an \(n, 4\) feature matrix, got shape \(3, 5\)"),
    (np.ones((0, 4), np.float32), r"no rows to encode"),
    (np.ones(4, np.float32), r"expects an \(n, 4\) feature matrix"),
])
def test_bad_input_to_a_fitted_tokenizer(X, expected):
    tok = wb.RQVAE(4, hidden=(8,), quantizer=wb.QuantizerConfig(D=2, L=1, K=4)).fit(
        np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32), progress=False, epochs=1)
    with pytest.raises(ValueError, match=expected):
        tok.encode(X)
    with pytest.raises(ValueError, match=expected):
        tok.reconstruct(X)


def test_weights_of_the_wrong_length_or_sign():
    X = np.ones((10, 4), np.float32)
    tok = wb.RQVAE(4, hidden=(8,), quantizer=wb.QuantizerConfig(D=2, L=1, K=4))
    for w in (np.ones(9), -np.ones(10), np.full(10, np.nan)):
        with pytest.raises(ValueError, match="weights must be 10 finite non-negative numbers"):
            tok.fit(X, weights=w, progress=False, epochs=1)


# ------------------------------------------------------------------------------------------------- bundles
def _split_toy(drop_text=False):
    ds = _toy()
    feats = {"image": np.arange(12, dtype=np.float32).reshape(6, 2)}
    if not drop_text:
        feats["text"] = np.ones((6, 3), np.float32)
    return wb.RecDataset("toy", ds.interactions, 2, 6, feats)


@pytest.mark.parametrize("name", ["../x", "a/b", "/abs", ".hidden", "a\nb", ".."])
def test_a_bundle_name_cannot_escape_its_folder(tmp_path, name):
    with pytest.raises(ValueError, match="not a plain file name"):
        save_mmrec(_split_toy(), tmp_path / "out", name=name)
    assert not any(p.name.endswith((".inter", ".npy")) for p in tmp_path.rglob("*"))


def test_a_resave_without_a_modality_leaves_no_stale_file(tmp_path):
    save_mmrec(_split_toy(), tmp_path / "b")
    save_mmrec(_split_toy(drop_text=True), tmp_path / "b")
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["bundle.json", "image_feat.npy", "toy.inter"]
    assert list(load_mmrec(tmp_path / "b").features) == ["image"]


def test_a_failed_save_leaves_the_previous_bundle_whole(tmp_path, monkeypatch):
    """A full disk while the second file is written: the old bundle stays as it was, nothing half-written remains
    beside it, and it still loads."""
    save_mmrec(_split_toy(), tmp_path / "b")
    before = {p.name: p.read_bytes() for p in (tmp_path / "b").iterdir()}
    calls = []
    real_save = np.save

    def failing_save(fh, X, *a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_save(fh, X, *a, **k)

    monkeypatch.setattr(np, "save", failing_save)
    changed = _split_toy()
    changed.interactions.loc[0, "rating"] = 1.0
    with pytest.raises(OSError, match="No space left"):
        save_mmrec(changed, tmp_path / "b")
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in (tmp_path / "b").iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["b"]
    load_mmrec(tmp_path / "b")


def test_a_bundle_mixed_from_two_saves_is_refused(tmp_path):
    save_mmrec(_split_toy(), tmp_path / "one")
    other = _split_toy()
    other.features["image"][:] = 7.0
    save_mmrec(other, tmp_path / "two")
    (tmp_path / "one" / "image_feat.npy").write_bytes((tmp_path / "two" / "image_feat.npy").read_bytes())
    with pytest.raises(DataError, match=r"image_feat.npy: does not match its checksum"):
        load_mmrec(tmp_path / "one")
    (tmp_path / "two" / "extra_feat.npy").write_bytes((tmp_path / "two" / "image_feat.npy").read_bytes())
    with pytest.raises(DataError, match=r"not listed: \['extra_feat.npy'\]"):
        load_mmrec(tmp_path / "two")
    (tmp_path / "two" / "bundle.json").write_text("{not json")
    with pytest.raises(DataError, match="unreadable manifest"):
        load_mmrec(tmp_path / "two")


def test_a_save_refuses_a_folder_with_other_files(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match=r"holds files that are not part of this MMRec bundle \(notes.txt\)"):
        save_mmrec(_split_toy(), folder)
    assert (folder / "notes.txt").read_text() == "keep me" and len(list(folder.iterdir())) == 1
    save_mmrec(_split_toy(), tmp_path / "two", name="a")  # another dataset's bundle is not replaced either
    with pytest.raises(ValueError, match=r"not part of this MMRec bundle \(a.inter\)"):
        save_mmrec(_split_toy(), tmp_path / "two", name="b")
    assert load_mmrec(tmp_path / "two").name == "a"
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="exists and is not a folder"):
        save_mmrec(_split_toy(), tmp_path / "file")


def test_a_save_to_the_current_folder_or_through_a_link(tmp_path, monkeypatch):
    """``.`` and a symbolic link name the real folder: the bundle lands there, keeps the folder's permissions and
    leaves no lock or temporary file inside it."""
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(real)
    save_mmrec(_split_toy(), tmp_path / "link")
    assert (tmp_path / "link").is_symlink() and sorted(p.name for p in real.iterdir()) == [
        "bundle.json", "image_feat.npy", "text_feat.npy", "toy.inter"]
    assert (real.stat().st_mode & 0o777) == 0o700
    monkeypatch.chdir(real)
    save_mmrec(_split_toy(drop_text=True), ".")
    assert sorted(p.name for p in real.iterdir()) == ["bundle.json", "image_feat.npy", "toy.inter"]
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".real.lock")) == ["link", "real"]


def test_a_malformed_manifest_entry_is_named(tmp_path):
    save_mmrec(_split_toy(), tmp_path / "b")
    (tmp_path / "b" / "bundle.json").write_text('{"files": {"toy.inter": 5, "image_feat.npy": {}, "text_feat.npy": {}}}')
    with pytest.raises(DataError, match=r"bundle.json: entry 'toy.inter' is 5"):
        load_mmrec(tmp_path / "b")


def test_reading_a_bundle_leaves_no_trace(tmp_path):
    _bundle(tmp_path / "b", image=np.ones((6, 2), np.float32))
    before = sorted(p.name for p in tmp_path.rglob("*"))
    load_mmrec(tmp_path / "b")
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_leftovers_of_a_dead_save_are_cleared_by_the_next(tmp_path):
    save_mmrec(_split_toy(), tmp_path / "b")
    (tmp_path / ".b.tmp-dead").mkdir()
    (tmp_path / ".b.old-dead").mkdir()
    save_mmrec(_split_toy(), tmp_path / "b")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".b.lock", "b"]


def test_concurrent_saves_leave_one_whole_bundle(tmp_path):
    """Eight threads save different datasets into one folder at once: what remains is exactly one of them,
    consistent with its manifest."""
    variants = []
    for k in range(8):
        ds = _split_toy()
        ds.features["image"][:] = k
        variants.append(ds)
    errors, loaded_meanwhile = [], []

    def save(ds):
        try:
            save_mmrec(ds, tmp_path / "b")
        except Exception as err:  # noqa: BLE001
            errors.append(err)

    def load():  # readers share the lock: each sees one whole bundle, never a mix or a missing folder
        for _ in range(5):
            try:
                loaded_meanwhile.append(len(np.unique(load_mmrec(tmp_path / "b").features["image"])))
            except Exception as err:  # noqa: BLE001
                errors.append(err)

    save(variants[0])
    threads = [threading.Thread(target=save, args=(ds,)) for ds in variants] + [threading.Thread(target=load)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and loaded_meanwhile == [1] * 5
    loaded = load_mmrec(tmp_path / "b")  # the manifest check passes: no mixture
    assert len(np.unique(loaded.features["image"])) == 1
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["b"]


def test_an_interrupted_swap_points_to_the_previous_bundle(tmp_path):
    save_mmrec(_split_toy(), tmp_path / "b")
    (tmp_path / "b").rename(tmp_path / ".b.old-x1")  # as if the process died between the two renames
    with pytest.raises(DataError, match=r"a save was interrupted: the previous bundle is at .*\.b\.old-x1"):
        load_mmrec(tmp_path / "b")


def test_feature_files_are_memory_mapped_not_read_whole(tmp_path):
    X = np.arange(24, dtype=np.float32).reshape(6, 4)
    ds = load_mmrec(_bundle(tmp_path / "b", image=X))
    import mmap

    base, chain = ds.features["image"], []
    while base is not None:
        chain.append(base)
        base = getattr(base, "base", None)
    assert any(isinstance(b, (np.memmap, mmap.mmap)) for b in chain)  # backed by the file: pages read when used
    np.testing.assert_array_equal(ds.features["image"], X)
    ds.features["image"][0, 0] = -1.0  # copy-on-write: the file is never changed
    np.testing.assert_array_equal(np.load(tmp_path / "b" / "image_feat.npy"), X)
