"""LightGCN (He et al. 2020)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data.dataset import RecDataset
from .graph_model import GraphModel, _xavier, rows
from .losses import bpr_loss, l2_penalty
from .adjacency import NormalizedAdjacency


@dataclass(frozen=True)
class LightGCNConfig:
    dim: int = 64
    layers: int = 2
    reg_weight: float = 1e-4
    self_loops: bool = False  # LightGCN has none (MoToRec eq. 7 adds them)


class LightGCN(GraphModel):
    """LightGCN (He et al. 2020): ID embeddings propagated over the normalized user-item graph, layer mean."""

    config_class = LightGCNConfig

    def __init__(self, dataset: RecDataset, config: LightGCNConfig | None = None, **options):
        super().__init__(dataset, config, **options)
        self.user_emb = _xavier(self.n_users, self.config.dim)
        self.item_emb = _xavier(self.n_items, self.config.dim)
        self.adjacency = NormalizedAdjacency(self.train_matrix, self_loops=self.config.self_loops)

    def move_graphs(self, device):
        self.adjacency.to(device)

    def embeddings(self):
        return self.adjacency.propagate(self.user_emb, self.item_emb, self.config.layers)

    def loss(self, users, pos, neg):
        # the final embeddings of the batch's rows only (the propagation itself is over the whole graph)
        u, items, _, _ = self.adjacency.propagate_at(self.user_emb, self.item_emb, self.config.layers, users,
                                                     torch.cat([pos, neg]))
        i, j = items[:len(pos)], items[len(pos):]
        return {"bpr": bpr_loss((u * i).sum(-1), (u * j).sum(-1)),
                "l2": self.config.reg_weight * l2_penalty(rows(self.user_emb, users), rows(self.item_emb, pos),
                                                          rows(self.item_emb, neg))}
