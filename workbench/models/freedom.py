"""FREEDOM (Zhou & Shen 2023)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..data.dataset import RecDataset
from .base import register
from .graph_model import GraphModel, content_features, embedding_table, project_rows, rows
from .losses import bpr_loss, l2_penalty
from .adjacency import NormalizedAdjacency
from .content_graph import content_graph


@dataclass(frozen=True)
class FreedomConfig:
    dim: int = 64
    ui_layers: int = 2            # user-item LightGCN layers
    ii_layers: int = 1            # item-item (frozen kNN graph) layers
    knn_k: int = 10
    image_weight: float = 0.1     # mm_image_weight: weight of an "image" modality's graph (others share the rest)
    edge_dropout: float = 0.8     # degree-sensitive pruning: fraction of user-item edges dropped each epoch
    modal_weight: float = 1e-4    # FREEDOM's reg_weight on the per-modality BPR losses
    reg_weight: float = 0.0       # L2 on ego embeddings (FREEDOM has none)
    project_all: bool = False     # True: project every item's features each step, as MMRec's code does (same
    #                               gradients, ~3x the cost on Baby; the benchmark times both)


@register("freedom")
class FREEDOM(GraphModel):
    """FREEDOM (Zhou & Shen 2023): a frozen item-item kNN graph mixed from the modalities, degree-sensitive
    edge pruning of the user-item graph each epoch, LightGCN on ID embeddings; item = propagated ID embedding
    + item-item aggregation of the ID embedding; plus a BPR loss per modality on projected features."""

    config_class = FreedomConfig

    def _build(self, dataset: RecDataset) -> None:
        c = self.config
        feats = content_features(dataset, "FREEDOM")
        self.modalities_ = list(feats)
        for m, X in feats.items():
            self.register_buffer(f"feat_{m}", X, persistent=False)
        self.projections = nn.ModuleDict({m: nn.Linear(X.shape[1], c.dim) for m, X in feats.items()})
        self.user_emb = embedding_table(self.n_users_, c.dim)
        self.item_emb = embedding_table(self.n_items_, c.dim)
        self.item_graph_ = content_graph(dataset.features, c.knn_k, _freedom_weights(self.modalities_, c.image_weight))
        self.adjacency_ = NormalizedAdjacency(self.train_matrix_)
        self.train_adjacency_ = self.adjacency_
        R = self.adjacency_.R_hat.tocoo()
        # sampling weights of the pruning: 1 / sqrt(d_u d_i), in CSR order
        self.edge_p_ = R.data / R.data.sum()

    def move_graphs(self, device):
        self.adjacency_.to(device)
        self.train_adjacency_.to(device)
        self.item_graph_ = self.item_graph_.to(device)

    def on_epoch_start(self, dataset, epoch, rng, n_steps):
        """Degree-sensitive pruning: a fresh sample of the user-item edges for this epoch's training graph."""
        c = self.config
        if c.edge_dropout <= 0:
            self.train_adjacency_ = self.adjacency_
            return
        n_keep = max(1, int(len(self.edge_p_) * (1 - c.edge_dropout)))
        # weighted sampling without replacement (Gumbel top-k), degree-sensitive as in FREEDOM
        keys = np.log(self.edge_p_) + rng.gumbel(size=len(self.edge_p_))
        keep = np.zeros(len(keys), dtype=np.float32)
        keep[np.argpartition(-keys, n_keep - 1)[:n_keep]] = 1.0
        self.train_adjacency_ = NormalizedAdjacency(self.train_matrix_, edge_weights=keep, device=self.device)

    def _forward(self, adjacency: NormalizedAdjacency, users: torch.Tensor | None = None,
                 items: torch.Tensor | None = None):
        """Final user and item embeddings, at the given rows (``None``: all)."""
        h = self.item_emb
        for _ in range(self.config.ii_layers):
            h = self.item_graph_(h)
        u, i, _, _ = adjacency.propagate_at(self.user_emb, self.item_emb, self.config.ui_layers, users, items)
        return u, i + (h if items is None else rows(h, items))

    def embeddings(self):
        return self._forward(self.adjacency_ if not self.training else self.train_adjacency_)

    def loss(self, users, pos, neg):
        u, items = self._forward(self.train_adjacency_, users, torch.cat([pos, neg]))
        i, j = items[:len(pos)], items[len(pos):]
        out = {"bpr": bpr_loss((u * i).sum(-1), (u * j).sum(-1))}
        both = torch.cat([pos, neg])
        if self.config.project_all:
            uniq, inv = None, both
        else:  # project each distinct batch item once: the same loss and gradients, a fraction of the cost
            uniq, inv = both.unique(return_inverse=True)
        modal = 0.0
        for m in self.modalities_:
            feats = getattr(self, f"feat_{m}")
            proj = rows(self.projections[m](feats) if uniq is None else project_rows(self.projections[m], feats, uniq), inv)
            modal = modal + bpr_loss((u * proj[:len(pos)]).sum(-1), (u * proj[len(pos):]).sum(-1))
        out["modal_bpr"] = self.config.modal_weight * modal
        if self.config.reg_weight:
            out["l2"] = self.config.reg_weight * l2_penalty(rows(self.user_emb, users), rows(self.item_emb, pos),
                                                            rows(self.item_emb, neg))
        return out


def _freedom_weights(modalities: list[str], image_weight: float) -> dict[str, float]:
    """FREEDOM mixes ``image_weight * S_image + (1 - image_weight) * S_text``; with other modality names the
    weights are equal."""
    if "image" in modalities and len(modalities) > 1:
        rest = (1 - image_weight) / (len(modalities) - 1)
        return {m: image_weight if m == "image" else rest for m in modalities}
    return {m: 1.0 for m in modalities}
