"""The dataset container shared by every model: interactions, item modalities, metadata, split labels.

An interaction table has integer columns ``user_id``, ``item_id`` (contiguous, 0-based), float ``rating``,
integer ``timestamp`` and, once split, ``x_label`` (0 = train, 1 = valid, 2 = test, as in MMRec).
Item modalities are a mapping ``name -> float32 array (n_items, d)``: row ``i`` describes item ``i``, so one,
two or more modalities work the same way.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

TRAIN, VALID, TEST = 0, 1, 2
SPLIT_NAMES = {TRAIN: "train", VALID: "valid", TEST: "test"}
COLUMNS = ("user_id", "item_id", "rating", "timestamp")
MAX_ID = 2**31 - 1  # ids are row indices (int32 in sparse matrices and embedding tables)
_SPARSE_ID_SPAN = 1 << 20  # an id span above this must be at least 1% used (see inferred_size)


class DataError(ValueError):
    """Bad input data: the message names the source, the row or field, and what was expected."""


class FileRows(str):
    """The name of a file whose data row ``r`` (0-based) stands on line ``lines[r]`` (1-based): error messages
    about a row then also give its line."""

    def __new__(cls, path, lines: np.ndarray):
        obj = super().__new__(cls, str(path))
        obj.lines = np.asarray(lines)
        return obj


def row_label(source: str, row: int) -> str:
    """``"row r"``, with the file line when ``source`` is a :class:`FileRows`."""
    lines = getattr(source, "lines", None)
    return f"row {row}" if lines is None else f"data row {row} (line {int(lines[row])})"


def split_code(split: int | str) -> int:
    """Map ``'train'|'valid'|'test'`` (or 0/1/2) to its x_label code."""
    if isinstance(split, str):
        lookup = {v: k for k, v in SPLIT_NAMES.items()}
        if split not in lookup:
            raise ValueError(f"unknown split {split!r}; expected one of {', '.join(lookup)}")
        return lookup[split]
    if split not in SPLIT_NAMES:
        raise ValueError(f"unknown split code {split!r}; expected 0, 1 or 2")
    return int(split)


def check_features(name: str, X: np.ndarray, n_items: int, source: str) -> np.ndarray:
    """Validate one modality matrix: 2-D, ``n_items`` rows, finite. Returns it as float32."""
    X = np.asarray(X)
    if X.ndim != 2:
        raise DataError(f"{source}: modality {name!r} must be a 2-D (n_items, d) matrix, got shape {X.shape}")
    if X.shape[0] != n_items:
        raise DataError(
            f"{source}: modality {name!r} has {X.shape[0]} rows but the dataset has {n_items} items "
            "(row i must describe item i)"
        )
    if not (np.issubdtype(X.dtype, np.floating) or np.issubdtype(X.dtype, np.integer) or X.dtype == bool):
        raise DataError(f"{source}: modality {name!r} must hold real numbers, got dtype {X.dtype}")
    if X.shape[1] == 0:
        raise DataError(f"{source}: modality {name!r} has shape {X.shape}: no columns; expected d >= 1")
    X = X.astype(np.float32, copy=False)
    bad = ~np.isfinite(X)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        raise DataError(
            f"{source}: modality {name!r} has NaN/inf values in {len(rows)} row(s), first item rows "
            f"{rows[:5].tolist()}; expected finite floats"
        )
    return X


def check_interactions(
    df: pd.DataFrame,
    source: str,
    n_users: int | None = None,
    n_items: int | None = None,
    duplicates: str = "error",
) -> pd.DataFrame:
    """Validate and normalise an interaction table; return a clean copy.

    Args:
        df: table with at least ``user_id``, ``item_id``; optional ``rating``, ``timestamp``, ``x_label``.
        source: file or dataset name used in error messages.
        n_users, n_items: if given, ids must lie in ``[0, n)``.
        duplicates: what a repeated ``(user_id, item_id)`` pair means: ``"error"`` (default: in a top-K
            dataset a repeated pair is ambiguous and can leak between train and test), ``"first"`` or
            ``"last"`` (keep that occurrence).
    """
    if duplicates not in ("error", "first", "last"):
        raise ValueError(f"duplicates must be 'error', 'first' or 'last', got {duplicates!r}")
    missing = [c for c in ("user_id", "item_id") if c not in df.columns]
    if missing:
        raise DataError(f"{source}: missing column(s) {missing}; found {list(df.columns)}")
    out = pd.DataFrame(index=pd.RangeIndex(len(df)))
    for col in ("user_id", "item_id", "timestamp", "x_label"):
        if col in df.columns:
            out[col] = _integer_column(df[col], col, source)
    out["rating"] = _float_column(df["rating"], "rating", source) if "rating" in df.columns else 1.0
    if "timestamp" not in out:
        out["timestamp"] = 0
    for col, limit in (("user_id", n_users), ("item_id", n_items)):
        _check_range(out[col].to_numpy(), col, limit, source)
    if "x_label" in out:
        bad = ~out["x_label"].isin(list(SPLIT_NAMES)).to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(f"{source}: {row_label(source, row)}: x_label {out['x_label'].iloc[row]} is not 0, 1 or 2")
    dup = out.duplicated(["user_id", "item_id"], keep=False).to_numpy()
    if dup.any():
        if duplicates == "error":
            rows = np.flatnonzero(dup)[:6].tolist()
            raise DataError(
                f"{source}: {int(dup.sum())} rows repeat a (user_id, item_id) pair, e.g. rows {rows}; "
                "expected each pair once (pass duplicates='first' or 'last' to keep one occurrence)"
            )
        out = out.drop_duplicates(["user_id", "item_id"], keep=duplicates).reset_index(drop=True)
    cols = [c for c in (*COLUMNS, "x_label") if c in out]
    return out[cols]


def _integer_column(series: pd.Series, name: str, source: str) -> pd.Series:
    if series.dtype == bool:
        raise DataError(f"{source}: field {name!r} holds booleans; expected integers")
    values = pd.to_numeric(series, errors="coerce")
    as_float = values.to_numpy(dtype=float, na_value=np.nan)
    bad = values.isna().to_numpy() | ~np.isfinite(as_float)
    if not bad.any() and values.dtype == np.uint64:  # parsed exactly, but past int64: it would wrap negative
        bad = values.to_numpy() > np.iinfo(np.int64).max
    elif not bad.any() and values.dtype.kind == "f":  # only floats can be non-integral or out of range
        bad = (as_float != np.round(as_float)) | (np.abs(as_float) >= 2.0**63)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"{source}: {row_label(source, row)}: field {name!r} is {str(series.iloc[row])[:40]!r}; expected an "
                        "integer (64-bit)")
    return values.astype(np.int64)


def _float_column(series: pd.Series, name: str, source: str) -> pd.Series:
    values = pd.to_numeric(series, errors="coerce")
    bad = ~np.isfinite(values.to_numpy(dtype=float, na_value=np.nan))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"{source}: {row_label(source, row)}: field {name!r} is {series.iloc[row]!r}; expected a finite number")
    return values.astype(np.float32)


def _check_range(ids: np.ndarray, name: str, limit: int | None, source: str) -> None:
    if len(ids) and ids.min() < 0:
        row = int(np.flatnonzero(ids < 0)[0])
        raise DataError(f"{source}: {row_label(source, row)}: {name} {ids[row]} is negative; expected ids >= 0")
    if len(ids) and ids.max() > MAX_ID:
        row = int(np.flatnonzero(ids > MAX_ID)[0])
        raise DataError(f"{source}: {row_label(source, row)}: {name} {ids[row]} is above {MAX_ID}; ids are row indices "
                        "(contiguous from 0): remap raw ids first")
    if limit is not None and len(ids) and ids.max() >= limit:
        row = int(np.flatnonzero(ids >= limit)[0])
        what = "feature rows" if name == "item_id" else "users"
        raise DataError(f"{source}: {row_label(source, row)}: {name} {ids[row]} is beyond the {limit} {what}; expected < {limit}")


def inferred_size(ids: np.ndarray, name: str, source) -> int:
    """``max(ids) + 1``: the id range of a file that does not state it. Refuses a range that is mostly unused
    (over 2**20 ids of which under 1% occur, e.g. one id 2**40): such ids are raw ids, not row indices, and
    every per-id table would be huge."""
    ids = np.asarray(ids)
    if not len(ids):
        raise DataError(f"{source}: no {name} values; expected at least one row")
    span = int(ids.max()) + 1
    if span > _SPARSE_ID_SPAN:
        used = len(np.unique(ids))
        if used * 100 < span:
            raise DataError(f"{source}: {name} values reach {span - 1:,} but only {used:,} distinct ids occur; "
                            "expected contiguous ids from 0 (remap raw ids first)")
    return span


TIME_UNITS = ("seconds", "position")


@dataclass
class RecDataset:
    """Interactions plus item modalities, metadata and (optionally) split labels.

    Attributes:
        name: short name (``"synthetic-default"``, ``"ml-100k"``, ...).
        interactions: table with ``user_id, item_id, rating, timestamp`` and optionally ``x_label``.
        n_users, n_items: id ranges; items with no interaction at all (zero-shot) are allowed.
        features: modality name -> float32 ``(n_items, d)``.
        items: per-item metadata (title, attributes, ...), row ``i`` = item ``i``; may be ``None``.
        images: ``(n_items, H, W, 3)`` uint8 renders, or ``None``.
        users: per-user metadata (for synthetic data: the planted tastes), row ``u`` = user ``u``; or ``None``.
        description: one line saying what the data is (synthetic data says so here).
        choice_model: for generated data, the parameters behind every choice
            (:class:`workbench.data.choices.ChoiceModel`, what the oracle ranks by); ``None`` for real data.
        time_unit: what ``timestamp`` counts: ``"seconds"`` (unix time) or ``"position"`` (the place in a
            sequence file that carries no times, where same-time ties cannot be checked).
    """

    name: str
    interactions: pd.DataFrame
    n_users: int
    n_items: int
    features: dict[str, np.ndarray] = field(default_factory=dict)
    items: pd.DataFrame | None = None
    images: np.ndarray | None = None
    users: pd.DataFrame | None = None
    description: str = ""
    choice_model: object | None = None
    time_unit: str = "seconds"

    def __post_init__(self) -> None:
        if self.time_unit not in TIME_UNITS:
            raise DataError(f"{self.name}: time_unit is {self.time_unit!r}; expected one of {TIME_UNITS}")
        for what in ("n_users", "n_items"):
            value = getattr(self, what)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= MAX_ID + 1:
                raise DataError(f"{self.name}: {what} is {value!r}; expected an integer in [1, {MAX_ID + 1}]")
        self.interactions = check_interactions(self.interactions, self.name, self.n_users, self.n_items)
        self.features = {k: check_features(k, v, self.n_items, self.name) for k, v in self.features.items()}
        if self.items is not None and len(self.items) != self.n_items:
            raise DataError(f"{self.name}: item metadata has {len(self.items)} rows, expected {self.n_items}")
        if self.users is not None and len(self.users) != self.n_users:
            raise DataError(f"{self.name}: user metadata has {len(self.users)} rows, expected {self.n_users}")
        if self.images is not None and (self.images.ndim != 4 or len(self.images) != self.n_items):
            raise DataError(f"{self.name}: images must be (n_items, H, W, 3), got {self.images.shape}")
        model = self.choice_model
        if model is not None and (model.n_users, model.n_items) != (self.n_users, self.n_items):
            raise DataError(f"{self.name}: the choice model covers {model.n_users} users and {model.n_items} items, "
                            f"the dataset {self.n_users} and {self.n_items}")

    # ------------------------------------------------------------------ splits
    @property
    def is_split(self) -> bool:
        return "x_label" in self.interactions

    def with_split(self, x_label: np.ndarray) -> "RecDataset":
        """A copy whose interactions carry ``x_label`` (one code per interaction row)."""
        x_label = np.asarray(x_label)
        if x_label.shape != (len(self.interactions),):
            raise ValueError(f"x_label must have one entry per interaction ({len(self.interactions)}), got {x_label.shape}")
        codes = x_label.astype(np.int64) if x_label.dtype.kind in "iu" or not len(x_label) else None
        if codes is None or not np.isin(codes, list(SPLIT_NAMES)).all():
            bad = np.flatnonzero(~np.isin(x_label, list(SPLIT_NAMES)))
            row = int(bad[0]) if len(bad) else 0
            raise DataError(f"{self.name}: x_label row {row} is {x_label[row]} (dtype {x_label.dtype}); expected "
                            "integer codes 0, 1 or 2")
        inter = self.interactions.assign(x_label=codes)
        return dataclasses.replace(self, interactions=inter)

    def part(self, split: int | str) -> pd.DataFrame:
        """The interactions of one split; raises if the dataset is unsplit or the split is empty."""
        code = split_code(split)
        if not self.is_split:
            raise ValueError(f"{self.name}: dataset has no split; apply one from workbench.splits first")
        rows = self.interactions[self.interactions["x_label"].to_numpy() == code]
        if rows.empty:
            raise DataError(f"{self.name}: the {SPLIT_NAMES[code]} split is empty; expected at least one interaction")
        return rows

    def matrix(self, split: int | str | None = None) -> sp.csr_matrix:
        """Binary user x item CSR matrix ``(n_users, n_items)`` of one split (all interactions if ``None``)."""
        rows = self.interactions if split is None else self.part(split)
        data = np.ones(len(rows), dtype=np.float32)
        mat = sp.csr_matrix(
            (data, (rows["user_id"].to_numpy(), rows["item_id"].to_numpy())), shape=(self.n_users, self.n_items)
        )
        mat.sum_duplicates()
        mat.data[:] = 1.0
        return mat

    def item_degree(self, split: int | str | None = TRAIN) -> np.ndarray:
        """Interactions per item ``(n_items,)`` in one split (default: train)."""
        rows = self.interactions if split is None else self.part(split)
        return np.bincount(rows["item_id"].to_numpy(), minlength=self.n_items)

    def user_degree(self, split: int | str | None = TRAIN) -> np.ndarray:
        """Interactions per user ``(n_users,)`` in one split (default: train)."""
        rows = self.interactions if split is None else self.part(split)
        return np.bincount(rows["user_id"].to_numpy(), minlength=self.n_users)

    def check_trainable(self) -> None:
        """Raise if some user has valid/test interactions but none in train (no embedding can be learned)."""
        deg = self.user_degree(TRAIN)
        held = self.interactions.loc[self.interactions["x_label"].to_numpy() != TRAIN, "user_id"].to_numpy()
        orphans = np.unique(held[deg[held] == 0])
        if len(orphans):
            raise DataError(
                f"{self.name}: {len(orphans)} user(s) have valid/test interactions but no training interaction, "
                f"e.g. user_id {orphans[:5].tolist()}; expected every evaluated user to appear in train "
                "(re-split, or drop those users' held-out rows)"
            )

    def ctr_labels(self, split: int | str | None = None, threshold: float = 3.0) -> np.ndarray:
        """Binary click labels ``(n_rows,)`` of one split: rating > ``threshold`` is positive (MMQ: > 3)."""
        rows = self.interactions if split is None else self.part(split)
        return (rows["rating"].to_numpy() > threshold).astype(np.int64)

    def summary(self) -> dict[str, float]:
        """Table-1 style statistics: users, items, interactions, sparsity, mean degrees, modalities."""
        n = len(self.interactions)
        active_users = self.interactions["user_id"].nunique()
        active_items = self.interactions["item_id"].nunique()
        stats = {
            "users": self.n_users,
            "items": self.n_items,
            "interactions": n,
            "sparsity": 1.0 - n / (self.n_users * self.n_items),
            "inter_per_user": n / max(active_users, 1),
            "inter_per_item": n / max(active_items, 1),
            "items_without_interactions": self.n_items - active_items,
        }
        for name, X in self.features.items():
            stats[f"dim_{name}"] = X.shape[1]
        return stats


def statistics_table(datasets: dict[str, RecDataset]) -> pd.DataFrame:
    """Table-1 style statistics, one row per dataset: users, items, interactions, sparsity, mean degrees."""
    rows = {name: ds.summary() for name, ds in datasets.items()}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table["sparsity"] = (100 * table["sparsity"]).round(2).astype(str) + "%"
    return table
