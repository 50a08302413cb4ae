"""LightGCN (He et al. 2020)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data.dataset import RecDataset
from .base import register
from .graph_model import GraphModel, embedding_table, rows
from .losses import bpr_loss, l2_penalty
from .adjacency import NormalizedAdjacency


@dataclass(frozen=True)
class LightGCNConfig:
    dim: int = 64
    layers: int = 2
    reg_weight: float = 1e-4
    self_loops: bool = False  # LightGCN has none (MoToRec eq. 7 adds them)


@register("lightgcn")
class LightGCN(GraphModel):
    """LightGCN (He et al. 2020): ID embeddings propagated over the normalized user-item graph, layer mean."""

    config_class = LightGCNConfig

    def _build(self, dataset: RecDataset) -> None:
        self.user_emb = embedding_table(self.n_users_, self.config.dim)
        self.item_emb = embedding_table(self.n_items_, self.config.dim)
        self.adjacency_ = NormalizedAdjacency(self.train_matrix_, self_loops=self.config.self_loops)

    def move_graphs(self, device):
        self.adjacency_.to(device)

    def embeddings(self):
        return self.adjacency_.propagate(self.user_emb, self.item_emb, self.config.layers)

    def loss(self, users, pos, neg):
        # the final embeddings of the batch's rows only (the propagation itself is over the whole graph)
        u, items, _, _ = self.adjacency_.propagate_at(self.user_emb, self.item_emb, self.config.layers, users,
                                                     torch.cat([pos, neg]))
        i, j = items[:len(pos)], items[len(pos):]
        return {"bpr": bpr_loss((u * i).sum(-1), (u * j).sum(-1)),
                "l2": self.config.reg_weight * l2_penalty(rows(self.user_emb, users), rows(self.item_emb, pos),
                                                          rows(self.item_emb, neg))}
