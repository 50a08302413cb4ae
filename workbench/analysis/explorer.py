"""The explorer's logic (notebook 06): plain functions over one dataset, its items' codes under any number of
tokenizers and (optionally) trained models, each returning a table or a figure. The ipywidgets front end
(:mod:`workbench.analysis.explorer_app`) only wires these to controls, so everything here is tested without a
browser.

* **Item view**: :meth:`Explorer.search` (by id or title), :meth:`Explorer.item_card` (title, planted attributes,
  training degree, stratum), :meth:`Explorer.item_codes` (its codes under every tokenizer),
  :meth:`Explorer.neighbours_by_prefix` and :meth:`Explorer.neighbours_by_embedding`.
* **Code view**: :meth:`Explorer.code_members` (the items holding one code at one level, or the whole prefix up to
  it) and :meth:`Explorer.code_summary` (how many, how many cold, each attribute's purity against its base rate).
* **User view**: :meth:`Explorer.user_history`, :meth:`Explorer.generator_beam` (the generator's constrained beam:
  codes and items) and :meth:`Explorer.ranker_top` (a graph model's top items), each flagging cold items and the
  user's held-out target.
* :meth:`Explorer.strip`: a row of item images with captions (``None`` for a dataset without images, where the
  tables carry the titles alone).

A request the data cannot answer (an unknown item, user, tokenizer, level or code; a search without a match) raises
:class:`ExplorerError`, whose message the widget shows in place of a traceback. Every lookup is a vectorized pass
over the catalogue (a few milliseconds at the paper profile's 7,050 items).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from ..data.dataset import TRAIN, RecDataset
from ..data.strata import cold_mask, degree_strata
from ..tokenizers.modalities import fuse_modalities

TEXT_COLUMNS = ("title", "description", "raw_id")


class ExplorerError(ValueError):
    """A request the explorer's data cannot answer; the message says what was asked and what exists."""


def default_attributes(dataset: RecDataset) -> tuple[str, ...]:
    """The item metadata columns that read as attributes: text columns other than the title, description and raw
    id with at most a fifth as many distinct values as items (the synthetic catalogue's planted attributes;
    MovieLens' genres)."""
    items = dataset.items
    if items is None:
        return ()
    limit = max(2, len(items) // 5)
    return tuple(c for c in items.columns if c not in TEXT_COLUMNS and _is_text(items[c])
                 and items[c].nunique() <= limit)


def _is_text(column: pd.Series) -> bool:
    return pd.api.types.is_string_dtype(column) or pd.api.types.is_object_dtype(column)


def _code_string(codes: np.ndarray) -> str:
    return "-".join(str(int(c)) for c in codes if c >= 0)


@dataclass
class Explorer:
    """One dataset and what is known about its items (module doc).

    Attributes:
        dataset: the items (titles, attributes, images) and interactions. The training rows (item degrees, the
            items a ranker skips) are the dataset's split, else ``sequences``' training items, else every row.
        codes: tokenizer name -> ``(n_items, L)`` integer codes (lengths may differ between tokenizers).
        embedding: ``(n_items, d)`` vectors for the nearest items by cosine similarity (default: every feature
            modality standardised and concatenated).
        sequences: the next-item split (:class:`~workbench.data.sequences.SequenceData`) for user histories and
            the generator's inputs; ``None``: histories from the training interactions in time order.
        generator: a fitted :class:`~workbench.models.generative.generator.Generator` over one tokenizer's ids.
        ranker: a fitted :class:`~workbench.models.base.Recommender` (e.g. LightGCN) over ``dataset``'s users.
        attributes: item metadata columns shown and scored for purity (default :func:`default_attributes`).
        cold_below: an item with fewer training interactions is cold (MoToRec's 10).
    """

    dataset: RecDataset
    codes: dict[str, np.ndarray] = field(default_factory=dict)
    embedding: np.ndarray | None = None
    sequences: object | None = None
    generator: object | None = None
    ranker: object | None = None
    attributes: tuple[str, ...] | None = None
    cold_below: int = 10

    def __post_init__(self) -> None:
        ds = self.dataset
        # training rows: the dataset's split, else the next-item split's, else every interaction
        train = ds if ds.is_split else self.sequences.as_dataset() if self.sequences is not None else None
        self.seen = train.matrix(TRAIN) if train is not None else ds.matrix(None)   # (n_users, n_items) CSR
        self.degree = np.asarray(self.seen.sum(0)).ravel().astype(np.int64)
        strata = degree_strata(self.degree)
        self.stratum = np.select(list(strata.values()), list(strata), default="")
        self.cold = cold_mask(self.degree, self.cold_below)
        self.attributes = default_attributes(ds) if self.attributes is None else tuple(self.attributes)
        missing = [a for a in self.attributes if ds.items is None or a not in ds.items]
        if missing:
            raise ExplorerError(f"{ds.name}: no item attribute {missing}; the item table has "
                                f"{[] if ds.items is None else list(ds.items.columns)}")
        self.codes = {name: np.asarray(codes) for name, codes in self.codes.items()}   # the caller's dict untouched
        for name, codes in self.codes.items():
            if codes.ndim != 2 or len(codes) != ds.n_items or codes.dtype.kind not in "iu":
                raise ExplorerError(f"codes {name!r}: expected integers of shape ({ds.n_items}, L), got "
                                    f"{codes.dtype} {codes.shape}")
        X = self.embedding
        if X is None:
            X = fuse_modalities(ds.features) if ds.features else np.zeros((ds.n_items, 1), np.float32)
        X = np.asarray(X, dtype=np.float32)
        if X.shape[0] != ds.n_items:
            raise ExplorerError(f"embedding: expected {ds.n_items} rows, got {X.shape[0]}")
        self._unit = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)

    # ------------------------------------------------------------------------------------------------ items
    def _item(self, item) -> int:
        n = self.dataset.n_items
        try:
            i = int(str(item).strip().lstrip("#"))
        except ValueError:
            raise ExplorerError(f"item {item!r} is not an item id; expected an integer in [0, {n - 1}]") from None
        if not 0 <= i < n:
            raise ExplorerError(f"item {i} is not in {self.dataset.name}: ids run from 0 to {n - 1}")
        return i

    def _titles(self, items: np.ndarray) -> np.ndarray:
        meta = self.dataset.items
        if meta is None or "title" not in meta:
            return np.array([f"item {i}" for i in items], dtype=object)
        return meta["title"].to_numpy(dtype=object)[items]

    def items_table(self, items, **columns) -> pd.DataFrame:
        """``items`` (ids, in the given order) with title, degree, stratum and cold flag, then ``columns``."""
        items = np.asarray(items, dtype=np.int64)
        table = pd.DataFrame({"item_id": items, "title": self._titles(items), **columns,
                              "degree": self.degree[items], "stratum": self.stratum[items],
                              "cold": self.cold[items]})
        return table.reset_index(drop=True)

    def search(self, query, limit: int = 20) -> pd.DataFrame:
        """Items matching ``query``: an id (``12`` or ``#12``), else every item whose title contains the text
        (case-insensitive), most-interacted first; at most ``limit`` rows."""
        text = str(query).strip()
        if not text:
            raise ExplorerError("type an item id or part of a title")
        if text.lstrip("#").isdigit():
            return self.items_table([self._item(text)])
        titles = pd.Series(self._titles(np.arange(self.dataset.n_items))).astype(str)
        hits = np.flatnonzero(titles.str.contains(text, case=False, regex=False).to_numpy())
        if not len(hits):
            raise ExplorerError(f"no item of {self.dataset.name} has {text!r} in its title")
        hits = hits[np.argsort(-self.degree[hits], kind="stable")][:limit]
        return self.items_table(hits)

    def item_card(self, item) -> pd.Series:
        """One item: title, attributes, training degree, stratum and whether it is cold."""
        i = self._item(item)
        card = self.items_table([i]).iloc[0]
        for a in self.attributes:
            card[a] = self.dataset.items[a].iloc[i]
        return card

    def item_codes(self, item) -> pd.DataFrame:
        """The item's codes under every tokenizer: one row per tokenizer, one column per level (1-based)."""
        i = self._item(item)
        width = max((c.shape[1] for c in self.codes.values()), default=0)
        rows = {name: list(c[i]) + [pd.NA] * (width - c.shape[1]) for name, c in self.codes.items()}
        return pd.DataFrame.from_dict(rows, orient="index", columns=[f"level {j + 1}" for j in range(width)])

    def _tokenizer(self, tokenizer: str) -> np.ndarray:
        if tokenizer not in self.codes:
            raise ExplorerError(f"no tokenizer {tokenizer!r}; the explorer holds {list(self.codes)}")
        return self.codes[tokenizer]

    def neighbours_by_prefix(self, item, tokenizer: str, k: int = 8) -> pd.DataFrame:
        """The ``k`` items sharing the longest code prefix with ``item`` under ``tokenizer`` (ties: the most
        similar embedding first), with the shared length."""
        i, codes = self._item(item), self._tokenizer(tokenizer)
        shared = np.cumprod(codes == codes[i], axis=1).sum(1)
        sim = self._unit @ self._unit[i]
        shared[i] = -1
        order = np.lexsort((-sim, -shared))[:k]
        return self.items_table(order, shared_prefix=shared[order], similarity=sim[order].round(3))

    def neighbours_by_embedding(self, item, k: int = 8) -> pd.DataFrame:
        """The ``k`` items nearest ``item`` by cosine similarity of the explorer's embedding."""
        i = self._item(item)
        sim = self._unit @ self._unit[i]
        sim[i] = -np.inf
        order = np.argsort(-sim, kind="stable")[:k]
        return self.items_table(order, similarity=sim[order].round(3))

    # ------------------------------------------------------------------------------------------------ codes
    def _code_mask(self, tokenizer: str, level: int, code: int, prefix_of: int | None) -> np.ndarray:
        codes = self._tokenizer(tokenizer)
        if not 1 <= int(level) <= codes.shape[1]:
            raise ExplorerError(f"{tokenizer} has levels 1 to {codes.shape[1]}, not {level}")
        column = codes[:, int(level) - 1]
        if prefix_of is not None:  # the whole prefix of one item up to this level
            return (codes[:, :int(level)] == codes[self._item(prefix_of), :int(level)]).all(1)
        try:
            code = int(code)
        except (TypeError, ValueError):
            raise ExplorerError(f"code {code!r} is not a code; give an integer code (or prefix_of=an item)") from None
        mask = column == code
        if not mask.any():
            used = np.unique(column)
            raise ExplorerError(f"no item holds code {code} at level {level} of {tokenizer}; codes in use there: "
                                f"{used.min()} to {used.max()} ({len(used)} of them)")
        return mask

    def code_members(self, tokenizer: str, level: int, code: int | None = None, prefix_of=None,
                     limit: int | None = None) -> pd.DataFrame:
        """Items holding ``code`` at ``level`` (1-based) of ``tokenizer``, or, with ``prefix_of`` (an item), the
        items sharing that item's whole prefix up to ``level``; most-interacted first, with their attributes."""
        members = np.flatnonzero(self._code_mask(tokenizer, level, code, prefix_of))
        members = members[np.argsort(-self.degree[members], kind="stable")][:limit]
        meta = self.dataset.items
        attrs = {a: meta[a].to_numpy()[members] for a in self.attributes}
        return self.items_table(members, **attrs)

    def code_summary(self, tokenizer: str, level: int, code: int | None = None, prefix_of=None) -> pd.DataFrame:
        """One row per attribute: the code's most common value, its share among the code's items (purity), the
        same value's share of the catalogue (the base rate purity is read against), and the counts of items and
        cold items in ``attrs.attrs``."""
        mask = self._code_mask(tokenizer, level, code, prefix_of)
        rows = []
        for a in self.attributes:
            values = self.dataset.items[a].astype(str).to_numpy()
            top, count = np.unique(values[mask], return_counts=True)
            best = top[np.argmax(count)]
            rows.append({"attribute": a, "most common": best, "purity": count.max() / mask.sum(),
                         "base rate": float((values == best).mean())})
        table = pd.DataFrame(rows, columns=["attribute", "most common", "purity", "base rate"])
        table.attrs.update(items=int(mask.sum()), cold=int((mask & self.cold).sum()))
        return table

    # ------------------------------------------------------------------------------------------------ users
    def _user(self, user) -> int:
        n = self.dataset.n_users
        try:
            u = int(str(user).strip())
        except ValueError:
            raise ExplorerError(f"user {user!r} is not a user id; expected an integer in [0, {n - 1}]") from None
        if not 0 <= u < n:
            raise ExplorerError(f"user {u} is not in {self.dataset.name}: ids run from 0 to {n - 1}")
        return u

    def _history(self, u: int) -> np.ndarray:
        seq = self.sequences
        if seq is not None:  # the training sequence, then the validation item: the test target's history
            items = seq.train_items[seq.train_offsets[u]:seq.train_offsets[u + 1]]
            return np.r_[items, seq.valid_items[u]] if seq.valid_items[u] >= 0 else items
        inter = self.dataset.part(TRAIN) if self.dataset.is_split else self.dataset.interactions
        mine = inter[inter["user_id"].to_numpy() == u]
        return mine.sort_values("timestamp", kind="stable")["item_id"].to_numpy()

    def _target(self, u: int) -> int:
        if self.sequences is None:
            return -1
        return int(self.sequences.test_items[u])

    def user_history(self, user) -> pd.DataFrame:
        """The user's history in time order (the generator's input for the held-out test item)."""
        u = self._user(user)
        items = self._history(u)
        if not len(items):
            raise ExplorerError(f"user {u} has no training history")
        return self.items_table(items, position=np.arange(1, len(items) + 1))

    def generator_beam(self, user, k: int = 10) -> pd.DataFrame:
        """The generator's constrained beam of width ``k`` after the user's history: rank, codes, item,
        log-probability, and whether the item is the user's held-out target."""
        if self.generator is None:
            raise ExplorerError("this explorer holds no generator")
        u = self._user(user)
        history = self.user_history(u)["item_id"].to_numpy()
        padded = np.full((1, getattr(self.sequences, "max_len", 20)), -1, dtype=np.int64)
        tail = history[-padded.shape[1]:]
        padded[0, padded.shape[1] - len(tail):] = tail
        res = self.generator.beams(padded, beam=k)
        items = res.items[0].cpu().numpy()
        keep = items >= 0
        codes = [_code_string(c) for c in res.codes[0].cpu().numpy()[keep]]
        return self.items_table(items[keep], rank=np.arange(1, keep.sum() + 1), codes=codes,
                                log_prob=res.scores[0].cpu().numpy()[keep].round(3),
                                target=items[keep] == self._target(u))

    def ranker_top(self, user, k: int = 10) -> pd.DataFrame:
        """The ranker's top ``k`` items for the user (training items excluded), with scores and the target flag."""
        if self.ranker is None:
            raise ExplorerError("this explorer holds no ranker")
        u = self._user(user)
        rec = self.ranker.recommend(torch.tensor([u]), k, exclude=self.seen)
        items = rec.item_ids[0].cpu().numpy()
        target = items == self._target(u) if self.sequences is not None else np.zeros(len(items), bool)
        return self.items_table(items, rank=np.arange(1, len(items) + 1),
                                score=rec.scores[0].cpu().numpy().round(3), target=target)

    # ----------------------------------------------------------------------------------------------- images
    def strip(self, table: pd.DataFrame, caption: str | None = None, ncols: int = 8):
        """A figure of the table's items (images with id, title and ``caption`` column), or ``None`` for a
        dataset without images."""
        if self.dataset.images is None or not len(table):
            return None
        from .plots import plot_item_grid

        captions = None if caption is None else [f"{caption} {v}" for v in table[caption]]
        return plot_item_grid(self.dataset, table["item_id"].tolist(), attributes=(), ncols=ncols,
                              captions=captions)
