"""The catalogue's semantic ids compiled into static tensors for constrained decoding.

Every distinct prefix of the items' code tuples is a node: level ``m`` has ``n_m`` nodes (the root alone at level
0), numbered by the sorted order of their prefixes. For each level a table ``next[m]`` maps ``(node, code)`` to the
child node (the **item id** at the last level) or ``-1`` when no item continues the prefix with that code. One
decoding step is then one gather: the rows of the beams' nodes give both the allowed codes (``>= 0``) and the nodes
the beams move to. A level whose table would hold more than ``dense_budget`` entries is kept sparse (children in
CSR order, the rows assembled with one scatter); the answers are the same.

The code tuples must be unique (each tuple one item): resolve collisions first
(:func:`~workbench.tokenizers.semantic_ids.add_dedup_level` or :func:`~workbench.tokenizers.semantic_ids.
reassign_last_level`).
"""
from __future__ import annotations

import numpy as np
import torch

DENSE_BUDGET = 1 << 24   # table entries per level kept dense (int64: 128 MB at most)


class CodeTrie:
    """The prefix tree of ``codes`` ``(n_items, M)`` with ``sizes[m]`` codes at level ``m`` (module doc)."""

    def __init__(self, codes: np.ndarray, sizes, dense_budget: int = DENSE_BUDGET):
        codes = np.asarray(codes)
        if codes.ndim != 2 or codes.shape[0] < 1 or codes.shape[1] < 1 or codes.dtype.kind not in "iu":
            raise ValueError(f"codes must be a non-empty (n_items, M) integer array, got {codes.dtype} {codes.shape}")
        self.sizes = [int(k) for k in sizes]
        if len(self.sizes) != codes.shape[1]:
            raise ValueError(f"{codes.shape[1]} code levels but {len(self.sizes)} codebook sizes")
        for m, k in enumerate(self.sizes):
            if codes[:, m].min() < 0 or codes[:, m].max() >= k:
                raise ValueError(f"level {m} codes must be in [0, {k}), got {codes[:, m].min()}..{codes[:, m].max()}")
        self.n_items, self.n_levels = codes.shape
        self.codes = codes.astype(np.int64)
        node = np.zeros(self.n_items, dtype=np.int64)        # every item's node at the current level
        self.node_counts, self._tables = [1], []
        for m in range(self.n_levels):
            if m + 1 < self.n_levels:
                _, child = np.unique(self.codes[:, :m + 1], axis=0, return_inverse=True)
                child = child.reshape(-1)
            else:
                child = np.arange(self.n_items)
                self._check_unique(node)
            keys, first = np.unique(node * self.sizes[m] + self.codes[:, m], return_index=True)
            self._tables.append(self._table(m, keys, child[first], dense_budget))
            node = child
            if m + 1 < self.n_levels:
                self.node_counts.append(int(child.max()) + 1)

    def _check_unique(self, node: np.ndarray) -> None:
        key = node * self.sizes[-1] + self.codes[:, -1]
        _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
        if (counts > 1).any():
            dup = np.flatnonzero(counts[inverse] > 1)
            first = dup[inverse[dup] == inverse[dup[0]]]
            raise ValueError(f"{len(dup)} items share a code tuple, e.g. items {first[:5].tolist()} all have "
                             f"{self.codes[first[0]].tolist()}; resolve collisions first (add_dedup_level or "
                             "reassign_last_level)")

    def _table(self, m: int, keys: np.ndarray, children: np.ndarray, dense_budget: int) -> dict:
        n_nodes, K = self.node_counts[m], self.sizes[m]
        if n_nodes * K <= dense_budget:
            table = np.full(n_nodes * K, -1, dtype=np.int64)
            table[keys] = children
            return {"dense": torch.as_tensor(table.reshape(n_nodes, K))}
        owner = keys // K
        ptr = np.searchsorted(owner, np.arange(n_nodes + 1))
        return {"ptr": torch.as_tensor(ptr), "codes": torch.as_tensor(keys % K), "children": torch.as_tensor(children)}

    def to(self, device) -> "CodeTrie":
        """Move the tables to ``device`` (in place); returns ``self``."""
        self._tables = [{k: v.to(device) for k, v in t.items()} for t in self._tables]
        return self

    def is_dense(self, level: int) -> bool:
        return "dense" in self._tables[level]

    def next_nodes(self, level: int, nodes: torch.Tensor) -> torch.Tensor:
        """``(B, sizes[level])``: the node (the item at the last level) each of ``nodes`` ``(B,)`` moves to with
        each code, ``-1`` where no item continues the prefix; a node ``-1`` (a dead beam) has no children."""
        table = self._tables[level]
        alive = nodes >= 0
        safe = nodes.clamp(min=0)
        if "dense" in table:
            out = table["dense"][safe]
            return torch.where(alive[:, None], out, torch.full_like(out, -1))
        ptr = table["ptr"]
        counts = torch.where(alive, ptr[safe + 1] - ptr[safe], torch.zeros_like(safe))
        rows = torch.repeat_interleave(torch.arange(len(nodes), device=nodes.device), counts)
        start = torch.repeat_interleave(ptr[safe] - (torch.cumsum(counts, 0) - counts), counts)
        pos = start + torch.arange(len(rows), device=nodes.device)
        out = torch.full((len(nodes), self.sizes[level]), -1, dtype=torch.long, device=nodes.device)
        out[rows, table["codes"][pos]] = table["children"][pos]
        return out

    def lookup(self, codes) -> torch.Tensor:
        """The item of each code tuple ``(B, M)``, ``-1`` for a tuple that is no item's."""
        codes = torch.as_tensor(codes)
        node = torch.zeros(len(codes), dtype=torch.long, device=codes.device)
        for m in range(self.n_levels):
            nxt = self.next_nodes(m, node)
            c = codes[:, m]
            ok = (c >= 0) & (c < self.sizes[m]) & (node >= 0)
            node = torch.where(ok, nxt.gather(1, c.clamp(0, self.sizes[m] - 1)[:, None]).squeeze(1),
                               torch.full_like(node, -1))
        return node

    def nbytes(self) -> int:
        return sum(v.numel() * v.element_size() for t in self._tables for v in t.values())
