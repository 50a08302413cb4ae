"""Amazon Reviews 2023 subsets in RecBole's sequential layout, with real item text and image captions.

A folder ``<name>.{train,valid,test}.inter`` (tab-separated ``user_id:token item_id_list:token_seq
item_id:token``: a user's earlier items, space-separated and oldest first, then the item that followed),
``<name>.item2id`` and ``<name>.user2id`` (``raw id <TAB> index``), ``<name>.item.json`` (index -> ``title``,
``brand``, ``categories``, ``description``) and ``<name>.item-image2text.json`` (index -> the same fields, the
description holding a vision-language caption of the item's product photo after ``[Image Visual]:``), as in
``../shared/data/amazon23-industrial-mini``.

How rows become interactions (the files are a global chronological split, so a user's rows can lie in any of
the three files): each row's target is one interaction at position ``len(history)`` of the user's sequence,
labelled with its file's split; each user's first item, which is only ever history, is a training interaction
at position 0; the rows of a user must describe one sequence (positions ``1..n`` once each). A repeated
``(user, item)`` keeps its first occurrence: a repeat purchase of an item already seen can never be a hit in a
full ranking that masks training items, so held-out repeats are dropped (their number is in ``description``).

Two modalities, both all-MiniLM-L6-v2 (384-d), cached: ``text`` of ``title brand categories description`` (as
MMRec builds ``text_feat.npy``) and ``caption``, the ``[Image Visual]`` part of the photo's caption. The caption
is derived from the real product image, but it is text about the image, not pixels.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .dataset import TEST, TRAIN, VALID, DataError, RecDataset, check_interactions, row_label
from .files import check_fields, read_item_json, read_table

HEADER = ("user_id:token", "item_id_list:token_seq", "item_id:token")
SPLIT_FILES = {TRAIN: "train", VALID: "valid", TEST: "test"}
_CAPTION_MARK = "[Image Visual]:"
_TEXT_FIELDS = ("title", "brand", "categories", "description")


def _find_name(folder: Path) -> str:
    names = sorted(p.name[: -len(".train.inter")] for p in folder.glob("*.train.inter"))
    if len(names) != 1:
        raise DataError(f"{folder}: expected exactly one <name>.train.inter file; found {names or 'none'}")
    return names[0]


_INDEX = (r"[0-9]{1,10}", "an integer index in ASCII digits")


def _read_id_map(path: Path) -> pd.Series:
    """``raw id <TAB> index`` lines -> the raw ids ordered by index (indices must be 0..n-1, each once)."""
    table, source = read_table(path, ("raw", "index"))
    check_fields(table, source, {"index": _INDEX})
    index = table["index"].astype(np.int64).to_numpy()
    if not np.array_equal(np.sort(index), np.arange(len(index))):
        raise DataError(f"{path}: indices are not 0..{len(index) - 1} each once; expected a complete id map")
    return table["raw"].iloc[np.argsort(index)].reset_index(drop=True)


def _read_rows(path: Path, split: int, n_users: int, n_items: int) -> pd.DataFrame:
    """One split file -> ``user, position, item, first, split`` per row (``first``: the history's first item)."""
    def check_header(first: list[str]) -> None:
        if tuple(first) != HEADER:
            raise DataError(f"{path}: header {first[:5]} is not {list(HEADER)}; expected RecBole's sequential "
                            "atomic columns, tab-separated")

    raw, source = read_table(path, ("user", "history", "item"), check_header)
    check_fields(raw, source, {"user": _INDEX, "item": _INDEX, "history": (
        r"[0-9]{1,10}( [0-9]{1,10})*", "space-separated integer ids in ASCII digits")})
    history = raw["history"].str.split(" ")
    out = pd.DataFrame({"user": raw["user"].astype(np.int64), "position": history.str.len().astype(np.int64),
                        "item": raw["item"].astype(np.int64), "first": history.str[0].astype(np.int64),
                        "split": split})
    for column, limit in (("user", n_users), ("item", n_items), ("first", n_items)):
        bad = out[column].to_numpy() >= limit
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(f"{path}: {row_label(source, row)}: {column} id {out[column].iloc[row]} is beyond the "
                            f"{limit} ids of the id map; expected < {limit}")
    return out


def _interactions(rows: pd.DataFrame, folder: Path) -> tuple[pd.DataFrame, int]:
    """Targets at their positions plus each user's first item at position 0; repeats dropped (first kept)."""
    rows = rows.sort_values(["user", "position"], kind="stable").reset_index(drop=True)
    again = rows.duplicated(["user", "position"]).to_numpy()
    count = rows.groupby("user")["position"].transform("size").to_numpy()
    last = rows.groupby("user")["position"].transform("max").to_numpy()
    if again.any() or (count != last).any():
        user = int(rows["user"].iloc[int(np.flatnonzero(again | (count != last))[0])])
        raise DataError(f"{folder}: the rows of user {user} do not form one sequence (each history length 1..n "
                        "exactly once across the train, valid and test files)")
    firsts = rows.drop_duplicates("user")
    table = pd.concat([
        pd.DataFrame({"user_id": firsts["user"], "item_id": firsts["first"], "timestamp": 0, "x_label": TRAIN}),
        pd.DataFrame({"user_id": rows["user"], "item_id": rows["item"], "timestamp": rows["position"],
                      "x_label": rows["split"]}),
    ]).sort_values(["user_id", "timestamp"], kind="stable").reset_index(drop=True)
    repeats = table.duplicated(["user_id", "item_id"]).to_numpy()
    return table[~repeats].reset_index(drop=True), int(repeats.sum())


def _read_items(path: Path, n_items: int) -> pd.DataFrame:
    """``index -> {title, brand, categories, description}`` as a table ordered by index."""
    return read_item_json(path, _TEXT_FIELDS, n_items)


def _captions(table: pd.DataFrame, path: Path) -> list[str]:
    parts = table["description"].str.partition(_CAPTION_MARK)
    missing = (parts[1] == "").to_numpy() | (parts[2].str.strip() == "").to_numpy()
    if missing.any():
        raise DataError(f"{path}: item {int(np.flatnonzero(missing)[0])} has no '{_CAPTION_MARK}' caption")
    return parts[2].str.strip().tolist()


def load_amazon23(folder: str | Path, use_cache: bool = True, device: str | None = None) -> RecDataset:
    """Load an Amazon Reviews 2023 subset (see the module doc) with ``text`` and ``caption`` features and its
    train/valid/test split. ``items`` keeps the raw ASIN, title, brand, categories and caption."""
    from .encoders import cached_text_features

    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder; expected an Amazon Reviews 2023 subset folder")
    name = _find_name(folder)
    path = {kind: folder / f"{name}.{kind}" for kind in ("item2id", "user2id", "item.json", "item-image2text.json",
                                                         *(f"{s}.inter" for s in SPLIT_FILES.values()))}
    asins, users = _read_id_map(path["item2id"]), _read_id_map(path["user2id"])
    rows = pd.concat([_read_rows(path[f"{s}.inter"], code, len(users), len(asins)) for code, s in SPLIT_FILES.items()])
    inter, repeats = _interactions(rows, folder)
    meta, captioned = _read_items(path["item.json"], len(asins)), _read_items(path["item-image2text.json"], len(asins))
    captions = _captions(captioned, path["item-image2text.json"])
    texts = meta[list(_TEXT_FIELDS)].apply(lambda r: " ".join(v for v in r if v), axis=1).tolist()
    features = {"text": cached_text_features(texts, f"{name}-text", use_cache, device),
                "caption": cached_text_features(captions, f"{name}-caption", use_cache, device)}
    items = meta[["title", "brand", "categories"]].assign(raw_id=asins.to_numpy(), caption=captions)
    ds = RecDataset(name=f"amazon23-{name}", interactions=check_interactions(inter, str(folder)),
                    n_users=len(users), n_items=len(asins), features=features, items=items, time_unit="position",
                    description=f"Amazon Reviews 2023 {name} from {folder} ({repeats} repeat interactions dropped); "
                                "text: title, brand, categories, description; caption: a vision-language caption "
                                "of the product photo (text about the image, not pixels), both MiniLM")
    ds.check_trainable()
    return ds
