"""VBPR (He & McAuley 2016), as MMRec implements it."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..data.dataset import RecDataset
from .base import register
from .graph_model import GraphModel, content_features, embedding_table, project_rows, rows
from .losses import bpr_loss, l2_penalty


@dataclass(frozen=True)
class VBPRConfig:
    dim: int = 64          # size of each half: ID part and content part (MMRec's VBPR)
    reg_weight: float = 1e-4


@register("vbpr")
class VBPR(GraphModel):
    """VBPR (He & McAuley 2016) as MMRec implements it: item = ``[gamma_i ; E f_i]`` with ``f_i`` all modalities
    concatenated and ``E`` linear; user = one ``2 * dim`` vector; ``y_ui`` = dot product."""

    config_class = VBPRConfig

    def _build(self, dataset: RecDataset) -> None:
        d = self.config.dim
        feats = content_features(dataset, "VBPR")
        self.register_buffer("content", torch.cat(list(feats.values()), dim=1), persistent=False)
        self.user_emb = embedding_table(self.n_users_, 2 * d)
        self.item_emb = embedding_table(self.n_items_, d)
        self.project = nn.Linear(self.content.shape[1], d)

    def _items(self, idx: torch.Tensor | None) -> torch.Tensor:
        if idx is None:
            return torch.cat([self.item_emb, self.project(self.content)], dim=1)
        return torch.cat([rows(self.item_emb, idx), project_rows(self.project, self.content, idx)], dim=1)

    def embeddings(self):
        return self.user_emb, self._items(None)

    def loss(self, users, pos, neg):
        both = torch.cat([pos, neg])
        uniq, inv = both.unique(return_inverse=True)  # project each distinct item once
        items = rows(self._items(uniq), inv)  # index_select: a deterministic backward on a CPU
        i, j = items[:len(pos)], items[len(pos):]
        u = rows(self.user_emb, users)
        return {"bpr": bpr_loss((u * i).sum(-1), (u * j).sum(-1)),
                "l2": self.config.reg_weight * l2_penalty(u, i, j)}
