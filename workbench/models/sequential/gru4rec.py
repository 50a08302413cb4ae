"""GRU4Rec (Hidasi et al. 2016) in its next-item form (as RecBole's): item embeddings, a GRU over the sequence,
a projection back to the embedding space, scores by dot product with the shared item embeddings, trained with
the full-softmax cross-entropy at every position."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..base import register
from .base import SequenceRanker


@dataclass(frozen=True)
class GRU4RecConfig:
    dim: int = 64
    hidden: int = 128
    layers: int = 1
    dropout: float = 0.2
    loss: str = "ce"
    positions: str = "all"


@register("gru4rec")
class GRU4Rec(SequenceRanker):
    """GRU4Rec (module doc). Left padding: the GRU reads the padding (zero embeddings) first, then the items."""

    config_class = GRU4RecConfig

    def _build(self) -> None:
        c = self.config
        self.dropout = nn.Dropout(c.dropout)
        self.gru = nn.GRU(c.dim, c.hidden, num_layers=c.layers, batch_first=True)
        self.project = nn.Linear(c.hidden, c.dim)

    def hidden_states(self, inputs: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.item_emb(inputs))                            # (B, L, d)
        out, _ = self.gru(x)                                               # (B, L, hidden)
        return self.project(out)
