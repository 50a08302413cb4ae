"""Matrix factorisation trained with BPR (Rendle et al. 2009)."""
from __future__ import annotations

from dataclasses import dataclass

from ..data.dataset import RecDataset
from .base import register
from .graph_model import GraphModel, embedding_table, rows
from .losses import bpr_loss, l2_penalty


@dataclass(frozen=True)
class MFConfig:
    dim: int = 64
    reg_weight: float = 1e-4


@register("mf-bpr")
class MFBPR(GraphModel):
    """Matrix factorisation trained with BPR (Rendle et al. 2009): ``y_ui = p_u . q_i``."""

    config_class = MFConfig

    def _build(self, dataset: RecDataset) -> None:
        self.user_emb = embedding_table(self.n_users_, self.config.dim)
        self.item_emb = embedding_table(self.n_items_, self.config.dim)

    def embeddings(self):
        return self.user_emb, self.item_emb

    def loss(self, users, pos, neg):
        u, i, j = rows(self.user_emb, users), rows(self.item_emb, pos), rows(self.item_emb, neg)
        return {"bpr": bpr_loss((u * i).sum(-1), (u * j).sum(-1)),
                "l2": self.config.reg_weight * l2_penalty(u, i, j)}
